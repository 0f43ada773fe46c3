"""The phase diagram of the small-alpha GF limit: the ``phase`` sweep task, its summary table and its plot.

One chunk = one (d, s, n) cell and a range of trials, computed by ONE batched call of
``numerics.phase.recovery_batch`` (the GF limit at every alpha along one warm-started continuation, and the
alpha -> 0 limit, min-l1, decided exactly per instance). Rows: one per (instance, alpha); alpha = 0 rows are the
min-l1 limit. ``summarize`` turns the rows into, per alpha, the mean recovery threshold (sum over n of the failure
fraction; Crofton: delta(D) + 1/2 for min-l1), the probit n50 and the interpolated n50, all with binomial SEs,
next to the statistical dimension (ALMT closed form and the descent cone's own, by Monte Carlo).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from numerics import phase as ph

from .engine import Param, SweepTask, register

QUICK_ALPHAS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8, 1e-10, 1e-15, 1e-20, 1e-30, 1e-40)


def _run(params: dict, trials: np.ndarray, seeds: list) -> dict:
    cols = ph.recovery_batch(params["n"], params["d"], params["s"], params["alpha"], seeds, params["threshold"])
    cols["trial"] = np.asarray(trials)[cols["trial"]]
    return cols


def _check(params: dict) -> None:
    d, s, n, thr = params["d"], params["s"], params["n"], params["threshold"]
    if d < 1 or not 1 <= s <= d:
        raise ValueError(f"phase: need 1 <= s <= d, got s={s}, d={d}")
    if not 1 <= n <= d:
        raise ValueError(f"phase: need 1 <= n <= d, got n={n}, d={d}")
    if not 0 < thr < 1:
        raise ValueError(f"phase: threshold must be in (0, 1), got {thr}")
    if any(not (a > 0) for a in params["alpha"]):
        raise ValueError(f"phase: every alpha must be > 0, got {params['alpha']}")


def curves(table: dict, d: int, s: int, threshold: float | None = None) -> dict[float, dict]:
    """Per alpha (0 = min-l1): grid ns, successes k, trials T (resolved instances only) and unresolved counts."""
    sel = (table["d"] == d) & (table["s"] == s)
    if threshold is not None:
        sel &= table["threshold"] == threshold
    out = {}
    for a in sorted(set(table["alpha"][sel].tolist()), reverse=True):
        m = sel & (table["alpha"] == a)
        ns = np.array(sorted(set(table["n"][m].tolist())))
        ok = m & table["converged"].astype(bool)
        k = np.array([int(table["recovered"][ok & (table["n"] == n)].sum()) for n in ns])
        T = np.array([int((ok & (table["n"] == n)).sum()) for n in ns])
        bad = int((m & ~table["converged"].astype(bool)).sum())
        out[float(a)] = dict(ns=ns, k=k, T=T, unresolved=bad)
    return out


@lru_cache(maxsize=64)
def reference(d: int, s: int, samples: int = 200_000) -> dict:
    """The statistical dimension: ALMT closed form psi(s, d) (an upper bound) and the descent cone's delta(D)."""
    dD, dD_se = ph.descent_cone_dimension(s, d, samples=samples)
    return dict(psi=ph.statistical_dimension(s, d), tau_star=ph.tau_star(s, d), delta=dD, delta_se=dD_se,
                almt_gap_bound=2 * math.sqrt(d / s), almt_halfwidth_eta_half=ph.almt_halfwidth(d, 0.5),
                mean_threshold_pred=dD + 0.5)


def alpha_rows(cv: dict[float, dict]) -> list[dict]:
    rows = []
    for a, c in cv.items():
        T = np.maximum(c["T"], 1)
        consecutive = bool(np.all(np.diff(c["ns"]) == 1))
        mt = ph.mean_threshold(c["ns"], c["k"], T) if consecutive and np.all(c["T"] > 0) else None
        pr = ph.n50_probit(c["ns"], c["k"], T)
        it = ph.n50_interpolated(c["ns"], c["k"], T)
        rows.append(dict(alpha=a, n_lo=int(c["ns"][0]), n_hi=int(c["ns"][-1]), trials=int(c["T"].min()),
                         unresolved=c["unresolved"],
                         mean_threshold=None if mt is None else mt["value"],
                         mean_threshold_se=None if mt is None else mt["se"],
                         mean_truncated=None if mt is None else bool(mt["truncated_low"] or mt["truncated_high"]),
                         fail_at_n_hi=float(1 - c["k"][-1] / T[-1]), success_at_n_lo=float(c["k"][0] / T[0]),
                         n50=pr["n50"], n50_se=pr["se"], n50_inside=pr["inside"], width=pr["width"],
                         n50_interp=it["n50"], n50_interp_se=it["se"]))
    return rows


def excess(table: dict, d: int, s: int, alphas: list[float], threshold: float | None = None) -> dict[float, dict]:
    """Paired extra measurements of the GF limit at alpha over its alpha -> 0 limit on the same instances:
    Delta(alpha) = sum_n [P(GF fails at alpha) - P(min-l1 fails)], with its SE from the per-n paired variances, and
    the count of instances the GF limit recovers while min-l1 does not."""
    sel = (table["d"] == d) & (table["s"] == s)
    if threshold is not None:
        sel &= table["threshold"] == threshold
    out = {}
    zero = sel & (table["alpha"] == 0)
    key0 = {(int(n), int(t)): bool(r)
            for n, t, r in zip(table["n"][zero], table["trial"][zero], table["recovered"][zero])}
    for a in alphas:
        m = sel & (table["alpha"] == a) & table["converged"].astype(bool)
        diffs: dict[int, list[int]] = {}
        only_gf = 0
        for n, t, r in zip(table["n"][m], table["trial"][m], table["recovered"][m]):
            l1 = key0[(int(n), int(t))]
            diffs.setdefault(int(n), []).append(int(l1) - int(r))      # fail_gf - fail_l1
            only_gf += int(bool(r) and not l1)
        val = sum(float(np.mean(v)) for v in diffs.values())
        var = sum(float(np.var(v, ddof=1)) / len(v) if len(v) > 1 else 0.0 for v in diffs.values())
        out[float(a)] = dict(excess=val, se=math.sqrt(var), gf_only=only_gf)
    return out


def step_rise(table: dict, d: int, s: int, hi: float, lo: float) -> tuple[float, float]:
    """Delta(lo) - Delta(hi) = sum_n [P(GF fails at alpha = lo) - P(GF fails at alpha = hi)], paired on the same
    instances, with its SE (per-n paired variances): how much the extra measurements rise from hi down to lo."""
    sel = (table["d"] == d) & (table["s"] == s) & table["converged"].astype(bool)
    fail = {}
    for a in (hi, lo):
        m = sel & (table["alpha"] == a)
        fail[a] = {(int(n), int(t)): 1 - int(r)
                   for n, t, r in zip(table["n"][m], table["trial"][m], table["recovered"][m])}
    per_n: dict[int, list[int]] = {}
    for key, f_hi in fail[hi].items():
        if key in fail[lo]:
            per_n.setdefault(key[0], []).append(fail[lo][key] - f_hi)
    val = sum(float(np.mean(v)) for v in per_n.values())
    var = sum(float(np.var(v, ddof=1)) / len(v) for v in per_n.values() if len(v) > 1)
    return val, math.sqrt(var)


def summarize(table: dict, config: dict, samples: int = 200_000) -> dict:
    """Per (d, s, threshold): reference dimensions and the per-alpha table; ``lines`` for printing."""
    groups = sorted({(int(d), int(s), float(t)) for d, s, t in zip(table["d"], table["s"], table["threshold"])})
    out = dict(groups=[], lines=[])
    for d, s, thr in groups:
        ref = reference(d, s, samples)
        cv = curves(table, d, s, thr)
        rows = alpha_rows(cv)
        ex = excess(table, d, s, [a for a in cv if a > 0], thr)
        for r in rows:
            if r["alpha"] > 0:
                r.update(excess=ex[r["alpha"]]["excess"], excess_se=ex[r["alpha"]]["se"],
                         gf_only=ex[r["alpha"]]["gf_only"])
        out["groups"].append(dict(d=d, s=s, threshold=thr, reference=ref, alphas=rows))
        out["lines"] += table_lines(d, s, thr, ref, rows)
    return out


def _f(x, se=None, digits=2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None and math.isfinite(se) else "")


def table_lines(d, s, thr, ref, rows) -> list[str]:
    lines = [f"d = {d}, s = {s}, recovery ||b - b*||/||b*|| < {thr:g}: psi(s, d) = {ref['psi']:.3f} "
             f"(ALMT closed form), "
             f"delta(D) = {ref['delta']:.3f} ± {ref['delta_se']:.3f} (descent cone, Monte Carlo)",
             "| alpha | n50 (probit) | n50 (interp.) | mean threshold - 1/2 | extra measurements vs min-l1 |",
             "|---|---|---|---|---|"]
    for r in rows:
        a = "0 (min-l1)" if r["alpha"] == 0 else f"{r['alpha']:.0e}"
        mt = "-" if r["mean_threshold"] is None else (_f(r["mean_threshold"] - 0.5, r["mean_threshold_se"])
                                                      + (" (grid-truncated)" if r["mean_truncated"] else ""))
        n50 = _f(r["n50"], r["n50_se"]) if r["n50_inside"] else (f"> {r['n_hi']}" if r["fail_at_n_hi"] > 0.5 else "-")
        ex = "-" if r["alpha"] == 0 else _f(r.get("excess"), r.get("excess_se"))
        lines.append(f"| {a} | {n50} | {_f(r['n50_interp'], r['n50_interp_se'])} | {mt} | {ex} |")
    return lines


def plot(table: dict, config: dict, path: Path, summary: dict | None = None, samples: int = 200_000) -> str:
    import matplotlib.pyplot as plt

    from verify.plots import figure, save

    groups = sorted({(int(d), int(s), float(t)) for d, s, t in zip(table["d"], table["s"], table["threshold"])})
    fig, axes = figure(2 * len(groups), width=5.2)
    for g, (d, s, thr) in enumerate(groups):
        ax, bx = axes[2 * g], axes[2 * g + 1]
        cv = curves(table, d, s, thr)
        ref = reference(d, s, samples) if summary is None else summary["groups"][g]["reference"]
        alphas = [a for a in cv if a > 0]
        cmap = plt.get_cmap("viridis")
        for i, a in enumerate(alphas):
            c = cv[a]
            ax.plot(c["ns"], c["k"] / np.maximum(c["T"], 1), color=cmap(i / max(1, len(alphas) - 1)), lw=1,
                    label=f"{a:.0e}" if i % 2 == 0 or i == len(alphas) - 1 else None)
        if 0.0 in cv:
            c = cv[0.0]
            ax.plot(c["ns"], c["k"] / np.maximum(c["T"], 1), "k-", lw=2, label="min-l1 (alpha -> 0)")
        ax.axvline(ref["delta"], color="r", ls="--", lw=1, label=f"delta(D) = {ref['delta']:.2f}")
        ax.axvline(ref["psi"], color="m", ls=":", lw=1, label=f"ALMT psi = {ref['psi']:.2f}")
        ax.set(xlabel="measurements n", ylabel="recovery fraction", title=f"d = {d}, s = {s}")
        ax.legend(fontsize=6)
        rows = alpha_rows(cv)
        xs = [(-math.log10(r["alpha"]) if r["alpha"] > 0 else None) for r in rows]
        pts = [(x, r) for x, r in zip(xs, rows) if x is not None and r["n50_inside"]]
        if pts:
            bx.errorbar([1 / p[0] for p in pts], [p[1]["n50"] for p in pts], yerr=[p[1]["n50_se"] for p in pts],
                        fmt="o-", ms=3, label="n50(alpha), probit")
        l1 = [r for r in rows if r["alpha"] == 0]
        if l1 and l1[0]["n50_inside"]:
            bx.errorbar([0.0], [l1[0]["n50"]], yerr=[l1[0]["n50_se"]], fmt="ks", ms=4, label="min-l1")
        bx.axhline(ref["delta"], color="r", ls="--", lw=1, label="delta(D)")
        bx.axhline(ref["psi"], color="m", ls=":", lw=1, label="ALMT psi")
        bx.set(xlabel="1 / log10(1/alpha)", ylabel="n50", title="50% recovery point vs init scale")
        bx.legend(fontsize=6)
    return save(fig, path)


TASK = register(SweepTask(
    name="phase",
    help="recovery of an s-sparse +-1 vector by the GF limit of a pm DLN (argmin Q_alpha) at every alpha, and by "
         "its alpha -> 0 limit (min-l1), from n Gaussian measurements in dimension d",
    params=(Param("d", int, (100,), "dimension"),
            Param("s", int, (5,), "sparsity"),
            Param("n", int, tuple(range(6, 41)), "measurements"),
            Param("threshold", float, (ph.THRESHOLD,), "recovery: ||b - b*|| / ||b*|| below this"),
            Param("alpha", float, QUICK_ALPHAS, "init scales, solved along one warm-started path", vector=True)),
    run=_run, check=_check, summary=summarize,
    plot=lambda table, config, path: plot(table, config, path),
))
