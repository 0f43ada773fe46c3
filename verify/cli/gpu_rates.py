"""Run-steps per second of DLN GD on one GPU: per-network loop, batched einsum (verify.train.dln.train_gd), CUDA graphs of
the same step, and the fused Triton kernel; the on-chip limit is 4nd flops per run-step at the float64 GEMM rate."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from .bench_cases import dln_problems, loop_one
from .bench_util import sync
from verify.train.dln import init_params, train_gd
from verify.train.kernels.step_sums import StepScale


def rate(run: Callable[[int], object], R: int, device, budget: float = 0.2, start: int = 4,
         max_steps: int = 1 << 16) -> dict:
    """run(steps) timed at growing step counts until one call lasts ``budget`` s; run-steps/s of that call (a run
    that returns an int took that many steps)."""
    run(2)
    sync(device)
    steps = start
    while True:
        t = time.perf_counter()
        took = run(steps)
        sync(device)
        dt = time.perf_counter() - t
        if dt >= budget or steps >= max_steps:
            took = took if isinstance(took, int) else steps
            return {"run_steps_per_s": R * took / dt, "steps": took, "seconds": dt}
        steps = int(min(max_steps, max(2 * steps, steps * 1.2 * budget / max(dt, 1e-9))))


def graph_gd(X, y, p0, eta, per_graph: int = 50) -> Callable[[int], None]:
    """Plain `pm` GD (no checks, no statistics) as a CUDA graph of ``per_graph`` steps, replayed."""
    n = X.shape[1]
    p, m = p0[:, 0].clone(), p0[:, 1].clone()
    Xt, e = X.transpose(1, 2), eta[:, None]

    def step():
        b = p * p - m * m
        r = torch.bmm(b.unsqueeze(1), Xt).squeeze(1) - y
        g = torch.bmm(r.unsqueeze(1), X).squeeze(1) / n
        pn, mn = p - e * ((2.0 * p) * g), m - e * ((-2.0 * m) * g)
        p.copy_(pn)
        m.copy_(mn)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(per_graph):
            step()

    def run(steps: int) -> int:
        k = max(1, steps // per_graph)
        for _ in range(k):
            graph.replay()
        return k * per_graph

    return run


TOL = 1e-12    # as tests/test_triton_kernel.py asserts in Triton's interpreter


def limit(matmul_flops_f64: float, n: int, d: int) -> float:
    """On-chip limit in run-steps/s: the two matrix-vector products of a step are 4nd flops at the float64 GEMM rate."""
    return matmul_flops_f64 / (4.0 * n * d)


def sweep(device, Rs=(256, 1024, 4096, 16384, 65536), n: int = 40, d: int = 100, budget: float = 0.15,
          fused: Callable | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """One row per (R, dtype): loop, einsum, graph and fused run-steps/s (loop measured once per dtype, 2 networks)."""
    rows = []
    for name, dt in (("f64", torch.float64), ("f32", torch.float32)):
        loop = None
        for R in Rs:
            X, y, alpha, eta = dln_problems(R, n, d, seed=R, dtype=dt, device=device)
            p0 = init_params("pm", alpha, d, dtype=dt, device=device)
            row = {"R": R, "dtype": name, "n": n, "d": d}
            if loop is None:
                loop = rate(lambda s: [loop_one(X[i], y[i], float(alpha[i]), float(eta[i]), s) for i in range(2)],
                            2, device, budget, start=8, max_steps=400)
            row["loop"] = loop
            plain = dict(tol=0.0)
            cases = {"einsum": lambda s: train_gd("pm", X, y, p0, eta, s, check_every=max(s, 1), **plain),
                     "einsum_shared": lambda s: train_gd("pm", X[0], y[0], p0, eta, s, check_every=max(s, 1), **plain)}
            if device.type == "cuda":
                cases["graph"] = graph_gd(X, y, p0, eta)
            if fused is not None:
                cases["fused"] = lambda s: fused("pm", X, y, p0, eta, s, check_every=max(s, 1), **plain)
                cases["fused_no_stats"] = lambda s: fused("pm", X, y, p0, eta, s, check_every=max(s, 1), stats=False,
                                                          **plain)
                cases["fused_shared"] = lambda s: fused("pm", X[0], y[0], p0, eta, s, check_every=max(s, 1), **plain)
            for key, fn in cases.items():
                try:
                    row[key] = rate(fn, R, device, budget, start=50 if key == "graph" else 4)
                except Exception as e:  # one failing case is recorded; the sweep goes on
                    row[key] = {"error": f"{type(e).__name__}: {e}"}
            rows.append(row)
            log(f"  R={R} {name}: " + ", ".join(f"{k} {v['run_steps_per_s']:.3g}" for k, v in row.items()
                                                if isinstance(v, dict) and "run_steps_per_s" in v))
            del X, y, p0
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def agreement(fused: Callable, device, R: int = 64, n: int = 40, d: int = 100, steps: int = 200) -> list[dict]:
    """Fused kernel vs verify.train.dln.train_gd + GDStats on the device: per-run X, shared X, SGD, one diverging run;
    ``ok``: same statuses and steps, parameters within TOL of each run's scale, step sums within TOL of StepScale."""
    from numerics.dln_gd import GDStats

    out = []
    for kind in ("pm", "uv"):
        for case in ("per_run", "shared", "sgd"):
            X, y, alpha, eta = dln_problems(R, n, d, seed=11, device=device)
            eta = eta.clone()
            eta[-1] = eta[-1] * 1e8   # blows up within 2-3 steps: frozen at its initial state
            if case == "shared":
                X, y = X[0], y[0]
            batches = None
            if case == "sgd":
                idx = torch.randint(0, n, (steps, n // 4), generator=torch.Generator().manual_seed(5))
                batches = lambda k: idx[k].to(device)  # noqa: E731
            p0 = init_params(kind, alpha, d, device=device)
            st = GDStats(kind, alpha.cpu().numpy(), R, d, device=device)
            sx = StepScale(kind, eta)
            ref = train_gd(kind, X, y, p0, eta, steps, check_every=10, batches=batches,
                           on_step=lambda k, g, a: (st.update(g, eta, a), sx.update(g, a)))
            res, sums = fused(kind, X, y, p0, eta, steps, check_every=10, batches=batches)
            scale = ref.params.abs().amax(dim=(1, 2))
            out.append({
                "kind": kind, "case": case, "same_status": ref.status == res.status,
                "same_steps": bool(np.array_equal(ref.steps, res.steps)),
                "max_rel_params": float(((res.params - ref.params).abs().amax(dim=(1, 2)) / scale).max()),
                "max_stats_over_scale": float(max(sx.relative(a, b).max() for a, b in ((sums.qp, st.qp),
                                                                                       (sums.qm, st.qm)))),
                "diverged_runs": int(sum(s == "diverged" for s in ref.status))})
        out[-1]["ok"] = (out[-1]["same_status"] and out[-1]["same_steps"] and out[-1]["max_rel_params"] <= TOL
                         and out[-1]["max_stats_over_scale"] <= TOL)
    return out
