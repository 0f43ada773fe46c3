"""Sharpness of DLNs (closed form at interpolators, full Hessian) and the minimum-sharpness interpolator (SDP).

Sources: Even et al. 2023 (arXiv 2302.08982) Sec. 5; Fojtik et al. 2025 (arXiv 2505.21423): S_min and eta_max = 2/S_min.
Kinds: `pm` and `uv` params (R, 2, d); shared `b = w^2` params (R, 1, d).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.integrate import solve_ivp

from theory import dln as th_dln
from theory import sharpness as th

from .compile import compiled
from .dln import _checked, flow_limit, sinh_limit
from .dln_gd import c_scale
from .newton import Prediction
from .result import Certified, relative_residual
from .validate import (as_matrix, as_vector, depth_value, finite_result, finite_scalar, integer, positive,
                       positive_scalar, pow2_scale)


def _params(kind, params, d: int | None = None):
    if kind not in th.KINDS:
        raise ValueError(f"kind must be one of {th.KINDS}, got {kind!r}")
    params = np.asarray(params, dtype=np.float64)
    if params.ndim == 2:
        params = params[None]
    k = 1 if kind == "shared" else 2
    if params.ndim != 3 or params.shape[1] != k or params.size == 0:
        raise ValueError(f"params for kind {kind!r} must have shape (R, {k}, d) with R, d >= 1, got {params.shape}")
    if d is not None and params.shape[2] != d:
        raise ValueError(f"shape mismatch: params have d = {params.shape[2]} coordinates but X has {d} columns")
    if not np.all(np.isfinite(params)):
        raise ValueError("params have non-finite entries (NaN or inf)")
    return params


def _args(kind, params):
    return (params[:, 0], params[:, 1]) if kind != "shared" else (params[:, 0], np.zeros_like(params[:, 0]))


def weight(kind: str, params, depth: int = 2) -> np.ndarray:
    """sum_a (db_i/dtheta_a)^2 per run and coordinate (theory.sharpness 'weight'): (R, d)."""
    params = _params(kind, params)
    f = compiled(th.hessian, "weight", ("p", "m"), "numpy", (kind, depth_value(depth)))
    return np.broadcast_to(f(*_args(kind, params)), params[:, 0].shape).astype(np.float64)


def lam_max(X, wts) -> np.ndarray:
    """lambda_max(X diag(w) X^T / n) for each row of wts (R, d)."""
    X = as_matrix(X)
    wts = np.atleast_2d(wts)
    K = np.einsum("nd,rd,md->rnm", X, wts, X) / X.shape[0]
    return np.linalg.eigvalsh(K)[:, -1]


def sharpness_interp(kind: str, params, X, depth: int = 2) -> np.ndarray:
    """Sharpness J^T H J at an interpolator: lambda_max(X diag(weight) X^T / n) (theory.sharpness)."""
    X = as_matrix(X)
    wts = weight(kind, _params(kind, params, X.shape[1]), depth)
    finite_result(wts, "the sharpness weights", "rescale params")
    out = lam_max(X, wts)
    finite_result(out, "the sharpness", "rescale X or params")
    return out


def hessian_full(kind: str, params, X, y, depth: int = 2) -> np.ndarray:
    """Full Hessian J^T H J + diag-blocks g_i grad^2 b_i (R, P, P), P = k d, layout [param a][coord i]."""
    X, y = as_matrix(X), as_vector(y, as_matrix(X).shape[0])
    params = _params(kind, params, X.shape[1])
    depth = depth_value(depth)
    R, k, d = params.shape
    args = _args(kind, params)
    names = ("p", "m")[:k]
    J = [np.broadcast_to(compiled(th.hessian, f"J_{a}", ("p", "m"), "numpy", (kind, depth))(*args), (R, d))
         for a in names]
    bvec = np.broadcast_to(compiled(th.hessian, "b", ("p", "m"), "numpy", (kind, depth))(*args), (R, d))
    n = X.shape[0]
    Hb = X.T @ X / n
    g = (bvec @ X.T - y) @ X / n
    Jm = np.concatenate(J, axis=1)                      # (R, k d): J_full[r, i, a*d+i]
    Hp = np.empty((R, k * d, k * d))
    for a in range(k):
        for c in range(k):
            Hp[:, a * d:(a + 1) * d, c * d:(c + 1) * d] = Jm[:, a * d:(a + 1) * d, None] * Hb[None] * Jm[:, None, c * d:(c + 1) * d]
    for a in range(k):
        for c in range(a, k):
            B = np.broadcast_to(compiled(th.hessian, f"B_{names[a]}{names[c]}", ("p", "m"), "numpy", (kind, depth))(*args), (R, d))
            idx = np.arange(d)
            Hp[:, a * d + idx, c * d + idx] += g * B
            if c != a:
                Hp[:, c * d + idx, a * d + idx] += g * B
    finite_result(Hp, "the Hessian", "rescale X, y or params")
    return Hp


@dataclass
class GFSolution(Prediction):
    """The gradient-flow solution from a GD iterate (a Bregman limit, its dual and certificate) and its sharpness."""

    sharpness: float = float("nan")


def gfs_sharpness(kind: str, X, y, alpha_sq, theta, nu0=None) -> GFSolution:
    """Sharpness of the gradient-flow solution from a GD iterate (Kreisler et al. 2023, arXiv 2305.13064, Sec. 3).

    GF from step k keeps that step's alpha_k and theta (theory.dln_gd), so its limit is the sinh-family Bregman
    limit and its sharpness is lambda_max(X diag(weight_gf(b, alpha_k)) X^T / n).
    """
    if kind not in ("uv", "pm"):
        raise ValueError(f"gfs_sharpness supports kind 'uv' or 'pm', got {kind!r}")
    X, y = _checked(X, y)
    d = X.shape[1]
    alpha_sq = positive(alpha_sq, "alpha_k^2")
    alpha_sq = np.full(d, float(alpha_sq)) if alpha_sq.ndim == 0 else as_vector(alpha_sq, d, "alpha_k^2", "X^T")
    theta = as_vector(theta, d, "theta", "X^T")
    pred = sinh_limit(X, y, np.log(c_scale(kind) * alpha_sq), theta, nu0=nu0)
    w = compiled(th.hessian, "weight_gf", ("b", "alpha"), "numpy", (kind,))(pred.b, np.sqrt(alpha_sq))
    S = float(lam_max(X, np.broadcast_to(w, (1, X.shape[1])))[0])
    return GFSolution(**{f.name: getattr(pred, f.name) for f in fields(pred)},
                      sharpness=finite_scalar(S, "the GF-solution sharpness"))


def sharpness_full(kind, params, X, y, depth: int = 2) -> np.ndarray:
    return np.linalg.eigvalsh(hessian_full(kind, params, X, y, depth))[:, -1]


def min_factor(kind: str) -> float:
    """Minimum over factorizations of b: S = factor * lambda_max(X diag|b| X^T / n) (`pm` 4, `uv` 2, shared 4)."""
    return float(th.hessian(kind)["min_factor"])


@dataclass
class MinSharpness(Certified):
    """Minimum-sharpness interpolator: b, value lambda* = min lambda_max(X diag|b| X^T/n), certified gap."""

    b: np.ndarray
    value: float          # upper bound: lambda_max at the feasibility-projected b
    lower: float          # lower bound from a feasibility-repaired dual point
    gap: float
    residual: float       # ||X b - y|| / ||y||
    status: str           # "optimal" | "optimal_inaccurate" | "inaccurate (certified gap ...)" | "exact" (n = 1)

    OK = ("optimal", "optimal_inaccurate", "exact")

    def sharpness(self, kind: str) -> float:
        return min_factor(kind) * self.value

    def eta_max(self, kind: str) -> float:
        return 2.0 / self.sharpness(kind)


def min_sharpness_n1(x, y: float) -> MinSharpness:
    """n = 1 closed form (theory.sharpness.min_sharpness_n1): all mass on argmin |x_i| over x_i != 0, value
    |y| min |x_i| (Fojtik et al. 2025)."""
    x = np.asarray(x, dtype=np.float64)
    x = as_vector(x[0] if x.ndim == 2 and x.shape[0] == 1 else x, None, "x (one sample, shape (d,) or (1, d))")
    y = finite_scalar(y, "y")
    nz = np.flatnonzero(x != 0)
    if nz.size == 0:
        if y == 0:
            return MinSharpness(np.zeros_like(x), 0.0, 0.0, 0.0, 0.0, "exact")
        raise ValueError("x is all zeros: x . b = y has no solution for y != 0")
    j = nz[np.argmin(np.abs(x[nz]))]
    b = np.zeros_like(x)
    b[j] = y / x[j]
    finite_result(b, "b = y / x_j", "rescale x or y")
    value = abs(y) * abs(x[j])
    return MinSharpness(b, value, value, 0.0, float(abs(x @ b - y) / max(abs(y), 1e-300)), "exact")


def min_sharpness(X, y, eps: float = 1e-10) -> MinSharpness:
    """min_{Xb=y} lambda_max(X diag|b| X^T / n): primal and dual SDPs (cvxpy + Clarabel), certified gap.

    Solved for (X / sx, y / sy) with powers of 2 sx, sy (Clarabel's tolerances are absolute), sy chosen so that the
    optimum is near 1: b = b' sy / sx and lambda = lambda' sx sy exactly.
    """
    X, y = _checked(X, y)
    eps = positive_scalar(eps, "eps")
    sx, sy = pow2_scale(np.abs(X).max()), pow2_scale(np.abs(y).max())
    r = _min_sharpness(X / sx, y / sy, eps)
    if r.value > 0 and not 0.25 <= r.value <= 4:   # lambda is linear in y: re-solve with the optimum near 1
        sy *= float(2.0 ** np.round(np.log2(r.value)))
        r = _min_sharpness(X / sx, y / sy, eps)
    k = sx * sy
    # both SDPs stop at gap eps = 1e-10 (default); a certified gap above 1e-6 relative means they did not converge
    status = r.status if r.gap <= 1e-6 * max(abs(r.value), 1e-300) else f"inaccurate (certified gap {r.gap:.3g})"
    return MinSharpness(r.b * (sy / sx), r.value * k, r.lower * k, r.gap * k, r.residual, status)


def _min_sharpness(X, y, eps: float) -> MinSharpness:
    import cvxpy as cp

    n, d = X.shape
    b, s, t = cp.Variable(d), cp.Variable(d), cp.Variable()
    K = X @ cp.diag(s) @ X.T / n
    prob = cp.Problem(cp.Minimize(t), [X @ b == y, b <= s, -b <= s, (K + K.T) / 2 << t * np.eye(n)])
    nu, Z = cp.Variable(n), cp.Variable((n, n), PSD=True)
    quad = cp.hstack([X[:, i] @ Z @ X[:, i] for i in range(d)]) / n
    dual = cp.Problem(cp.Maximize(y @ nu), [cp.trace(Z) == 1, cp.abs(X.T @ nu) <= quad])
    opts = dict(tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps)
    try:
        prob.solve(solver=cp.CLARABEL, **opts)
        dual.solve(solver=cp.CLARABEL, **opts)
    except cp.error.SolverError as exc:
        raise ValueError(f"minimum-sharpness SDP: solver failed ({exc})") from exc
    if prob.status not in ("optimal", "optimal_inaccurate") or b.value is None:
        raise ValueError(f"minimum-sharpness SDP not solved: status {prob.status}")
    if dual.status not in ("optimal", "optimal_inaccurate") or nu.value is None:
        raise ValueError(f"minimum-sharpness dual SDP not solved: status {dual.status}")
    bb = b.value - np.linalg.lstsq(X, X @ b.value - y, rcond=None)[0]
    upper = float(lam_max(X, np.abs(bb)[None])[0])
    w, V = np.linalg.eigh((Z.value + Z.value.T) / 2)
    Zf = (V * np.maximum(w, 0)) @ V.T
    Zf /= np.trace(Zf)
    cap = np.einsum("ni,nm,mi->i", X, Zf, X) / n
    lhs = np.abs(X.T @ nu.value)
    scale = min(1.0, float(np.min(np.where(lhs > 0, cap / np.where(lhs > 0, lhs, 1), np.inf))))
    lower = float(y @ nu.value) * scale
    res = relative_residual(X, bb, y)
    gap = upper - lower
    return MinSharpness(bb, upper, lower, gap, res, "optimal" if prob.status == "optimal" and dual.status == "optimal"
                        else "optimal_inaccurate")


@dataclass
class SharpnessPath(Certified):
    """Sharpness along the GF path (t, S) and at its limit b, with eta_c = 2 / S (Kreisler et al. 2023)."""

    t: np.ndarray
    S: np.ndarray              # full-Hessian sharpness at the times t
    S_limit: float             # at the GF limit b (closed-form weights)
    S_path_max: float          # max(S.max(), S_limit)
    eta_c_limit: float         # 2 / S_limit
    eta_c_path: float          # 2 / S_path_max
    b: np.ndarray              # the GF limit (numerics.dln.flow_limit)
    status: str                # "ok" | "failed: ..." (solve_ivp of the path); a limit not converged: "limit ..."
    residual: float            # the limit's ||X b - y|| / ||y||

    OK = ("ok",)


def gf_path_sharpness(X, y, alpha, kind: str = "uv", t_max: float = 1e6, points: int = 400,
                      rtol: float = 1e-10) -> SharpnessPath:
    """Sharpness (full Hessian) along the GF path and at its limit; eta_c = 2 / max over the path.

    Mirror coordinates G' = g(b(G)) (theory.dln): `uv` u+v = sqrt2 alpha e^{-G}, u-v = sqrt2 alpha e^{G};
    `pm` w+- = alpha e^{-+2G}.
    """
    X, y = _checked(X, y)
    alpha = positive_scalar(alpha, "alpha")
    if kind not in ("uv", "pm"):
        raise ValueError(f"gf_path_sharpness supports kind 'uv' or 'pm', got {kind!r}")
    t_max, rtol = positive_scalar(t_max, "t_max"), positive_scalar(rtol, "rtol")
    points = integer(points, "points", 0)
    n, d = X.shape

    def params_of(G):
        G = np.atleast_2d(G)
        if kind == "uv":
            up, um = np.sqrt(2) * alpha * np.exp(-G), np.sqrt(2) * alpha * np.exp(G)
            return np.stack([(up + um) / 2, (up - um) / 2], axis=1)
        return np.stack([alpha * np.exp(-2 * G), alpha * np.exp(2 * G)], axis=1)

    # b(G) = u v = -alpha^2 sinh(2G) (`uv`), w+^2 - w-^2 = -2 alpha^2 sinh(4G) (`pm`): the product forms cancel
    # (u - v ~ alpha G) and at alpha >= 100 Radau then never meets atol = 1e-13 (it hung)
    if kind == "uv":   # u0 = sqrt2 alpha, v0 = 0: c = alpha^2, theta = 0 (theory.dln.uv_general)
        link = compiled(th_dln.uv_general, "b_of_G_sinh", ("G", "c", "theta"))
        bfun = lambda G: link(G, alpha**2, 0.0)  # noqa: E731
    else:
        link = compiled(th_dln.pm, "b_of_G_sinh", ("G", "alpha"))
        bfun = lambda G: link(G, alpha)  # noqa: E731
    rhs = lambda t, G: (X.T @ (X @ bfun(G) - y) / n)
    ts = np.minimum(np.concatenate([[0.0], np.logspace(-3, np.log10(t_max), points)]), t_max)   # 10**log10(20) > 20
    sol = solve_ivp(rhs, (0, t_max), np.zeros(d), method="Radau", t_eval=ts, rtol=rtol, atol=1e-13)
    P = params_of(sol.y.T)
    S = sharpness_full(kind, P, X, y)
    finite_result(S, "the sharpness along the path", "rescale X, y or alpha")
    lim = flow_limit(X, y, alpha, parametrization=kind)
    b = lim.b
    wgf = compiled(th.hessian, "weight_gf", ("b", "alpha"), "numpy", (kind,))(b, alpha)
    S_lim = float(lam_max(X, np.broadcast_to(wgf, (1, d)))[0])
    status = ("ok" if sol.success else f"failed: {sol.message}") if lim.converged else f"limit {lim.status}"
    return SharpnessPath(t=sol.t, S=S, S_limit=S_lim, S_path_max=float(max(S.max(), S_lim)),
                         eta_c_limit=2.0 / S_lim, eta_c_path=2.0 / float(max(S.max(), S_lim)), b=b, status=status,
                         residual=lim.residual)
