"""``python -m verify.kernels.aot``: the fused kernel compiled ahead of time for a CUDA target, no GPU needed (Triton's
bundled ptxas), with each configuration's registers and spill stack per thread (cuobjdump -res-usage)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from .dln_triton import dln_gd_kernel, launch_config

POINTERS = ("X", "Y", "P", "ETA", "CNT", "NB", "SCAL", "QP", "QM")
CASES = {   # name: (n, d, R, shared X, kind, SGD, statistics, dtype)
    "per-run n=40 d=100 f64": (40, 100, 65536, False, "pm", False, True, "fp64"),
    "per-run n=40 d=100 f32": (40, 100, 65536, False, "pm", False, True, "fp32"),
    "per-run n=40 d=100 no stats": (40, 100, 65536, False, "pm", False, False, "fp64"),
    "shared n=40 d=100 (tl.dot)": (40, 100, 65536, True, "pm", False, True, "fp64"),
    "packed n=5 d=20 uv SGD": (5, 20, 4096, False, "uv", True, True, "fp64"),
}


def resources(cubin: bytes) -> dict:
    """Registers and stack (spills) per thread of a cubin."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([triton.knobs.nvidia.cuobjdump.path, "-res-usage", f.name], capture_output=True,
                             text=True, check=True).stdout
    got = dict(re.findall(r"(REG|STACK|SHARED):(\d+)", out))
    return {"registers": int(got["REG"]), "stack_bytes": int(got["STACK"]), "static_shared_bytes": int(got["SHARED"])}


def compile_case(n, d, R, shared, kind, sgd, stats, dtype, arch: int = 90) -> dict:
    cfg = launch_config(R, n, d, shared, cuda=True)
    sig = {p: f"*{dtype}" for p in POINTERS} | {"DONE": "*i32", "FLAGS": "*i32", "R": "i32", "n": "i32", "d": "i32",
                                                 "steps": "i32", "check_every": "i32"}
    consts = {"PM": kind == "pm", "SHARED_X": shared, "SHARED_Y": shared, "SGD": sgd, "STATS": stats,
              **{k: v for k, v in cfg.items() if k != "num_warps"}}
    sig |= {k: "constexpr" for k in consts}
    k = triton.compile(ASTSource(dln_gd_kernel, sig, consts), target=GPUTarget("cuda", arch, 32),
                       options={"num_warps": cfg["num_warps"], "enable_fp_fusion": True})
    return {"config": cfg, "dynamic_shared_bytes": k.metadata.shared, **resources(k.asm["cubin"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m verify.kernels.aot", description=__doc__)
    p.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100/H200)")
    p.add_argument("--only", default="", help="substring of the case names")
    args = p.parse_args(argv)
    bad = 0
    for name, case in CASES.items():
        if args.only not in name:
            continue
        try:
            r = compile_case(*case, arch=args.arch)
            print(f"{name}: {r['registers']} registers, {r['stack_bytes']} B stack/thread, "
                  f"{r['dynamic_shared_bytes']} B shared; {r['config']}")
        except Exception as e:  # report every case, exit 1 at the end
            bad += 1
            print(f"{name}: FAILED {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
