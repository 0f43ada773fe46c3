"""The l1 phase transition of the small-alpha GF limit (THEORY.md §1: alpha -> 0 gives min-l1).

Exact recovery of an s-sparse +-1 vector b* in R^d from n Gaussian measurements by the GF limit of a `pm` DLN
(argmin_{Xb=y} Q_alpha, numerics.phase.recovery_batch; recovery = ||b - b*|| / ||b*|| < 1e-3) and by its
alpha -> 0 limit, min-l1 (Woodworth et al. 2020, Thm 2), decided exactly per instance (dual certificate from the
GF dual, a feasible point of smaller l1 norm, or the LP).

Derived references (theory.phase): the statistical dimension delta(D) of the l1 descent cone at b* (Monte Carlo of
E dist^2(g, cone d||b*||_1), inner minimization exact), and the Crofton formula P(fail at n) = 2(v_{n+1} + v_{n+3}
+ ...), whose sum over n is exactly delta(D) + 1/2: the mean recovery threshold. The 50% point n50 of the
recovery curve equals delta(D) in the normal approximation of the intrinsic volumes (measured: within 0.1 at
d = 100). The ALMT closed form psi(s, d) = inf_tau F(tau) is an upper bound on delta(D) (Jensen; ALMT Prop 4.5:
gap <= 2 sqrt(d/s)); at d = 100, s = 5 it is 0.50 above, which the binomial errors of a few hundred trials resolve,
so the judged reference is delta(D) and psi is reported.

Judged (empirical: stated tests at stated levels, no calibrated band):
1. min-l1 mean threshold - 1/2 = delta(D): two-sided z-test, level 1e-3 (|z| <= 3.29);
2. min-l1 probit n50 = delta(D): two-sided z-test, level 1e-3;
3. the GF limit approaches that limit as alpha falls: the extra measurements Delta(alpha) = sum_n [P(GF at alpha
   fails) - P(min-l1 fails)] on the same instances decrease at every step down the alpha grid (paired one-sided
   z-test per step, level 1e-3: a step fails when Delta rises by more than 3.09 SE);
4. every GF prediction converged (KKT residual <= 1e-13) or was redone by flow_limit.
Reported: n50(alpha), mean threshold and Delta(alpha) with SEs (the cost of a finite init: Delta(alpha)
log10(1/alpha) stays near 35-42 for alpha 1e-10..1e-80 at d = 100, s = 5, i.e. Delta ~ 1/ln(1/alpha); docs/sweeps.md),
psi(s, d), the probit width over sqrt(d) and the ALMT halfwidth a_{1/2} sqrt(d).
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager

from numerics.phase import THRESHOLD

from verify.sweeps import phase as vp
from verify.sweeps.engine import run_sweep
from .registry import Context, Measurement, claim

Z_TWO_SIDED = 3.2905   # two-sided level 1e-3
Z_ONE_SIDED = 3.0902   # one-sided level 1e-3


def sizes(quick: bool) -> dict:
    """Quick: one (d, s) in-process (<= 60 s on one core). Full: the whole diagram through verify.sweeps.engine (Dask)."""
    if quick:
        return dict(d=100, s=(5,), n=lambda s, d: list(range(8, 37)), trials=100, chunk=100,
                    alphas=vp.QUICK_ALPHAS, samples=100_000)
    return dict(d=100, s=(5, 10, 20), n=lambda s, d: list(range(s, d + 1)), trials=400, chunk=200,
                alphas=vp.QUICK_ALPHAS + (1e-60, 1e-80), samples=400_000)


def judge(table: dict, d: int, s: int, samples: int) -> tuple[dict, dict]:
    """Violations and details for one (d, s) group of a phase table."""
    ref = dict(vp.reference(d, s, samples))
    cv = vp.curves(table, d, s)
    rows = vp.alpha_rows(cv)
    alphas = sorted((a for a in cv if a > 0), reverse=True)
    ex = vp.excess(table, d, s, alphas)
    for r in rows:
        if r["alpha"] > 0:
            r.update(excess=ex[r["alpha"]]["excess"], excess_se=ex[r["alpha"]]["se"], gf_only=ex[r["alpha"]]["gf_only"],
                     excess_times_log10=ex[r["alpha"]]["excess"] * -math.log10(r["alpha"]))
    l1 = next(r for r in rows if r["alpha"] == 0)
    z_mean = (l1["mean_threshold"] - 0.5 - ref["delta"]) / math.hypot(l1["mean_threshold_se"], ref["delta_se"])
    z_n50 = (l1["n50"] - ref["delta"]) / math.hypot(l1["n50_se"], ref["delta_se"])
    steps = []
    for hi, lo in zip(alphas[:-1], alphas[1:]):
        rise, se = vp.step_rise(table, d, s, hi, lo)
        z = rise / se if se > 0 else (0.0 if rise <= 0 else math.inf)
        steps.append(dict(alpha_from=hi, alpha_to=lo, rise=rise, se=se, z=z))
    unresolved = sum(r["unresolved"] for r in rows)
    v = dict(mean_threshold=int(not abs(z_mean) <= Z_TWO_SIDED),
             n50=int(not (l1["n50_inside"] and abs(z_n50) <= Z_TWO_SIDED)),
             approach=sum(int(st["z"] > Z_ONE_SIDED) for st in steps), unresolved=int(unresolved > 0))
    small = min(alphas)
    rs = next(r for r in rows if r["alpha"] == small)
    details = dict(d=d, s=s, reference=ref, z_mean_threshold=z_mean, z_n50=z_n50,
                   n50_l1=l1["n50"], n50_l1_se=l1["n50_se"], mean_threshold_l1=l1["mean_threshold"],
                   mean_threshold_l1_se=l1["mean_threshold_se"],
                   l1_grid_ends=dict(success_at_n_lo=l1["success_at_n_lo"], fail_at_n_hi=l1["fail_at_n_hi"]),
                   smallest_alpha=small, n50_smallest_alpha=rs["n50"], n50_smallest_alpha_se=rs["n50_se"],
                   extra_measurements_smallest_alpha=rs["excess"], extra_measurements_smallest_alpha_se=rs["excess_se"],
                   z_n50_smallest_alpha_vs_delta=(rs["n50"] - ref["delta"]) / math.hypot(rs["n50_se"], ref["delta_se"]),
                   z_n50_l1_vs_psi=(l1["n50"] - ref["psi"]) / l1["n50_se"], psi_minus_delta=ref["psi"] - ref["delta"],
                   width_l1_over_sqrt_d=l1["width"] / math.sqrt(d), steps=steps, per_alpha=rows,
                   table=vp.table_lines(d, s, THRESHOLD, ref, rows))
    return v, details


def phase_table(ctx: Context, cfg: dict, s: int, client=None) -> dict:
    grid = dict(d=[cfg["d"]], s=[s], n=cfg["n"](s, cfg["d"]), alpha=list(cfg["alphas"]))
    if ctx.quick:   # in this process: one batched call per n
        res = run_sweep("phase", grid, cfg["trials"], ctx.seed, cfg["chunk"], out=None, workers=0, progress=False,
                        summarize=False, draw=False)
    else:           # the whole diagram on Dask, resumable from the chunk files in ctx.out
        res = run_sweep("phase", grid, cfg["trials"], ctx.seed, cfg["chunk"], out=ctx.out / f"phase_sweep_s{s}",
                        client=client, progress=False, summarize=False, draw=False)
    if res.errors:
        raise RuntimeError(f"{len(res.errors)} sweep chunks failed: {next(iter(res.errors.values()))}")
    return res.table


@contextmanager
def _dask(quick: bool):
    """No client at quick size; inside a verify.all Dask worker the cluster it runs on (this task secedes while its
    chunks run); else a LocalCluster with one single-threaded worker per core."""
    if quick:
        yield None
        return
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):
        from verify.sweeps.cluster import connect

        client, cluster = connect(None, os.cpu_count() or 1)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    else:
        with worker_client() as client:
            yield client


@claim("dln.flow.phase_transition",
       "as alpha -> 0 the GF limit of a pm DLN (argmin Q_alpha) recovers an s-sparse vector from n Gaussian "
       "measurements (d = 100; ||b - b*||/||b*|| < 1e-3) past a threshold that falls to the l1 phase transition: at "
       "the alpha -> 0 limit (min-l1) the mean recovery threshold is delta(D) + 1/2 (Crofton) and the probit 50% "
       "point n50 is delta(D), delta(D) the statistical dimension of the l1 descent cone (two-sided z-tests, level "
       "1e-3 each); the GF limit's extra measurements over min-l1 on the same instances fall at every step down "
       "the alpha grid (1e-2 to 1e-40; 1e-80 with --full; paired one-sided z-tests, level 1e-3); n50(alpha) and "
       "the ALMT closed form psi(s, d) >= delta(D) are reported",
       "Amelunxen, Lotz, McCoy, Tropp 2014, arXiv 1303.6672 (Thm II, Prop 4.5, Crofton formula); Woodworth et al. "
       "2020, arXiv 2002.09277, Thm 2 (alpha -> 0 gives min-l1)", kind="empirical")
def phase_transition(ctx: Context) -> Measurement:
    cfg = sizes(ctx.quick)
    violations, details, plots = {}, {}, []
    with _dask(ctx.quick) as client:
        tables = {s: phase_table(ctx, cfg, s, client) for s in cfg["s"]}
    for s, table in tables.items():
        v, det = judge(table, cfg["d"], s, cfg["samples"])
        violations[f"s={s}"] = v
        details[f"s={s}"] = det
        plots.append(vp.plot(table, {}, ctx.plot_path(f"dln_flow_phase_transition_s{s}.png"), samples=cfg["samples"]))
    total = sum(sum(v.values()) for v in violations.values())
    return Measurement("violated conditions (min-l1 mean threshold and n50 vs delta(D), z-tests at level 1e-3; "
                       "steps of alpha where the GF limit's extra measurements rise, one-sided level 1e-3; "
                       "unconverged predictions)", total, 0,
                       dict(violations=violations, levels=dict(two_sided=1e-3, one_sided=1e-3,
                                                               z_two_sided=Z_TWO_SIDED, z_one_sided=Z_ONE_SIDED),
                            trials_per_n=cfg["trials"], alphas=list(cfg["alphas"]), **details), plots)
