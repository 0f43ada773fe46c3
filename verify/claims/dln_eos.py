"""Claims: sharpness of trained DLNs, minimum-sharpness interpolator, edge of stability (THEORY §2)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.stats import spearmanr
from scipy.stats import t as t_dist

from numerics.dln_gd import GDStats, exact_limit
from numerics.sharpness import gf_path_sharpness, gfs_sharpness, min_sharpness, min_sharpness_n1, sharpness_interp
from verify.train.dln import init_params, train_gd
from verify.train.sharpness import lanczos_top

from verify.train.device import one_thread
from verify.plots import figure, save
from .registry import Context, Measurement, calibrated, calibration, claim, counterexample

EVEN = "Even, Pesme, Gunasekar, Flammarion 2023, arXiv 2302.08982, Thm 1"
FOJTIK = "Fojtik, Matveev, Chou, Kutyniok, Maly 2025, arXiv 2505.21423"
SNAP_STRIDE = 2   # GD steps between recorded statistics for the GF-solution sharpness diagnosis




def eos_problem(seed: int, quick: bool):
    """The EoS instance: Gaussian X (n=5, d=20 quick; 10 x 40 full), 3-sparse b* = (1, -2, 1.5), `uv` alpha = 0.1."""
    rng = np.random.default_rng(seed * 1_000_003 + 31)
    n, d = (5, 20) if quick else (10, 40)
    X = rng.standard_normal((n, d))
    bstar = np.zeros(d)
    bstar[:3] = [1.0, -2.0, 1.5]
    return X, X @ bstar, 0.1


EOS_GROUP = "eos_sweep"   # claims reading eos_sweep(seed): one task computes it once


@lru_cache(maxsize=4)
def eos_sweep(seed: int, quick: bool, device: str = "cpu"):
    """One batched GD sweep over eta for a `uv` DLN (n=5, d=20 quick), with eta_c, eta_max and the SDP solution."""
    X, y, alpha = eos_problem(seed, quick)
    d = X.shape[1]
    ms = min_sharpness(X, y)
    gp = gf_path_sharpness(X, y, alpha, "uv")
    eta_max, eta_c = ms.eta_max("uv"), gp.eta_c_path
    etas = np.unique(np.concatenate([np.linspace(0.02, eta_c, 8), np.linspace(eta_c, eta_max, 18)[1:-1],
                                     eta_max * np.array([1.02, 1.1, 1.3])]))
    stats = GDStats("uv", np.full(len(etas), alpha), len(etas), d, device=device)
    record, window = stats.callback(torch.as_tensor(etas, device=device)), 300 if quick else 1000
    snaps = [(stats.alpha_sq(), stats.theta())]   # snaps[j]: after j * SNAP_STRIDE steps

    def on_step(k, g, active):
        record(k, g, active)
        if k < window and (k + 1) % SNAP_STRIDE == 0:
            snaps.append((stats.alpha_sq(), stats.theta()))

    with one_thread(device):
        p0 = init_params("uv", np.full(len(etas), alpha), d, device=device)
        res = train_gd("uv", X, y, p0, etas, 40000 if quick else 200000, on_step=on_step)
    params = res.params.detach().cpu().numpy()
    return dict(X=X, y=y, alpha=alpha, ms=ms, gp=gp, eta_c=eta_c, eta_max=eta_max, etas=etas, res=res,
                params=params, b=res.b.detach().cpu().numpy(), S=sharpness_interp("uv", params, X), stats=stats,
                snaps=snaps)


def _exact_gd_diagnosis(sw, conv) -> dict:
    """Per converged run (None otherwise): distance to the exact GD limit (Even et al. Thm 1), alpha_inf / alpha."""
    err, shrink = [None] * len(conv), [None] * len(conv)
    alpha_sq = sw["stats"].alpha_sq()
    for i in np.flatnonzero(conv):
        b = sw["b"][i]
        err[i] = float(np.linalg.norm(exact_limit(sw["X"], sw["y"], sw["stats"], i).b - b) / np.linalg.norm(b))
        shrink[i] = float(np.exp(0.5 * np.log(alpha_sq[i]).mean()) / sw["alpha"])
    return {"rel_err_vs_exact_gd_limit": err, "geometric_mean_alpha_inf_over_alpha": shrink}


def _gfs_diagnosis(sw, runs) -> tuple[dict, dict]:
    """Per run: GF-solution sharpness (Kreisler et al. 2023) over the first steps, as a fraction of 2/eta.

    ratio_init: at step 0; ratio_peak: the largest before the crossing, the first recorded step with S_GFS < 2/eta
    (None if not within the recorded window); ratio_at_crossing: S_GFS eta/2 there; ratio_final: the
    trained network's S eta/2; final_vs_gfs: |S_GFS(final stats) - S| / S (the GF solution of a converged iterate
    is the iterate itself). Also returns the traces {eta: (steps, ratios, ratio_final)} for the plot.
    """
    X, y, etas, out, traces = sw["X"], sw["y"], sw["etas"], {}, {}
    alpha_sq, theta = sw["stats"].alpha_sq(), sw["stats"].theta()
    for i in runs:
        ratios, nu = [], None
        for a_sq, th in sw["snaps"]:
            gfs = gfs_sharpness("uv", X, y, a_sq[i], th[i], nu0=nu)
            ratios.append(gfs.sharpness * etas[i] / 2)
            nu = gfs.nu
            if ratios[-1] < 1:
                break
        ratios = np.array(ratios)
        below = np.flatnonzero(ratios < 1)
        S_end = gfs_sharpness("uv", X, y, alpha_sq[i], theta[i]).sharpness
        final = sw["S"][i] * etas[i] / 2
        out[f"eta={etas[i]:.4f}"] = dict(
            ratio_init=ratios[0], ratio_peak=ratios.max(),
            crossing_step=int(below[0] * SNAP_STRIDE) if below.size else None,
            ratio_at_crossing=ratios[below[0]] if below.size else None,
            ratio_final=final, final_vs_gfs=abs(S_end - sw["S"][i]) / sw["S"][i])
        traces[etas[i]] = (SNAP_STRIDE * np.arange(len(ratios)), ratios, final)
    return out, traces


@claim("dln.sharpness.formula", "closed-form sharpness lambda_max(X diag(u^2+v^2) X^T/n) at trained interpolators "
       "equals Lanczos on autograd Hessians", "Even et al. 2023, arXiv 2302.08982, Sec. 5", kind="derived", group=EOS_GROUP)
def sharpness_formula(ctx: Context) -> Measurement:
    sw = eos_sweep(ctx.seed, ctx.quick)
    ok = [i for i, s in enumerate(sw["res"].status) if s == "converged"]
    with one_thread():
        lz = lanczos_top("uv", torch.as_tensor(sw["params"][ok]), sw["X"], sw["y"]).numpy()
    err = np.abs(lz - sw["S"][ok]) / sw["S"][ok]
    # tolerance 1e-8: the formula drops the gradient term, |g| <= ||X|| sqrt(2 L) ~ 1e-12 at loss tol 1e-24,
    # and Lanczos with full reorthogonalization over all P = 2d directions is exact up to rounding.
    return Measurement("max relative |S_formula - S_lanczos| / S", float(err.max()), 1e-8,
                       {"runs": len(ok), "per_run": err.tolist()})


def _direct(X, y):
    """Direct minimization over the null space (dimension <= 2) by nested bounded Brent: convex objective."""
    b0 = np.linalg.lstsq(X, y, rcond=None)[0]
    N = np.linalg.svd(X)[2][X.shape[0]:].T
    f = lambda z: float(np.linalg.eigvalsh((X * np.abs(b0 + N @ z)) @ X.T / X.shape[0])[-1])
    box = 10 * (np.abs(b0).sum() + 1)
    opt = dict(method="bounded", bounds=(-box, box), options={"xatol": 1e-13, "maxiter": 2000})
    if N.shape[1] == 1:
        return minimize_scalar(lambda a: f(np.array([a])), **opt).fun
    inner = lambda a: minimize_scalar(lambda c: f(np.array([a, c])), **opt).fun
    return minimize_scalar(inner, **opt).fun


@claim("dln.sharpness.min", "the minimum-sharpness SDP is optimal (certified duality gap), matches the n = 1 closed "
       "form and a direct optimizer", FOJTIK, kind="derived", group=EOS_GROUP)
def sharpness_min(ctx: Context) -> Measurement:
    rng = ctx.generator(offset=41)
    sw = eos_sweep(ctx.seed, ctx.quick)
    cases = {"eos_problem": (sw["X"], sw["y"])}
    Xb = rng.standard_normal((10, 40))
    cases["n10_d40"] = (Xb, Xb @ rng.standard_normal(40))
    errs, det = [], {}
    for name, (X, y) in cases.items():
        ms = sw["ms"] if name == "eos_problem" else min_sharpness(X, y)
        det[name] = dict(value=ms.value, gap=ms.gap, residual=ms.residual, status=ms.status)
        errs.append(ms.gap / ms.value)
    for k in range(3):
        x = rng.standard_normal((1, 6))
        yy = rng.standard_normal(1)
        ms = min_sharpness(x, yy)
        closed = min_sharpness_n1(x[0], yy[0]).value
        det[f"n1_{k}"] = dict(sdp=ms.value, closed=closed, gap=ms.gap)
        errs += [abs(ms.value - closed) / closed, ms.gap / ms.value]
    for k, (n, d) in enumerate([(2, 3), (2, 4), (3, 4)]):
        X = rng.standard_normal((n, d))
        y = rng.standard_normal(n)
        ms = min_sharpness(X, y)
        direct = _direct(X, y)
        det[f"direct_{n}x{d}"] = dict(sdp=ms.value, direct=direct, gap=ms.gap)
        errs += [abs(ms.value - direct) / direct, ms.gap / ms.value]
    # 1e-7: Clarabel run at 1e-10 gap/feasibility; the certified gap uses repaired feasible points, and Brent at
    # xatol 1e-13 on a Lipschitz objective is far below it.
    return Measurement("max(relative certified gap, |SDP - closed form|, |SDP - direct|)", float(max(errs)), 1e-7, det)


def _converged(sw) -> np.ndarray:
    return np.array([s == "converged" for s in sw["res"].status])


def _mid(sw) -> np.ndarray:
    return (sw["etas"] > sw["eta_c"]) & (sw["etas"] < sw["eta_max"])


# Rounding band of S <= 2/eta at a converged run: it stops at loss <= 1e-24 (||Xb - y|| ~ 1e-12); the rest of its
# path moves theta by <= eta ||X|| ||r|| / (1 - |1 - eta S|) ~ 1e-9 even at eta S = 1.998, so S is its limit's
# sharpness to ~1e-9 relative; 1e-6 is the bound with that margin.
EDGE_RTOL = 1e-6
EXACT_TOL = 1e-9     # exact GD limit (Even et al. Thm 1) vs the trained run, as dln.gd.exact
GFS_TOL = 1e-8       # S at the trained iterate vs S of the GF solution from its final statistics


@claim("dln.eos.stability", "converged GD runs have S <= 2/eta (linear stability), none converges above "
       "eta_max = 2/S_min, and each converged run is the exact GD limit of its recorded steps (<= 1e-9) with the "
       "sharpness of the GF solution from its last step (<= 1e-8)", f"Cohen et al. 2021; {FOJTIK}; {EVEN}",
       kind="derived", group=EOS_GROUP)
def eos_stability(ctx: Context) -> Measurement:
    sw = eos_sweep(ctx.seed, ctx.quick)
    etas, S, st = sw["etas"], sw["S"], sw["res"].status
    conv = _converged(sw)
    exact = _exact_gd_diagnosis(sw, conv)
    gfs_final = _gfs_final(sw, conv)
    err = np.array([e for e in exact["rel_err_vs_exact_gd_limit"] if e is not None])
    gf = np.array([e for e in gfs_final if e is not None])
    v = dict(above_edge=int(np.sum(conv & (S > 2 / etas * (1 + EDGE_RTOL)))),
             converged_above_eta_max=int(np.sum(conv & (etas > sw["eta_max"]))),
             exact_gd_limit=int(np.sum(err > EXACT_TOL)), gf_solution_sharpness=int(np.sum(gf > GFS_TOL)))
    path = _plot_stability(ctx, sw, conv)
    return Measurement("violations (S > 2/eta; converged above eta_max; exact-limit error > 1e-9; |S - S_GFS| > 1e-8)",
                       sum(v.values()), 0,
                       dict(violations=v, eta_c=sw["eta_c"], eta_c_limit=sw["gp"].eta_c_limit, eta_max=sw["eta_max"],
                            S_min=sw["ms"].sharpness("uv"), sdp_gap=sw["ms"].gap, etas=etas, S=S, status=st,
                            S_times_eta_over_2=S * etas / 2, max_exact_err=float(err.max(initial=0)),
                            max_gfs_final_rel=float(gf.max(initial=0)), gfs_final_rel=gfs_final, **exact),
                       [str(path)])


def _gfs_final(sw, conv) -> list:
    """|S_GFS(final statistics) - S| / S per converged run: the GF solution of a converged iterate is the iterate."""
    a_sq, th = sw["stats"].alpha_sq(), sw["stats"].theta()
    return [float(abs(gfs_sharpness("uv", sw["X"], sw["y"], a_sq[i], th[i]).sharpness - sw["S"][i]) / sw["S"][i])
            if conv[i] else None for i in range(len(conv))]


def _plot_stability(ctx, sw, conv):
    etas, S = sw["etas"], sw["S"]
    fig, ax = figure(2, 5.0, 4.0)
    ax[0].plot(etas[conv], S[conv], "o", label="final sharpness (converged)")
    ax[0].plot(etas[~conv], np.zeros((~conv).sum()), "rx", label="diverged")
    grid = np.linspace(etas.min(), etas.max(), 200)
    ax[0].plot(grid, 2 / grid, "-", label="2/eta")
    ax[0].set_ylim(0, 1.5 * max(S[conv].max(), 2 / sw["eta_max"]) if conv.any() else None)
    for v, lab in ((sw["eta_c"], "eta_c"), (sw["eta_max"], "eta_max")):
        ax[0].axvline(v, ls="--", color="gray")
        ax[0].text(v, ax[0].get_ylim()[1] * 0.9, lab)
    ax[0].set_xlabel("eta"); ax[0].set_ylabel("S"); ax[0].legend()
    ax[1].plot(etas[conv], np.abs(sw["b"][conv]).sum(1), "o-")
    ax[1].set_xlabel("eta"); ax[1].set_ylabel("||b||_1")
    return save(fig, ctx.plot_path("dln_eos_sharpness.png"))


PREDICTION_LEVEL = 1e-4   # per checked seed: 1e-3 over the ten seeds 0-9


def prediction_bound(values, side: str) -> float:
    """Normal prediction bound for one new draw from calibration values (Student t, one-sided level 1e-4 per side)."""
    v = np.asarray(values, dtype=np.float64)
    k = t_dist.ppf(1 - PREDICTION_LEVEL, len(v) - 1) * v.std(ddof=1) * np.sqrt(1 + 1 / len(v))
    return float(v.mean() + k if side == "upper" else v.mean() - k)


# The band is measured, not derived (Kreisler et al. prove "just below 2/eta" only for scalar networks). It bounds the
# per-seed median of S eta/2: single runs spread far more (catapults land as low as 0.80 on the calibration seeds).
# 1 - S eta/2 spans decades, so the prediction bound is taken on the log scale.
@calibration("dln.eos.final_gap", range(100, 140), "low = 1 - exp(upper prediction bound of ln(1 - median S eta/2)) "
             "over the calibration seeds (Student t, level 1e-4 per checked seed)",
             lambda st: dict(low=1 - float(np.exp(prediction_bound([np.log(1 - s["median_ratio"]) for s in st],
                                                                    "upper"))),
                             calibration_median_range=[min(s["median_ratio"] for s in st),
                                                       max(s["median_ratio"] for s in st)],
                             calibration_min_single_run=min(s["min_ratio"] for s in st),
                             min_converged_fraction=min(s["converged_fraction"] for s in st)))
def final_gap_statistic(ctx: Context) -> dict:
    """Per seed: S eta/2 of converged runs above eta_c by crossing type, and the converged fraction of (eta_c, eta_max)."""
    sw = eos_sweep(ctx.seed, ctx.quick)
    conv, mid = _converged(sw), _mid(sw)
    gfs, _ = _gfs_diagnosis(sw, np.flatnonzero(conv & mid))
    ratio = sw["S"] * sw["etas"] / 2
    kinds = {k: ("catapult" if v["crossing_step"] is not None and v["ratio_at_crossing"] < CATAPULT_BELOW else
                 "gradual") for k, v in gfs.items()}
    r = ratio[conv & mid]
    return dict(median_ratio=float(np.median(r)) if r.size else float("nan"),
                min_ratio=float(r.min()) if r.size else float("nan"), max_ratio=float(r.max()) if r.size else float("nan"),
                converged_fraction=float(conv[mid].mean()), n_mid=int(mid.sum()), per_run=gfs, crossing=kinds,
                ratios=r)


# A crossing counts as a catapult when the GF-solution sharpness is first recorded below the edge at less than
# 0.995 of 2/eta (the previous recorded step, 2 GD steps earlier, was above it): a gradual crossing moves it by
# less than its per-step change near the edge (<= 0.3% per 2 steps measured).
CATAPULT_BELOW = 0.995
@calibration("dln.eos.interpolation", range(100, 140), "order band = two-sided prediction bounds of the small-eta local "
             "order (Student t, level 1e-4 per side and checked seed); the range of S / S_min at the largest converged "
             "eta is recorded, not judged",
             lambda st: dict(order_low=prediction_bound([s["small_eta_order"] for s in st], "lower"),
                             order_high=prediction_bound([s["small_eta_order"] for s in st], "upper"),
                             top_S_over_S_min_range=[min(s["top_S_over_S_min"] for s in st),
                                                     max(s["top_S_over_S_min"] for s in st)],
                             min_rho_norm=min(s["rho_norm"] for s in st), max_rho_S=max(s["rho_S"] for s in st)))
def interpolation_statistic(ctx: Context) -> dict:
    """Per seed, Fojtik et al.'s quantities over converged runs in (eta_c, eta_max): Spearman trends of ||theta||^2 and
    S in eta, the local order of the GD-vs-GF error at the two smallest etas, S at the largest converged eta / S_min."""
    sw = eos_sweep(ctx.seed, ctx.quick)
    conv, mid = _converged(sw), _mid(sw)
    sel = conv & mid
    etas, S = sw["etas"], sw["S"]
    norm2 = (sw["params"] ** 2).sum(axis=(1, 2))
    rho_n, p_n = spearmanr(etas[sel], norm2[sel], alternative="greater") if sel.sum() >= 3 else (np.nan, 1.0)
    rho_s, p_s = spearmanr(etas[sel], S[sel], alternative="less") if sel.sum() >= 3 else (np.nan, 1.0)
    gf = sw["gp"].b
    e_gf = np.linalg.norm(sw["b"] - gf, axis=1) / np.linalg.norm(gf)
    order = float(np.log(e_gf[1] / e_gf[0]) / np.log(etas[1] / etas[0])) if conv[:2].all() else float("nan")
    top = np.flatnonzero(conv & (etas < sw["eta_max"]))[-1]
    return dict(rho_norm=float(rho_n), p_norm=float(p_n), rho_S=float(rho_s), p_S=float(p_s), n_trend=int(sel.sum()),
                small_eta_order=order, err_vs_gf_smallest=float(e_gf[0]), eta_top=float(etas[top]),
                eta_top_over_eta_max=float(etas[top] / sw["eta_max"]),
                top_S_over_S_min=float(S[top] / sw["ms"].sharpness("uv")))


@claim("dln.eos.final_gap", "over converged GD runs with eta in (eta_c, eta_max), the median of S eta/2 lies in "
       "[low, 1], low a prediction bound from calibration seeds 100-139 (verify/claims/calibration.json); single runs "
       "and catapult crossings land lower and are reported; eta_max is necessary, not sufficient: the converged "
       "fraction of (eta_c, eta_max) is reported per seed",
       f"{FOJTIK}; Kreisler et al. 2023, arXiv 2305.13064 (proof for scalar networks only)", kind="empirical", group=EOS_GROUP)
def eos_final_gap(ctx: Context) -> Measurement:
    st = final_gap_statistic(ctx)
    cal = calibrated("dln.eos.final_gap")
    ok = cal["low"] <= st["median_ratio"] <= 1 + EDGE_RTOL
    return Measurement(f"median S eta/2 outside the calibrated band [{cal['low']:.3f}, 1] (0 or 1)", int(not ok), 0,
                       dict(band=[cal["low"], 1.0], calibration={k: v for k, v in cal.items() if k != "per_seed"},
                            **st))


@claim("dln.eos.interpolation", "over converged runs with eta in (eta_c, eta_max) the parameter norm ||theta||^2 "
       "rises and the sharpness S falls with eta (sign of Spearman's rho); the smallest eta is O(eta) "
       "from the GF limit (local order in a band calibrated on seeds 100-139); S / S_min at the largest converged eta "
       "is reported, not judged (it is set by where GD stops converging)", FOJTIK, kind="empirical", group=EOS_GROUP)
def eos_interpolation(ctx: Context) -> Measurement:
    st = interpolation_statistic(ctx)
    cal = calibrated("dln.eos.interpolation")
    v = dict(norm_rises=int(not st["rho_norm"] > 0), sharpness_falls=int(not st["rho_S"] < 0),
             small_eta_order=int(not cal["order_low"] <= st["small_eta_order"] <= cal["order_high"]))
    sw = eos_sweep(ctx.seed, ctx.quick)
    path = _plot_interpolation(ctx, sw)
    return Measurement("violated conditions (two trend signs; calibrated small-eta order band)", sum(v.values()), 0,
                       dict(violations=v, calibration={k: x for k, x in cal.items() if k != "per_seed"}, **st),
                       [str(path)])


def _plot_interpolation(ctx, sw):
    conv = _converged(sw)
    fig, (ax,) = figure(1, 5.0, 4.0)
    norm2 = (sw["params"][conv] ** 2).sum(axis=(1, 2))
    sc = ax.scatter(norm2, sw["S"][conv], c=sw["etas"][conv])
    ax.set_xlabel("||theta||^2"); ax.set_ylabel("sharpness"); fig.colorbar(sc, label="eta")
    ax.axhline(sw["ms"].sharpness("uv"), color="r", ls="--", label="S_min")
    ax.axhline(sw["gp"].S_limit, color="k", ls=":", label="S of the GF limit")
    ax.legend()
    return save(fig, ctx.plot_path("dln_eos_path.png"))


# Counterexample to monotone GF-solution sharpness (Kreisler et al. 2023 prove it for scalar networks): the EoS
# instance of seed 0, eta = 1.14 (below eta_c = 1.3317), the first 20 GD steps.
MONOTONE_INSTANCE = dict(seed=0, eta=1.14, steps=20)


@lru_cache(maxsize=1)
def gfs_trace(seed: int, eta: float, steps: int):
    """S_GFS after each of the first ``steps`` GD steps on the EoS instance, warm- and cold-started dual Newton."""
    X, y, alpha = eos_problem(seed, True)
    d = X.shape[1]
    stats = GDStats("uv", np.array([alpha]), 1, d)
    rec = stats.callback(torch.tensor([eta]))
    trace = []

    def on_step(k, g, active):
        rec(k, g, active)
        trace.append((stats.alpha_sq()[0], stats.theta()[0]))

    trace.append((stats.alpha_sq()[0], stats.theta()[0]))
    with one_thread():
        train_gd("uv", X, y, init_params("uv", np.array([alpha]), d), np.array([eta]), steps, on_step=on_step)
    warm, cold, resid, nu = [], [], [], None
    for a_sq, th in trace[:steps + 1]:
        gfs = gfs_sharpness("uv", X, y, a_sq, th, nu0=nu)
        nu = gfs.nu
        warm.append(gfs.sharpness)
        resid.append(gfs.residual)
        cold.append(gfs_sharpness("uv", X, y, a_sq, th).sharpness)
    return X, y, alpha, np.array(warm), np.array(cold), np.array(resid)


@claim("dln.gfs.monotone", "'GD decreases the sharpness of the GF solution from its iterate monotonically' is false "
       "on a uv DLN below eta_c: on a fixed instance it rises over the first 20 steps by >= 100x its numerical error",
       "Kreisler, Nacson, Soudry, Carmon 2023, arXiv 2305.13064 (proved for scalar networks)", kind="refuted")
def gfs_monotone(ctx: Context) -> Measurement:
    inst = MONOTONE_INSTANCE
    X, y, alpha, warm, cold, resid = gfs_trace(inst["seed"], inst["eta"], inst["steps"])
    eta_c = gf_path_sharpness(X, y, alpha, "uv").eta_c_path
    rise = warm[-1] - warm[0]
    # numerical error of each S_GFS: warm vs cold Newton starts, plus eigvalsh rounding (~1e-15 S)
    err = float(np.max(np.abs(warm - cold)) + 1e-15 * warm.max())
    below = inst["eta"] < eta_c
    return Measurement("numerical error of S_GFS / its rise over the first 20 steps (inf if no rise or eta >= eta_c)",
                       *counterexample(rise if below else 0.0, err), dict(instance=dict(inst, alpha=alpha, n=X.shape[0], d=X.shape[1],
                                                       problem="verify.claims.dln_eos.eos_problem(seed=0, quick)"),
                                         eta_c=eta_c, S_gfs=warm, relative_rise=rise / warm[0],
                                         steps_with_rise=int(np.sum(np.diff(warm) > err)),
                                         warm_vs_cold=float(np.max(np.abs(warm - cold))),
                                         newton_residual_max=float(resid.max())))


def _train_shared(x, y, alpha, etas, steps, tol=1e-24):
    """GD on the weight-shared DLN b = w * w, one data point (n = 1), batched over eta."""
    x = torch.as_tensor(x)
    etas = torch.as_tensor(etas)[:, None]
    w = torch.full((len(etas), len(x)), float(alpha), dtype=torch.float64)
    done = torch.zeros(len(etas), dtype=torch.bool)
    bad = torch.zeros(len(etas), dtype=torch.bool)
    for k in range(steps):
        r = (w**2) @ x - y
        g = r[:, None] * x[None]
        w = torch.where((done | bad)[:, None], w, w * (1 - 2 * etas * g))
        if k % 50 == 49:
            L = 0.5 * ((w**2) @ x - y) ** 2
            bad |= ~torch.isfinite(L) | (L > 1e50)
            done |= (L <= tol) & ~bad
            if (done | bad).all():
                break
    return (w**2).numpy(), done.numpy(), w.numpy()


@claim("dln.eos.generalization", "weight-shared DLN on one data point: test error over the eta sweep is minimized "
       "strictly inside (0, eta_max)", FOJTIK, kind="empirical")
def eos_generalization(ctx: Context) -> Measurement:
    # Target b* (documented): x_i = 0.5 .. 2 (d = 10), b* uniform b*_i = y / sum x (dense). Min-norm (small eta,
    # small alpha) puts mass on the largest x_i, min-sharpness on the smallest x_i: both 1-sparse, far from b*.
    # Test inputs isotropic N(0, I): test error = ||b - b*||^2.
    d = 10
    x = np.linspace(0.5, 2.0, d)
    y = 1.0
    bstar = np.full(d, y / x.sum())
    alpha = 0.05
    S_min = 4 * min_sharpness_n1(x, y).value       # shared kind: S = 4 sum x_i^2 b_i at interpolators
    eta_max = 2 / S_min
    etas = eta_max * np.concatenate([np.linspace(0.02, 0.98, 25), [1.05, 1.2]])
    with one_thread():
        B, done, W = _train_shared(x, y, alpha, etas, 60000 if ctx.quick else 300000)
    err = ((B - bstar) ** 2).sum(1)
    S = 4 * (B * x**2).sum(1)
    ok = np.flatnonzero(done)
    v = 0
    if len(ok) < 3:
        v += 1
        inside = False
    else:
        j = ok[np.argmin(err[ok])]
        inside = bool(j != ok[0] and j != ok[-1] and err[j] < err[ok[0]] and err[j] < err[ok[-1]])
        v += int(not inside)
    v += int(np.any(done & (etas > eta_max)))
    return Measurement("violations (best eta not strictly inside; converged above eta_max)", v, 0,
                       dict(target="x = linspace(0.5, 2, 10), y = 1, b* = y/sum(x) uniform; alpha = 0.05",
                            eta_max=eta_max, etas=etas, converged=done, test_error=err, sharpness=S,
                            best_eta=float(etas[ok[np.argmin(err[ok])]]) if len(ok) else float("nan")))
