"""The l1 phase transition, compiled: statistical dimension, recovery trials of the GF limit, n50 and mean threshold.

- ``statistical_dimension(s, d)``: the ALMT closed form psi(s, d) = inf_tau F(tau) (theory.phase.l1_descent), by a
  safeguarded Newton solve of F'(tau) = 0 (F is strictly convex). It is an upper bound on the statistical
  dimension delta(D) of the descent cone, within 2 sqrt(d/s) (ALMT Prop 4.5).
- ``descent_cone_dimension(s, d)``: delta(D) itself, E dist^2(g, cone d||b*||_1), by Monte Carlo: the inner
  minimization over tau is exact (a piecewise quadratic in tau, solved by sorting), so the only error is the
  sampling error, returned with the estimate.
- ``recovery_batch``: one batched call over many instances (n, d, s fixed; each instance drawn from its own seed):
  the GF limit argmin_{Xb=y} Q_alpha at every alpha of a list (numerics.batched.sweep_flow_limits, warm-started
  in alpha), and the alpha -> 0 limit (min-l1, Woodworth et al. 2020 Thm 2) decided exactly per instance: a dual
  certificate built from the GF dual at the smallest alpha, a feasible point of smaller l1 norm, or else the LP.
- ``mean_threshold``, ``n50_probit``, ``n50_interpolated``: the statistics of a recovery curve from its binomial counts.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.special import log_ndtr, ndtr

from theory import phase as th

from .batched import sweep_flow_limits
from .compile import compiled
from .dln import flow_limit, min_l1
from .validate import integer, positive

THRESHOLD = 1e-3          # recovery: ||b - b*|| / ||b*|| below this
CERTIFICATE_SLACK = 1e-8  # a dual certificate must leave every off-support |X_i^T nu| below 1 - this
DESCENT_SLACK = 1e-9      # a feasible point must beat ||b*||_1 by this relative margin to certify failure


def _fns():
    return tuple(compiled(th.l1_descent, k, ("tau", "s", "d")) for k in ("F", "dF", "d2F"))


def _sd(s, d) -> tuple[float, float]:
    try:
        s, d = float(s), float(d)
    except (TypeError, ValueError):
        raise ValueError(f"s and d must be real numbers, got s={s!r}, d={d!r}") from None
    if not (math.isfinite(d) and d > 0):
        raise ValueError(f"d must be finite and > 0, got {d!r}")
    if not (math.isfinite(s) and 0 <= s <= d):
        raise ValueError(f"s must be a number in [0, d] = [0, {d:g}], got {s!r}")
    return s, d


def tau_star(s, d) -> float:
    """The minimizer of F(tau; s, d) over tau >= 0 (inf for s = 0, 0 for s = d)."""
    s, d = _sd(s, d)
    if s == 0:
        return math.inf
    if s == d:
        return 0.0
    _, dF, d2F = _fns()
    lo, hi = 0.0, 1.0
    while dF(hi, s, d) <= 0:      # F' -> 2 s tau > 0: the bracket closes
        lo, hi = hi, 2 * hi
    t = 0.5 * (lo + hi)
    for _ in range(200):
        f = float(dF(t, s, d))
        if f == 0:
            return t
        if f < 0:
            lo = t
        else:
            hi = t
        step = t - f / float(d2F(t, s, d))
        t_new = step if lo < step < hi else 0.5 * (lo + hi)   # Newton inside the bracket, else bisection
        if abs(t_new - t) <= 4e-16 * max(1.0, t) or hi - lo <= 4e-16 * max(1.0, hi):
            return t_new
        t = t_new
    return t


def statistical_dimension(s, d) -> float:
    """psi(s, d) = inf_{tau >= 0} [s (1 + tau^2) + (d - s) sqrt(2/pi) int_tau^oo (u - tau)^2 e^{-u^2/2} du] (ALMT).

    Accepts real 0 <= s <= d (psi(0, d) = 0, psi(d, d) = d); arrays are evaluated elementwise.
    """
    if np.ndim(s) or np.ndim(d):
        s_b, d_b = np.broadcast_arrays(np.asarray(s, dtype=object), np.asarray(d, dtype=object))
        return np.array([statistical_dimension(a, b) for a, b in zip(s_b.ravel(), d_b.ravel())]).reshape(s_b.shape)
    s, d = _sd(s, d)
    if s == 0:
        return 0.0
    F, _, _ = _fns()
    return float(F(tau_star(s, d), s, d))


def almt_halfwidth(d, eta: float = 0.5) -> float:
    """a_eta sqrt(d), a_eta = sqrt(8 ln(4/eta)): ALMT Thm II puts the success probability below eta for
    n <= delta - a_eta sqrt(d) and above 1 - eta for n >= delta + a_eta sqrt(d) (a bound: the width is O(sqrt d))."""
    d = float(positive(d, "d"))
    eta = float(positive(eta, "eta"))
    if eta >= 1:
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    a = compiled(th.l1_descent, "almt_a", ("eta",))
    return float(a(eta)) * math.sqrt(d)


def descent_cone_dimension(s, d, samples: int = 200_000, seed: int = 0, block: int = 20_000) -> tuple[float, float]:
    """delta(D) = E dist^2(g, cone d||b*||_1(b*)) for s-sparse b* in R^d, by Monte Carlo: (estimate, standard error).

    For one draw g the distance is min_{tau >= 0} sum_S (g_i - tau)^2 + sum_{off} (|g_i| - tau)_+^2 (signs absorbed
    by symmetry): with k off-support |g| above tau the optimum is tau_k = (A + C_k)/(s + k), A = sum_S g_i, C_k the
    sum of the k largest off-support |g|; exactly one k is consistent, and the value is
    Q_S + Q_k - (A + C_k)^2 / (s + k).
    """
    s = integer(s, "s", 0)
    d = integer(d, "d", 1)
    if s > d:
        raise ValueError(f"s must be <= d, got s={s}, d={d}")
    samples = integer(samples, "samples", 2)
    if s == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), s, d]))
    total, total2, done = 0.0, 0.0, 0
    m = d - s
    while done < samples:
        N = min(block, samples - done)
        gS = rng.standard_normal((N, s))
        z = -np.sort(-np.abs(rng.standard_normal((N, m))), axis=1)          # descending
        A, QS = gS.sum(axis=1), (gS**2).sum(axis=1)
        C = np.concatenate([np.zeros((N, 1)), np.cumsum(z, axis=1)], axis=1)     # (N, m + 1): k = 0..m
        Q = np.concatenate([np.zeros((N, 1)), np.cumsum(z**2, axis=1)], axis=1)
        k = np.arange(m + 1)
        t = (A[:, None] + C) / (s + k)
        upper = np.concatenate([np.full((N, 1), np.inf), z], axis=1)            # z_(k), z_(0) = inf
        lower = np.concatenate([z, np.zeros((N, 1))], axis=1)                   # z_(k+1), z_(m+1) = 0
        ok = (t >= lower) & (t <= upper) & (t >= 0)
        val = QS[:, None] + Q - (A[:, None] + C) ** 2 / (s + k)
        dist2 = np.where(ok.any(axis=1), np.where(ok, val, np.inf).min(axis=1), QS + Q[:, -1])   # tau = 0 otherwise
        total += dist2.sum()
        total2 += (dist2**2).sum()
        done += N
    mean = total / done
    var = max(total2 / done - mean**2, 0.0) * done / (done - 1)
    return float(mean), float(math.sqrt(var / done))


def draw_instance(n: int, d: int, s: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """One instance from its own seed (a SeedSequence, an int or entropy list): X (n, d) Gaussian, b* with s entries
    +-1 on a uniform random support. Independent of how instances are batched."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    b = np.zeros(d)
    b[rng.choice(d, s, replace=False)] = rng.choice([-1.0, 1.0], s)
    return X, b


def _l1_decision(X, b_star, b_alpha, nu, log_c, support) -> tuple[bool, str, float]:
    """Is b* the unique min-l1 interpolator? (decision, method, certificate margin or NaN)."""
    n, d = X.shape
    s = support.size
    if n < s:
        return False, "underdetermined", math.nan   # X_S has a kernel: b* is not the unique minimizer
    eps = np.sign(b_star[support])
    XS = X[:, support]
    if np.isfinite(nu).all() and np.linalg.matrix_rank(XS) == s:
        nu0 = nu / (-log_c)                              # s = X^T nu ~ ln(1/c) * certificate as alpha -> 0
        fix = np.linalg.lstsq(XS.T, eps - XS.T @ nu0, rcond=None)[0]
        cert = nu0 + fix                                 # X_S^T cert = sign(b*_S) exactly (up to rounding)
        off = np.ones(d, dtype=bool)
        off[support] = False
        margin = 1.0 - float(np.max(np.abs(X[:, off].T @ cert))) if off.any() else 1.0
        if margin > CERTIFICATE_SLACK and np.max(np.abs(XS.T @ cert - eps)) < 1e-12:
            return True, "certificate", margin
    else:
        margin = math.nan
    if np.isfinite(b_alpha).all():
        feas = b_alpha + np.linalg.lstsq(X, X @ b_star - X @ b_alpha, rcond=None)[0]
        if np.abs(feas).sum() < np.abs(b_star).sum() * (1 - DESCENT_SLACK):
            return False, "descent", margin
    b_l1 = min_l1(X, X @ b_star).b
    return bool(np.linalg.norm(b_l1 - b_star) <= 1e-6 * np.linalg.norm(b_star)), "lp", margin


def recovery_batch(n: int, d: int, s: int, alphas: Sequence[float], seeds: Sequence, threshold: float = THRESHOLD,
                   stage: float = 6.0) -> dict[str, np.ndarray]:
    """Recovery of b* by the GF limit at each alpha and by its alpha -> 0 limit, for one instance per seed.

    One batched dual Newton over all instances (shape (T, n, d)) along the alpha path; an instance whose batched
    solve did not converge is redone by numerics.dln.flow_limit. Returns tidy columns, one row per (instance,
    alpha), plus the rows alpha = 0 (the min-l1 limit; method says how it was decided): trial, alpha, rel_err,
    residual, converged, recovered, method, margin.
    """
    n = integer(n, "n", 1)
    d = integer(d, "d", 1)
    s = integer(s, "s", 1)
    if s > d or n > d:
        raise ValueError(f"need s <= d and n <= d, got n={n}, s={s}, d={d}")
    alphas = np.atleast_1d(positive(np.asarray(alphas, dtype=np.float64), "alphas"))
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError("alphas must be a non-empty 1-D list of positive numbers")
    threshold = float(positive(threshold, "threshold"))
    T = len(seeds)
    if T == 0:
        raise ValueError("seeds is empty: pass one seed per instance")
    X = np.empty((T, n, d))
    B = np.empty((T, d))
    for t, sd in enumerate(seeds):
        X[t], B[t] = draw_instance(n, d, s, sd)
    Y = np.einsum("tnd,td->tn", X, B)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        preds = sweep_flow_limits(X, Y, alphas, stage=stage)
    A = alphas.size
    b = np.stack([p.b for p in preds], axis=1)                 # (T, A, d)
    nu = np.stack([p.nu for p in preds], axis=1)
    res = np.stack([p.residual for p in preds], axis=1)
    conv = np.array([[st == "converged" for st in p.status] for p in preds]).T
    for t, a in zip(*np.nonzero(~conv)):                     # rare: the single-problem solver, its own continuation
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            pr = flow_limit(X[t], Y[t], alphas[a])
        if pr.residual < res[t, a] or pr.converged:
            b[t, a], nu[t, a], res[t, a], conv[t, a] = pr.b, pr.nu, pr.residual, pr.converged
    bnorm = np.linalg.norm(B, axis=1)
    err = np.linalg.norm(b - B[:, None, :], axis=2) / bnorm[:, None]
    rec = conv & (err < threshold)
    a_min = int(np.argmin(alphas))
    log_c = math.log(2.0) + 2 * math.log(alphas[a_min])       # pm link 2 alpha^2 sinh(s)  (theory.dln.pm)
    l1 = [_l1_decision(X[t], B[t], b[t, a_min], nu[t, a_min], log_c, np.flatnonzero(B[t])) for t in range(T)]
    trial = np.repeat(np.arange(T), A + 1)
    cols = dict(
        trial=trial,
        alpha=np.tile(np.concatenate([alphas, [0.0]]), T),
        rel_err=np.concatenate([np.concatenate([err[t], [0.0 if l1[t][0] else np.nan]]) for t in range(T)]),
        residual=np.concatenate([np.concatenate([res[t], [np.nan]]) for t in range(T)]),
        converged=np.concatenate([np.concatenate([conv[t], [True]]) for t in range(T)]),
        recovered=np.concatenate([np.concatenate([rec[t], [l1[t][0]]]) for t in range(T)]),
        method=np.array([m for t in range(T) for m in ["gf"] * A + [l1[t][1]]]),
        margin=np.concatenate([np.concatenate([np.full(A, np.nan), [l1[t][2]]]) for t in range(T)]),
    )
    return cols


# ---------------------------------------------------------------------------------------------- curve statistics

def _counts(ns, k, T):
    ns = np.asarray(ns, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), ns.shape)
    if ns.ndim != 1 or ns.size == 0 or k.shape != ns.shape:
        raise ValueError("ns, k must be equal-length 1-D arrays (grid of n, successes per n)")
    if np.any(T < 1) or np.any(k < 0) or np.any(k > T) or not np.all(np.isfinite(ns)):
        raise ValueError("need 0 <= k <= T, T >= 1 and finite n")
    order = np.argsort(ns)
    return ns[order], k[order], T[order]


def mean_threshold(ns, k, T) -> dict:
    """sum_{n >= 0} P(fail at n) from a consecutive integer grid: n_lo + sum_grid (1 - k/T), with its binomial SE.

    Equals delta(D) + 1/2 for exact l1 recovery (theory.phase.crofton). Outside the grid the failure probability is
    taken as 1 below and 0 above; ``truncated`` says whether the grid's ends show that (some success at n_lo or some
    failure at n_hi), in which case the value is not the full sum.
    """
    ns, k, T = _counts(ns, k, T)
    if not np.all(np.diff(ns) == 1) or not np.all(ns == np.round(ns)):
        raise ValueError("mean_threshold needs a consecutive integer grid of n")
    p_fail = 1 - k / T
    value = ns[0] + p_fail.sum()
    se = math.sqrt(float(np.sum(p_fail * (1 - p_fail) / T)))
    return dict(value=float(value), se=se, truncated_low=bool(k[0] > 0), truncated_high=bool(k[-1] < T[-1]))


def n50_probit(ns, k, T) -> dict:
    """Probit maximum likelihood P(success at n) = Phi((n - n50)/w): n50, its SE and w's from the Fisher information."""
    ns, k, T = _counts(ns, k, T)
    mixed = (k > 0) & (k < T)
    if k.sum() == 0 or k.sum() == T.sum():
        return dict(n50=math.nan, se=math.nan, width=math.nan, width_se=math.nan, inside=False, ok=False)
    from scipy.optimize import minimize

    def nll(p):
        z = (ns - p[0]) / math.exp(p[1])
        return -float(np.sum(k * log_ndtr(z) + (T - k) * log_ndtr(-z)))

    p_emp = k / T
    mid = ns[np.argmin(np.abs(p_emp - 0.5))]
    best = None
    for w0 in (1.0, 3.0, 10.0):
        r = minimize(nll, np.array([mid, math.log(w0)]), method="Nelder-Mead",
                     options=dict(xatol=1e-10, fatol=1e-12, maxiter=4000))
        if best is None or r.fun < best.fun:
            best = r
    mu, w = float(best.x[0]), float(math.exp(best.x[1]))
    z = (ns - mu) / w
    p = np.clip(ndtr(z), 1e-300, 1 - 1e-16)
    dens = np.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
    gmu, gw = -dens / w, -dens * z / w                      # dp/dmu, dp/dw
    wt = T / (p * (1 - p))
    info = np.array([[np.sum(wt * gmu * gmu), np.sum(wt * gmu * gw)], [np.sum(wt * gmu * gw), np.sum(wt * gw * gw)]])
    try:
        cov = np.linalg.inv(info)
        se, wse = math.sqrt(max(cov[0, 0], 0.0)), math.sqrt(max(cov[1, 1], 0.0))
    except np.linalg.LinAlgError:
        se = wse = math.nan
    ok = bool(mixed.sum() >= 2 and ns[0] <= mu <= ns[-1] and math.isfinite(se))
    return dict(n50=mu, se=se, width=w, width_se=wse, inside=bool(ns[0] <= mu <= ns[-1]), ok=ok)


def n50_interpolated(ns, k, T) -> dict:
    """Model-free n50: the monotone (pool-adjacent-violators) recovery curve interpolated linearly at 1/2, with the
    delta-method SE from the binomial counts of the two bracketing grid points."""
    ns, k, T = _counts(ns, k, T)
    # weighted isotonic regression (non-decreasing in n)
    vals, wts, sizes = [], [], []
    for pi, ti in zip(k / T, T):
        vals.append(pi)
        wts.append(ti)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / (wts[-2] + wts[-1])
            w_ = wts[-2] + wts[-1]
            sz = sizes[-2] + sizes[-1]
            vals[-2:], wts[-2:], sizes[-2:] = [v], [w_], [sz]
    p = np.repeat(vals, sizes)
    above = np.flatnonzero(p >= 0.5)
    if above.size == 0 or above[0] == 0:
        return dict(n50=math.nan, se=math.nan, inside=False)
    j = above[0]
    n1, n2, p1, p2 = ns[j - 1], ns[j], p[j - 1], p[j]
    if p2 == p1:
        return dict(n50=float(n2), se=math.nan, inside=True)
    x = n1 + (0.5 - p1) / (p2 - p1) * (n2 - n1)
    d1 = -(n2 - n1) * (p2 - 0.5) / (p2 - p1) ** 2
    d2 = -(n2 - n1) * (0.5 - p1) / (p2 - p1) ** 2
    var = d1**2 * max(p1 * (1 - p1), 0.25 / T[j - 1]) / T[j - 1] + d2**2 * max(p2 * (1 - p2), 0.25 / T[j]) / T[j]
    return dict(n50=float(x), se=math.sqrt(var), inside=True)
