"""The five measured figures of ``python -m verify.bench`` (issue 7); each returns a json-able dict."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from numerics.compile import compiled
from numerics.dln import flow_limit
from theory import dln as th

from .bench_util import (copy_rate, interleaved, loglog_slope, matmul_rate, median, median_ratio, peak_memory,
                         sync, timed)
from verify.train.dln import init_params, train_gd, train_gf


@dataclass
class Sizes:
    R: int = 256
    n: int = 40
    d: int = 100
    steps: int = 2000
    loop_subset: int = 8           # networks timed one after another; scaled to R
    reps: int = 3
    slsqp_seconds: float = 20.0     # cap per SLSQP solve
    scale_R: tuple = (1, 4, 16, 64, 256, 1024, 4096)
    scale_d: tuple = (10, 100, 1000, 10000)
    scale_d_R: int = 16
    full_R: int = 0                 # saturating sweep (0: skipped)


def dln_problems(R: int, n: int, d: int, seed: int, dtype=torch.float64, device="cpu"):
    """R independent sparse-regression problems: per-run X (R, n, d), y (R, n), alpha and a stable eta per run."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(R, n, d, generator=g, dtype=torch.float64)
    bstar = torch.zeros(R, d, dtype=torch.float64)
    k = max(1, d // 20)
    bstar[:, :k] = torch.randn(R, k, generator=g, dtype=torch.float64)
    y = torch.einsum("rnd,rd->rn", X, bstar)
    alpha = torch.logspace(-2, 0, R, dtype=torch.float64)
    lam = torch.linalg.matrix_norm(X, ord=2) ** 2 / n
    # pm sharpness near an interpolator <= 4 lambda_max(X X^T/n) (max|b| + 2 alpha^2) (THEORY §2): eta at 1/10 of 2/S
    eta = 0.2 / (4 * lam * (bstar.abs().amax(dim=1) + 2 * alpha**2))
    cast = dict(dtype=dtype, device=device)
    return X.to(**cast), y.to(**cast), alpha.to(**cast), eta.to(**cast)


def loop_one(X, y, alpha: float, eta: float, steps: int) -> torch.Tensor:
    """The per-network baseline: plain torch autograd GD on one `pm` DLN, as public research code writes it."""
    wp = torch.full((X.shape[1],), alpha, dtype=X.dtype, device=X.device, requires_grad=True)
    wm = torch.full((X.shape[1],), alpha, dtype=X.dtype, device=X.device, requires_grad=True)
    for _ in range(steps):
        L = 0.5 * ((X @ (wp**2 - wm**2) - y) ** 2).mean()
        L.backward()
        with torch.no_grad():
            wp -= eta * wp.grad
            wm -= eta * wm.grad
        wp.grad = None
        wm.grad = None
    return (wp**2 - wm**2).detach()


def _batched(X, y, alpha, eta, steps, kind="pm"):
    p0 = init_params(kind, alpha, X.shape[-1], dtype=X.dtype, device=X.device)
    return train_gd(kind, X, y, p0, eta, steps, tol=0.0, check_every=max(50, steps // 10))


def _batched_with_stats(X, y, alpha, eta, steps, block):
    """GD as in _batched, accumulating the exact-limit statistics (numerics.dln_gd.GDStats) every step."""
    from numerics.dln_gd import GDStats

    st = GDStats("pm", alpha.cpu().numpy(), X.shape[0], X.shape[-1], dtype=X.dtype, device=X.device, block=block)
    p0 = init_params("pm", alpha, X.shape[-1], dtype=X.dtype, device=X.device)
    train_gd("pm", X, y, p0, eta, steps, tol=0.0, check_every=max(50, steps // 10), on_step=st.callback(eta))
    return st


def fig_exact_stats(sz: Sizes, seed: int, device) -> dict:
    """Cost of recording a run's exact-limit statistics: per-step q+- vs blocked (one q+- per block of steps),
    at the bench size and at a size like the EoS sweep's (R = 32, n = 5, d = 20), where per-op dispatch dominates."""
    out = {}
    for case, (R, n, d) in {"bench": (sz.R, sz.n, sz.d), "eos_sweep": (32, 5, 20)}.items():
        X, y, alpha, eta = dln_problems(R, n, d, seed, device=device)
        fns = {"plain": lambda: _batched(X, y, alpha, eta, sz.steps),
               "stats_per_step": lambda: _batched_with_stats(X, y, alpha, eta, sz.steps, 1),
               "stats_blocked": lambda: _batched_with_stats(X, y, alpha, eta, sz.steps, None)}
        times, outs = interleaved(fns, sz.reps, device)
        out[case] = {"overhead_per_step": median_ratio(times["stats_per_step"], times["plain"]) - 1,
                     "overhead_blocked": median_ratio(times["stats_blocked"], times["plain"]) - 1,
                     "speedup_blocked": median_ratio(times["stats_per_step"], times["stats_blocked"]),
                     "max_abs_log_c_diff": float(np.abs(outs["stats_per_step"].log_c()
                                                        - outs["stats_blocked"].log_c()).max()),
                     "seconds": dict(times), "sizes": {"R": R, "n": n, "d": d, "steps": sz.steps, "reps": sz.reps}}
    return out


def gd_counts(R: int, n: int, d: int, itemsize: int) -> tuple[float, float]:
    """FLOPs and compulsory bytes of one batched `pm` GD step: two matrix-vector products per run (4nd flops)
    plus ~14 elementwise passes over the (R, 2d) state; each run's X read twice per step."""
    flops = R * (4.0 * n * d + 14.0 * 2 * d)
    xbytes = 2 * R * n * d * itemsize
    state = 14.0 * R * 2 * d * itemsize
    return flops, xbytes + state


def fig1_batched_vs_loop(sz: Sizes, seed: int, device) -> dict:
    X, y, alpha, eta = dln_problems(sz.R, sz.n, sz.d, seed, device=device)
    sub = np.linspace(0, sz.R - 1, sz.loop_subset).round().astype(int)
    X32, y32, a32, e32 = (t.float() for t in (X, y, alpha, eta))
    Xs, ys = X[0], y[0]

    def loop():
        return torch.stack([loop_one(X[i], y[i], float(alpha[i]), float(eta[i]), sz.steps) for i in sub])

    fns = {"batched_f64": lambda: _batched(X, y, alpha, eta, sz.steps),
           "loop_subset": loop,
           "batched_f32": lambda: _batched(X32, y32, a32, e32, sz.steps),
           "batched_shared_X_f64": lambda: _batched(Xs, ys, alpha, eta, sz.steps)}
    _batched(X[:2], y[:2], alpha[:2], eta[:2], 10)  # warm-up
    times, outs = interleaved(fns, sz.reps, device)
    scale = sz.R / sz.loop_subset
    agree = float((outs["batched_f64"].b[torch.as_tensor(sub)] - outs["loop_subset"]).abs().max())
    agree32 = float((outs["batched_f32"].b.double() - outs["batched_f64"].b).abs().max())
    flops, nbytes = gd_counts(sz.R, sz.n, sz.d, 8)
    t64 = median(times["batched_f64"])
    return {
        "ratio": median_ratio(times["loop_subset"], times["batched_f64"], scale),
        "ratio_f32": median_ratio(times["loop_subset"], times["batched_f32"], scale),
        "ratio_shared_X": median_ratio(times["loop_subset"], times["batched_shared_X_f64"], scale),
        "goal": 50.0,
        "seconds": {k: v for k, v in times.items()},
        "loop_extrapolated": f"{sz.loop_subset} of {sz.R} networks timed one after another, scaled by {scale:g}",
        "run_steps_per_s": {"batched_f64": sz.R * sz.steps / t64,
                            "batched_f32": sz.R * sz.steps / median(times["batched_f32"]),
                            "batched_shared_X_f64": sz.R * sz.steps / median(times["batched_shared_X_f64"]),
                            "loop": sz.loop_subset * sz.steps / median(times["loop_subset"])},
        "max_abs_b_batched_vs_loop_f64": agree, "max_abs_b_f32_vs_f64": agree32,
        "gflops_f64": flops * sz.steps / t64 / 1e9, "gbytes_per_s_f64": nbytes * sz.steps / t64 / 1e9,
        "sizes": {"R": sz.R, "n": sz.n, "d": sz.d, "steps": sz.steps, "reps": sz.reps},
    }


def _kkt(X, y, b, alpha, mirror) -> dict:
    """KKT residual of argmin_{Xb=y} Q_alpha: feasibility ||Xb-y||/||y|| and stationarity, the part of
    grad Q_alpha(b) = asinh(b/2alpha^2) outside range(X^T), relative to its norm."""
    gq = np.asarray(mirror(b, alpha), dtype=np.float64)
    nu = np.linalg.lstsq(X.T, gq, rcond=None)[0]
    feas = float(np.linalg.norm(X @ b - y) / np.linalg.norm(y))
    stat = float(np.linalg.norm(gq - X.T @ nu) / max(np.linalg.norm(gq), 1e-300))
    return {"feasibility": feas, "stationarity": stat, "kkt": max(feas, stat)}


class _TimeUp(Exception):
    pass


def slsqp_potential(X, y, alpha, seconds: float, maxiter: int = 1000):
    """Baseline: scipy SLSQP on Q_alpha (analytic gradient) with X b = y, from min-l2; stops at `seconds`."""
    Q = compiled(th.pm, "Q", ("b", "alpha"))
    mirror = compiled(th.pm, "mirror", ("b", "alpha"))
    b0 = np.linalg.lstsq(X, y, rcond=None)[0]
    state = {"x": b0, "it": 0}
    t0 = time.perf_counter()

    def cb(xk):
        state["x"], state["it"] = np.array(xk), state["it"] + 1
        if time.perf_counter() - t0 > seconds:
            raise _TimeUp

    msg = "converged"
    try:
        r = minimize(lambda b: float(np.sum(Q(b, alpha))), b0, jac=lambda b: np.asarray(mirror(b, alpha)),
                     method="SLSQP", callback=cb, options={"maxiter": maxiter, "ftol": 1e-16},
                     constraints=[{"type": "eq", "fun": lambda b: X @ b - y, "jac": lambda b: X}])
        state["x"], msg = r.x, str(r.message)
    except _TimeUp:
        msg = f"stopped at the {seconds:g} s cap"
    return state["x"], state["it"], msg


def fig2_predictor_vs_slsqp(sz: Sizes, seed: int, n: int = 100, d: int = 1000, alpha: float = 0.1) -> dict:
    rng = np.random.default_rng(seed + 2)
    X = rng.standard_normal((n, d))
    bstar = np.zeros(d)
    bstar[: n // 10] = rng.standard_normal(n // 10)
    y = X @ bstar
    mirror = compiled(th.pm, "mirror", ("b", "alpha"))
    flow_limit(X[:5, :20], y[:5], alpha)  # compile the derivation outside the timings
    reps = max(2, sz.reps - 1)
    times, outs = interleaved({"newton": lambda: flow_limit(X, y, alpha),
                               "slsqp": lambda: slsqp_potential(X, y, alpha, sz.slsqp_seconds)}, reps)
    pred = outs["newton"]
    bs, its, msg = outs["slsqp"]
    kn, ks = _kkt(X, y, pred.b, alpha, mirror), _kkt(X, y, bs, alpha, mirror)
    return {
        "time_ratio": median_ratio(times["slsqp"], times["newton"]), "time_goal": 100.0,
        "kkt_ratio": ks["kkt"] / max(kn["kkt"], 1e-300), "kkt_goal": 1e4,
        "newton": {"seconds": times["newton"], "iterations": pred.iterations, "status": pred.status, **kn},
        "slsqp": {"seconds": times["slsqp"], "iterations": its, "message": msg, **ks,
                  "rel_err_vs_newton": float(np.linalg.norm(bs - pred.b) / np.linalg.norm(pred.b))},
        "note": "SLSQP is capped at slsqp_seconds per solve; when it hits the cap the time ratio is a lower bound",
        "sizes": {"n": n, "d": d, "alpha": alpha, "reps": reps, "slsqp_seconds": sz.slsqp_seconds},
    }


def fig3_flow_vs_gd(sz: Sizes, seed: int, n: int = 10, d: int = 30, alpha: float = 1.0) -> dict:
    """GF limit by the integrator (train_gf, stop at relative residual 1e-10) to 1e-8 vs GD with a step small enough
    for 1e-4: GD's limit moves O(eta) from GF's (Even et al. 2023), C measured at two steps, eta = 1e-4/C/2."""
    rng = np.random.default_rng(seed + 3)
    X = rng.standard_normal((n, d))
    bstar = np.zeros(d)
    bstar[:3] = rng.standard_normal(3)
    y = X @ bstar
    ref = flow_limit(X, y, alpha).b
    scale = np.linalg.norm(ref)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    p0 = init_params("pm", [alpha], d)
    big = 0.2 / (4 * np.linalg.norm(X, 2) ** 2 / n * (np.abs(ref).max() + 2 * alpha**2))
    probe = train_gd("pm", Xt, yt, init_params("pm", [alpha, alpha], d), [big, big / 2], 200000, tol=1e-26)
    errs = np.linalg.norm(probe.b.numpy() - ref, axis=1) / scale
    C = abs(errs[0] - errs[1]) / (big / 2)
    eta = min(big, 0.5e-4 / max(C, 1e-300))
    steps = int(50 / eta) + 1

    def gd():
        return train_gd("pm", Xt, yt, p0, eta, steps, tol=1e-26, check_every=200)

    def gf():
        return train_gf("pm", Xt, yt, p0, [0.0], rtol=1e-11, atol=1e-13, method="DOP853",
                        stop_residual=1e-10, t_max=1e3)

    times, outs = interleaved({"gf": gf, "gd": gd}, sz.reps)
    err_gd = float(np.linalg.norm(outs["gd"].b[0].numpy() - ref) / scale)
    err_gf = float(np.linalg.norm(outs["gf"].b[-1, 0].numpy() - ref) / scale)
    return {
        "time_ratio_gd_over_gf": median_ratio(times["gd"], times["gf"]),
        "gf": {"seconds": times["gf"], "rel_err_vs_dual_newton": err_gf, "target": 1e-8, "nfev": outs["gf"].nfev,
               "t_final": outs["gf"].t_final},
        "gd": {"seconds": times["gd"], "rel_err_vs_dual_newton": err_gd, "target": 1e-4, "eta": eta,
               "steps": int(outs["gd"].steps[0]), "status": outs["gd"].status[0], "C_eta": float(C)},
        "sizes": {"n": n, "d": d, "alpha": alpha, "reps": sz.reps},
    }


def fig4_roofline(fig1: dict | None, scaling: dict | None, device) -> dict:
    """Achieved GFLOP/s and GB/s of the batched trainer next to the machine's measured GEMM and copy rates."""
    out = {"device": str(device)}
    peak64, peak32, bw = matmul_rate(device), matmul_rate(device, torch.float32), copy_rate(device)
    out.update(matmul_gflops_f64=peak64 / 1e9, matmul_gflops_f32=peak32 / 1e9, copy_gbytes_per_s=bw / 1e9)
    rows = []
    if fig1 and "error" not in fig1:
        s = fig1["sizes"]
        rows.append({"case": f"fig1 R={s['R']} n={s['n']} d={s['d']} f64", "gflops": fig1["gflops_f64"],
                     "gbytes_per_s": fig1["gbytes_per_s_f64"]})
    if scaling and "error" not in scaling:
        for r in scaling["vs_R"][-2:]:
            rows.append({"case": f"scaling R={r['R']} n={r['n']} d={r['d']} f64", "gflops": r["gflops"],
                         "gbytes_per_s": r["gbytes_per_s"]})
    for r in rows:
        ai = r["gflops"] / max(r["gbytes_per_s"], 1e-300)
        r["flop_fraction"] = r["gflops"] * 1e9 / peak64
        r["bandwidth_fraction"] = r["gbytes_per_s"] * 1e9 / bw
        r["roofline_fraction"] = r["gflops"] * 1e9 / min(peak64, ai * bw)
    out["cases"] = rows
    out["roofline_fraction"] = max((r["roofline_fraction"] for r in rows), default=None)
    return out


def _step_time(R, n, d, device, dtype=torch.float64, budget: float = 0.25) -> tuple[float, int]:
    X, y, alpha, eta = dln_problems(R, n, d, seed=R + d, dtype=dtype, device=device)
    p0 = init_params("pm", alpha, d, dtype=dtype, device=device)
    steps = 2
    while True:
        dt, _ = timed(lambda: train_gd("pm", X, y, p0, eta, steps, tol=0.0, check_every=steps), device)
        if dt >= budget or steps >= 4096:
            return dt / steps, steps
        steps = int(min(4096, max(2 * steps, steps * 1.2 * budget / max(dt, 1e-9))))


def fig5_scaling(sz: Sizes, device, n: int = 40, d: int = 100) -> dict:
    vs_R, vs_d = [], []
    for R in sz.scale_R:
        t, steps = _step_time(R, n, d, device)
        f, b = gd_counts(R, n, d, 8)
        vs_R.append({"R": R, "n": n, "d": d, "seconds_per_step": t, "steps_timed": steps, "gflops": f / t / 1e9,
                     "gbytes_per_s": b / t / 1e9})
    for dd in sz.scale_d:
        t, steps = _step_time(sz.scale_d_R, n, dd, device)
        vs_d.append({"R": sz.scale_d_R, "n": n, "d": dd, "seconds_per_step": t, "steps_timed": steps})
    Rs = [r["R"] for r in vs_R]
    upper = [r for r in vs_R if r["R"] >= 64] or vs_R
    return {
        "exponent_R_all": loglog_slope(Rs, [r["seconds_per_step"] for r in vs_R]),
        "exponent_R_large": loglog_slope([r["R"] for r in upper], [r["seconds_per_step"] for r in upper]),
        "exponent_d_all": loglog_slope([r["d"] for r in vs_d], [r["seconds_per_step"] for r in vs_d]),
        "exponent_d_large": loglog_slope([r["d"] for r in vs_d[-3:]], [r["seconds_per_step"] for r in vs_d[-3:]]),
        "vs_R": vs_R, "vs_d": vs_d,
    }


def memory_vs_R(Rs, device, n: int = 40, d: int = 100) -> dict:
    """Peak memory the trainer adds above its inputs (X, y, params0), per run, vs R; should be linear in R."""
    from .bench_util import exact_rss_for_large_allocations

    import os
    fixed = (torch.device(device).type == "cuda" or os.environ.get("VERIFY_BENCH_RSS") != "1"
             or exact_rss_for_large_allocations())
    rows = []
    for R in Rs:
        X, y, alpha, eta = dln_problems(R, n, d, seed=R, device=device)
        p0 = init_params("pm", alpha, d, device=device)
        mem, how = peak_memory(lambda: train_gd("pm", X, y, p0, eta, 20, tol=0.0, check_every=10), device)
        rows.append({"R": R, "peak_bytes": mem, "peak_bytes_per_run": None if mem is None else mem / R,
                     "state_bytes_per_run": 2 * d * 8, "data_bytes_per_run": (n * d + n) * 8})
        del X, y, p0
    ok = [(r["R"], r["peak_bytes"]) for r in rows if r["peak_bytes"]]
    big = ok[len(ok) // 2:] if len(ok) >= 4 else ok
    lin = np.polyfit(*zip(*ok), 1) if len(ok) >= 2 else (None, None)
    return {"method": how + ("" if fixed else " (malloc threshold not fixed: may undercount)"),
            "exponent_R": loglog_slope(*zip(*big)) if len(big) >= 2 else None,
            "exponent_fit_on_R": [R for R, _ in big],
            "linear_fit_bytes_per_run": None if lin[0] is None else float(lin[0]),
            "linear_fit_fixed_bytes": None if lin[1] is None else float(lin[1]), "rows": rows}


def full_sweep(R: int, device, n: int = 40, d: int = 100, steps: int = 200) -> dict:
    """A GPU-saturating sweep: R runs with per-run data, float64 and float32, run-steps per second."""
    out = {"R": R, "n": n, "d": d, "steps": steps}
    for name, dt in (("f64", torch.float64), ("f32", torch.float32)):
        X, y, alpha, eta = dln_problems(R, n, d, seed=7, dtype=dt, device=device)
        p0 = init_params("pm", alpha, d, dtype=dt, device=device)
        train_gd("pm", X, y, p0, eta, 5, tol=0.0)
        sync(device)
        ts = [timed(lambda: train_gd("pm", X, y, p0, eta, steps, tol=0.0, check_every=steps), device)[0]
              for _ in range(3)]
        f, b = gd_counts(R, n, d, X.element_size())
        t = median(ts) / steps
        out[name] = {"run_steps_per_s": R / t, "gflops": f / t / 1e9, "gbytes_per_s": b / t / 1e9, "seconds": ts}
        del X, y
    return out


def fig_sweep_predictor(sz: Sizes, seed: int, P: int = 16, n: int = 20, d: int = 100, A: int = 9) -> dict:
    """Batched dual Newton over P problems along an alpha sweep (warm starts) vs flow_limit one at a time."""
    from numerics.batched import sweep_flow_limits

    rng = np.random.default_rng(seed + 6)
    X = rng.standard_normal((P, n, d))
    bstar = np.zeros((P, d))
    bstar[:, :3] = rng.standard_normal((P, 3))
    y = np.einsum("pnd,pd->pn", X, bstar)
    alphas = np.logspace(0, -4, A)
    flow_limit(X[0], y[0], 0.5)
    times, outs = interleaved({"batched": lambda: sweep_flow_limits(X, y, alphas),
                               "loop": lambda: [[flow_limit(X[p], y[p], a) for p in range(P)] for a in alphas]},
                              max(2, sz.reps - 1))
    err = max(float(np.abs(o.b[p] - outs["loop"][i][p].b).max() / np.abs(outs["loop"][i][p].b).max())
              for i, o in enumerate(outs["batched"]) for p in range(P))
    return {"ratio": median_ratio(times["loop"], times["batched"]), "seconds": times,
            "max_rel_diff": err, "max_residual": float(max(o.residual.max() for o in outs["batched"])),
            "converged": int(sum(o.status.count("converged") for o in outs["batched"])), "solves": P * A,
            "sizes": {"P": P, "n": n, "d": d, "alphas": alphas.tolist()}}


def fig_fused_cpu(sz: Sizes, seed: int) -> dict:
    """Fused CPU trainer (verify.train.kernels.dln_numba, exact-GD statistics included, and without them) vs the batched
    einsum trainer (train_gd, plain and recording GDStats) vs the autograd per-network loop, one thread, per-run X;
    its rate as a fraction of the one-thread float64 GEMM rate (4nd flops per run-step), the GEMM (2048^2) timed in
    the same interleaved repetitions so that the machine's load weighs on both alike."""
    from verify.train.device import one_thread
    from verify.train.kernels import dln_numba

    with one_thread("cpu"):
        X, y, alpha, eta = dln_problems(sz.R, sz.n, sz.d, seed)
        p0 = init_params("pm", alpha, sz.d)
        every = max(50, sz.steps // 10)
        sub = np.linspace(0, sz.R - 1, sz.loop_subset).round().astype(int)
        dln_numba.train_gd("pm", X[:2], y[:2], p0[:2], eta[:2], 2)  # compile outside the timings
        g = torch.Generator().manual_seed(0)
        A, B = (torch.randn(2048, 2048, generator=g, dtype=torch.float64) for _ in range(2))
        A @ B
        fns = {"fused": lambda: dln_numba.train_gd("pm", X, y, p0, eta, sz.steps, tol=0.0, check_every=every),
               "fused_no_stats": lambda: dln_numba.train_gd("pm", X, y, p0, eta, sz.steps, tol=0.0,
                                                            check_every=every, stats=False),
               "einsum": lambda: _batched(X, y, alpha, eta, sz.steps),
               "einsum_stats": lambda: _batched_with_stats(X, y, alpha, eta, sz.steps, None),
               "loop_subset": lambda: [loop_one(X[i], y[i], float(alpha[i]), float(eta[i]), sz.steps) for i in sub],
               "gemm": lambda: A @ B}
        times, outs = interleaved(fns, sz.reps)
        peak = 2.0 * 2048**3 / median(times["gemm"])
    (res, sums), ref, st = outs["fused"], outs["einsum"], outs["einsum_stats"]
    scale = sz.R / sz.loop_subset
    rate = sz.R * sz.steps / median(times["fused"])
    mine = sums.gdstats("pm", alpha.numpy())
    return {
        "ratio_vs_einsum": median_ratio(times["einsum"], times["fused"]), "goal": 2.0,
        "ratio_vs_einsum_stats": median_ratio(times["einsum_stats"], times["fused"]),
        "ratio_no_stats_vs_einsum": median_ratio(times["einsum"], times["fused_no_stats"]),
        "ratio_vs_loop": median_ratio(times["loop_subset"], times["fused"], scale), "goal_vs_loop": 100.0,
        "ratio_einsum_vs_loop": median_ratio(times["loop_subset"], times["einsum"], scale),
        "run_steps_per_s": {"fused": rate, "fused_no_stats": sz.R * sz.steps / median(times["fused_no_stats"]),
                            "einsum": sz.R * sz.steps / median(times["einsum"]),
                            "einsum_stats": sz.R * sz.steps / median(times["einsum_stats"]),
                            "loop": sz.loop_subset * sz.steps / median(times["loop_subset"])},
        "gflops_fused": rate * 4.0 * sz.n * sz.d / 1e9, "matmul_gflops_f64_one_thread": peak / 1e9,
        "peak_fraction": rate * 4.0 * sz.n * sz.d / peak,
        "peak_fraction_no_stats": sz.R * sz.steps / median(times["fused_no_stats"]) * 4.0 * sz.n * sz.d / peak,
        "max_rel_params_vs_einsum": float(((res.params - ref.params).abs().amax(dim=(1, 2))
                                           / ref.params.abs().amax(dim=(1, 2))).max()),
        "max_abs_log_c_vs_gdstats": float(np.abs(mine.log_c() - st.log_c()).max()),
        "max_abs_theta_vs_gdstats": float(np.abs(mine.theta() - st.theta()).max()),
        "statistics": f"blocks of {dln_numba.BLOCK} steps, one log1p per block and coordinate (dln_numba)",
        "seconds": dict(times), "threads": 1,
        "loop_extrapolated": f"{sz.loop_subset} of {sz.R} networks timed one after another, scaled by {scale:g}",
        "sizes": {"R": sz.R, "n": sz.n, "d": sz.d, "steps": sz.steps, "reps": sz.reps},
    }


def fig_cp_gradient(sz: Sizes, seed: int, cases=((4, 10, 2000, 1000), (3, 40, 2000, 100), (4, 20, 500, 100))) -> dict:
    """CP completion gradient (verify.train.tensor.CPLoss), dense GEMM form vs gather form, 3 runs per call, one
    thread: (order, dim, |Omega|, R) = Razin et al.'s full size, and two sparser ones around the auto rule's switch."""
    from verify.train.device import one_thread
    from verify.train.tensor import DENSE_CROSSOVER, CPLoss, make_completion

    rows = []
    with one_thread("cpu"):
        for N, d, n, R in cases:
            rng = np.random.default_rng(seed + 7)
            prob = make_completion(rng, N, d, 5, n)
            F = torch.tensor(rng.standard_normal((3, N, d, R)) * 0.3)
            losses = {f: CPLoss(prob, form=f) for f in ("dense", "gather")}
            calls = max(2, int(2e8 / (3 * d**N * R * 3)))
            times, outs = interleaved({f: (lambda L=L: [L.grad(F) for _ in range(calls)][-1])
                                       for f, L in losses.items()}, sz.reps)
            g_d, g_g = outs["dense"][0], outs["gather"][0]
            rows.append({"order": N, "dim": d, "n_obs": n, "R": R, "auto": CPLoss(prob).form,
                         "dense_over_gather_size": d**N / (N * n), "crossover": DENSE_CROSSOVER,
                         "ms_per_call": {f: 1e3 * median(ts) / calls for f, ts in times.items()},
                         "ratio_gather_over_dense": median_ratio(times["gather"], times["dense"]),
                         "dense_gflops": 2 * 3 * 3 * d**N * R * calls / median(times["dense"]) / 1e9,
                         "max_rel_diff": float((g_d - g_g).abs().max() / g_g.abs().max())})
    return {"cases": rows, "threads": 1}
