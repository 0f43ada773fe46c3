"""``python -m verify.gpu``: the first command on a GPU machine (under 5 minutes): the fused Triton kernel checked
against verify.train.dln.train_gd on the card, the training claims on CUDA vs CPU, and run-steps/s of DLN GD (loop,
einsum, CUDA graphs, fused kernel; R = 256 .. 65536, float64 and float32, n = 40, d = 100) against the on-chip limit.

Writes gpu.json; exit 0 when every part ran and the kernel agrees, 1 otherwise, 2 without CUDA (one line).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from . import gpu_claims, gpu_rates
from .bench_util import copy_rate, machine, matmul_rate
from verify.files import write_atomic
from .report import environment


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify.gpu", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("."), help="directory for gpu.json and the claim reports")
    p.add_argument("--only", default=gpu_claims.TRAINING, help="claims compared on CUDA and CPU (python -m verify.all --only)")
    p.add_argument("--claims-budget", type=float, default=150.0,
                   help="seconds for both claim runs (they run in the background while the kernel is checked)")
    p.add_argument("--R", default="256,1024,4096,16384,65536", help="runs per sweep point, comma-separated")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: kernel (its check),claims,rates")
    return p.parse_args(argv)


def clean(x):
    """json-safe: non-finite floats become None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


def fused_trainer():
    from verify.train.kernels import dln_triton

    return dln_triton.train_gd


def _rs(cell) -> str:
    return f"{cell['run_steps_per_s']:.3g}" if isinstance(cell, dict) and "run_steps_per_s" in cell else "-"


def rates_table(rows: list[dict], lim: float) -> Table:
    t = Table(title=f"DLN GD run-steps/s (pm, n = 40, d = 100, per-run X; 'sh.': shared X; 'no stats': fused without "
                    f"the q+- sums); on-chip limit {lim:.3g} (4nd flops at the float64 GEMM rate)")
    for c in ("R", "dtype", "loop", "einsum", "graph", "fused", "/ limit", "no stats", "einsum sh.", "fused sh.",
              "/ limit"):
        t.add_column(c, justify="right")
    for r in rows:
        def frac(key):
            return f"{r[key]['run_steps_per_s'] / lim:.3f}" if "run_steps_per_s" in r.get(key, {}) else "-"
        t.add_row(str(r["R"]), r["dtype"], _rs(r.get("loop")), _rs(r.get("einsum")), _rs(r.get("graph")),
                  _rs(r.get("fused")), frac("fused"), _rs(r.get("fused_no_stats")), _rs(r.get("einsum_shared")),
                  _rs(r.get("fused_shared")), frac("fused_shared"))
    return t


def claims_table(res: dict) -> Table:
    t = Table(title=f"training claims, CUDA vs CPU (max |diff| / tolerance {res['max_diff_over_tolerance']})")
    for c in ("claim", "cuda", "cpu", "value cuda", "value cpu", "|diff| / tolerance"):
        t.add_column(c)
    f = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
    for r in res["rows"]:
        t.add_row(r["id"], r["status_cuda"], r["status_cpu"], f(r["value_cuda"]), f(r["value_cpu"]),
                  f(r["diff_over_tolerance"]))
    return t


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("python -m verify.gpu: no CUDA device (torch.cuda.is_available() is False); nothing to run", file=sys.stderr)
        return 2
    console = Console(width=None if sys.stdout.isatty() else 160)
    t0, dev = time.perf_counter(), torch.device("cuda")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    res: dict = {"environment": environment(str(dev), 0, True), "machine": machine()}
    res["card"] = {"matmul_flops_f64": matmul_rate(dev, torch.float64, size=8192),
                   "matmul_flops_f32": matmul_rate(dev, torch.float32, size=8192), "copy_bytes_per_s": copy_rate(dev)}
    lim = gpu_rates.limit(res["card"]["matmul_flops_f64"], 40, 100)
    res["on_chip_limit_run_steps_per_s"] = lim
    console.print(f"card: float64 GEMM {res['card']['matmul_flops_f64'] / 1e12:.1f} TFLOP/s -> on-chip limit "
                  f"{lim:.3g} run-steps/s at n = 40, d = 100")
    errors = []

    def part(key, fn):
        if key in skip:
            return None
        console.print(f"[bold]{key}[/] ...")
        t = time.perf_counter()
        try:
            res[key] = fn()
        except Exception as e:  # a part that cannot run is recorded; the others go on
            res[key] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            errors.append(key)
            console.print(f"[magenta]  {key}: {res[key]['error']}[/]")
        console.print(f"  {key} done in {time.perf_counter() - t:.0f} s")
        return res[key]

    job = None if "claims" in skip else gpu_claims.launch(args.only, args.out, args.claims_budget)
    try:
        fused = fused_trainer()
    except Exception as e:  # no triton: the claims and the torch rates still run
        fused = None
        res["kernel"] = {"error": f"{type(e).__name__}: {e} (pip install -e '.[gpu]')"}
        errors.append("kernel")
    if fused is not None:
        kernel = part("kernel", lambda: {"agreement": gpu_rates.agreement(fused, dev)})
        if kernel and not all(a["ok"] for a in kernel.get("agreement", [])):
            errors.append("kernel disagrees with verify.train.dln.train_gd")
    claims = part("claims", lambda: gpu_claims.collect(job, args.claims_budget))
    rows = part("rates", lambda: {"rows": gpu_rates.sweep(dev, [int(r) for r in args.R.split(",")], fused=fused,
                                                           log=console.print)})
    res["seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "gpu.json", clean(res))
    if isinstance(res.get("kernel"), dict) and "agreement" in res["kernel"]:
        for a in res["kernel"]["agreement"]:
            console.print(f"kernel {a['kind']} {a['case']}: {'ok' if a['ok'] else '[red]DIFFERS[/]'} (statuses "
                          f"{'equal' if a['same_status'] else 'differ'}, parameters {a['max_rel_params']:.1e}, "
                          f"step sums {a['max_stats_over_scale']:.1e} of their yardstick; tolerance {gpu_rates.TOL:g})")
    if claims and "rows" in claims:
        console.print(claims_table(claims))
    if rows and "rows" in rows:
        console.print(rates_table(rows["rows"], lim))
    tail = f"; errors: {errors}" if errors else ""
    console.print(f"wrote {args.out / 'gpu.json'} in {res['seconds']:.0f} s{tail}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
