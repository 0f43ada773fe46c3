"""Predictors for diagonal linear networks under gradient flow: limits, references, isotropic trajectory."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from theory import dln as th

from .compile import compiled
from .newton import BoundedFamily, Prediction, SinhFamily, dual_newton
from .result import Trajectory, relative_residual
from .validate import as_matrix, as_vector, consistent, depth_value, positive


def _checked(X, y):
    X = as_matrix(X)
    y = as_vector(y, X.shape[0])
    consistent(X, y)
    return X, y


def sinh_limit(X, y, log_c, theta, nu0=None, tol: float = 1e-13, stage: float = 3.0) -> Prediction:
    """Dual Newton for b = c sinh(theta + X^T nu); for tiny c, continuation in log c from c ~ 1 with warm starts.

    From nu = 0 at tiny c the dual Hessian is dominated by one coordinate and Newton stalls; along the path
    log c -> log c - stage the previous dual point (linearly extrapolated) is inside Newton's quadratic basin.
    """
    log_c = np.asarray(log_c, dtype=np.float64)
    shift = max(0.0, -float(np.min(log_c)) - 2.0)
    if shift == 0.0 or nu0 is not None:
        return dual_newton(X, y, SinhFamily(log_c, theta), nu0=nu0, tol=tol)
    shifts = list(np.arange(shift, 0.0, -stage)) + [0.0]
    path: list[tuple[float, np.ndarray]] = []
    iterations = 0
    for k, sh in enumerate(shifts):
        if len(path) >= 2:
            (s1, n1), (s2, n2) = path[-2], path[-1]
            guess = n2 + (n2 - n1) * (sh - s2) / (s2 - s1)
        else:
            guess = path[-1][1] if path else None
        last = k == len(shifts) - 1
        pred = dual_newton(X, y, SinhFamily(log_c + sh, theta), nu0=guess, tol=tol if last else 1e-10)
        iterations += pred.iterations
        path.append((sh, pred.nu))
    pred.iterations = iterations
    return pred


def bregman_limit(X, y, c, b0=None, nu0=None, tol: float = 1e-13) -> Prediction:
    """argmin_{Xb=y} D_phi_c(b, b0), phi_c = sum b asinh(b/c) - sqrt(b^2+c^2) + c (Azulay et al. 2021, Thm 4.1)."""
    X, y = _checked(X, y)
    d = X.shape[1]
    c = np.broadcast_to(positive(c, "c"), (d,)).astype(np.float64)
    b0 = np.zeros(d) if b0 is None else np.broadcast_to(as_vector(np.atleast_1d(b0), None, "b0"), (d,))
    return sinh_limit(X, y, np.log(c), np.arcsinh(b0 / c), nu0=nu0, tol=tol)


def flow_limit(X, y, alpha, depth: int = 2, parametrization: str = "pm", nu0=None, tol: float = 1e-13) -> Prediction:
    """GF limit of a DLN from scale alpha: argmin_{Xb=y} Q_alpha (D=2) or Q^D (Woodworth et al. 2020, Thm 1, 3)."""
    X, y = _checked(X, y)
    alpha = float(positive(alpha, "alpha"))
    D = depth_value(depth)
    if parametrization not in ("pm", "uv"):
        raise ValueError(f"parametrization must be 'pm' or 'uv', got {parametrization!r}")
    if D == 2:
        # link pm: 2 alpha^2 sinh(s); uv (u0 = sqrt2 alpha, v0 = 0): alpha^2 sinh(s)  (theory.dln.pm, uv_general)
        log_c = np.log(2.0) + 2 * np.log(alpha) if parametrization == "pm" else 2 * np.log(alpha)
        return sinh_limit(X, y, np.full(X.shape[1], log_c), np.zeros(X.shape[1]), nu0=nu0, tol=tol)
    if parametrization != "pm":
        raise ValueError("depth >= 3 is derived for the 'pm' parametrization only")
    fam = BoundedFamily(alpha**D, *(compiled(th.depth, k, ("s",), "numpy", (D,)) for k in ("H", "h_stable", "dh")))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        pred = dual_newton(X, y, fam, nu0=nu0, tol=tol)
    return pred if pred.converged else depth_limit_mp(X, y, alpha, D, pred.nu, tol)


def depth_limit_mp(X, y, alpha: float, D: int, nu0=None, tol: float = 1e-13, maxiter: int = 1000) -> Prediction:
    """Depth-D dual Newton in mpmath, for small alpha where float64 cannot resolve 1 - |s| (Woodworth et al. Thm 3).

    On the support 1 - |s| ~ (alpha^D / |b|)^((D-2)/D): float64 holds s to 1e-16, so b to ~1e-16 / (1 - |s|).
    Runs at 30 + (D - 2) log10(1/alpha) digits: O(n^2 d) multiprecision operations per iteration.
    """
    import mpmath as mp

    X, y = _checked(X, y)
    D = depth_value(D)
    n, d = X.shape
    with mp.workdps(30 + int(np.ceil((D - 2) * max(0.0, -np.log10(alpha))))):
        h, dh, H = (compiled(th.depth, k, ("s",), "mpmath", (D,)) for k in ("h", "dh", "H"))
        aD = mp.mpf(alpha) ** D
        Xm = mp.matrix(X.tolist())
        ym = mp.matrix(y.tolist())
        nu = mp.matrix(n, 1) if nu0 is None else mp.matrix(np.asarray(nu0, dtype=np.float64).tolist())
        if max(abs(si) for si in Xm.T * nu) >= 1:
            nu = mp.matrix(n, 1)   # outside the dual domain at this precision
        ynorm = mp.norm(ym)
        dual = lambda sv, v: aD * mp.fsum(H(si) for si in sv) - mp.fsum(ym[j] * v[j] for j in range(n))  # noqa: E731
        history, status, best = [], "max_iter", (np.inf, None, None)
        for _ in range(maxiter + 1):
            sv = Xm.T * nu
            bm = [aD * h(si) for si in sv]
            r = Xm * mp.matrix(bm) - ym
            b = np.array([float(v) for v in bm])
            res = relative_residual(X, b, y)
            history.append(res)
            if res < best[0]:
                best = (res, b, nu)
            if res <= tol:
                status = "converged"
                break
            if mp.norm(r) <= ynorm * tol * 1e-6:
                status = "stalled"   # solved; the float64 rounding of b alone misses tol (ill-conditioned X)
                break
            if len(history) > maxiter:
                break
            w = [aD * dh(si) for si in sv]
            Hm = mp.matrix(n, n)
            for j in range(n):
                for k in range(j, n):
                    Hm[j, k] = Hm[k, j] = mp.fsum(Xm[j, i] * w[i] * Xm[k, i] for i in range(d))
            dnu = mp.lu_solve(Hm, -r)
            ds = Xm.T * dnu
            room = [((1 if ds[i] > 0 else -1) - sv[i]) / ds[i] for i in range(d) if ds[i] != 0]
            step = min([mp.mpf(1)] + [mp.mpf("0.995") * t for t in room])
            slope, f0 = mp.fsum(r[j] * dnu[j] for j in range(n)), dual(sv, nu)
            for _ in range(200):
                if dual(sv + step * ds, nu + step * dnu) - f0 <= step * slope / 4:
                    break
                step /= 2
            else:
                status = "stalled"   # no Armijo decrease at this precision
                break
            nu = nu + step * dnu
        res, b, nu = best
        nu_f = np.array([float(v) for v in nu])
    return Prediction(b=b, nu=nu_f, residual=res, iterations=len(history) - 1, status=status, history=history)


def shape_limit(X, y, u0, v0, tol: float = 1e-13) -> Prediction:
    """GF limit of a `uv` DLN from any (u0, v0) with |u0| != |v0| (Azulay et al. 2021, Thm 4.1)."""
    X = as_matrix(X)
    u0 = as_vector(u0, None, "u0")
    v0 = as_vector(v0, u0.shape[0], "v0")
    if u0.shape[0] != X.shape[1]:
        raise ValueError(f"shape mismatch: u0 has {u0.shape[0]} entries but X has {X.shape[1]} columns")
    c_of = compiled(th.uv_general, "c_of_init", ("u0", "v0"))
    b0_of = compiled(th.uv_general, "b0_of_init", ("u0", "v0"))
    c = np.asarray(c_of(u0, v0), dtype=np.float64)
    if np.any(c <= 0):
        raise ValueError("shape_limit needs |u0_i| != |v0_i| for every i (c_i = |u0^2 - v0^2|/2 > 0); "
                         "balanced coordinates have no Bregman potential of this form")
    return bregman_limit(X, y, c, b0_of(u0, v0), tol=tol)


def min_l2(X, y) -> Prediction:
    """Minimum-l2 interpolator pinv(X) y, b = X^T nu: the alpha -> inf limit (Woodworth et al. 2020)."""
    X, y = _checked(X, y)
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    nu = np.linalg.lstsq(X.T, b, rcond=None)[0]
    return Prediction(b=b, nu=nu, residual=relative_residual(X, b, y), iterations=0, status="exact")


def min_l1(X, y) -> Prediction:
    """Minimum-l1 interpolator (LP, HiGHS) with its dual certificate nu, ||X^T nu||_inf <= 1 (Woodworth et al. 2020,
    Thm 2: the alpha -> 0 limit)."""
    X, y = _checked(X, y)
    n, d = X.shape
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:
        raise ValueError(f"min-l1 LP failed: {res.message}")
    b = res.x[:d] - res.x[d:]
    nu = np.asarray(res.eqlin.marginals, dtype=np.float64)
    support = np.flatnonzero(np.abs(b) > 1e-9 * max(np.abs(b).max(), 1e-300))
    if len(support) == n and np.linalg.matrix_rank(X[:, support]) == n:
        # polish the vertex to machine precision: X_S b_S = y, X_S^T nu = sign(b_S)
        b = np.zeros(d)
        b[support] = np.linalg.solve(X[:, support], y)
        nu = np.linalg.solve(X[:, support].T, np.sign(b[support]))
    return Prediction(b=b, nu=nu, residual=relative_residual(X, b, y), iterations=int(res.nit), status="optimal")


def potential(b, alpha) -> float:
    """Q_alpha(b) = alpha^2 sum q(b/alpha^2) (Woodworth et al. 2020, eq. for D = 2)."""
    Q = compiled(th.pm, "Q", ("b", "alpha"))
    return float(np.sum(Q(np.asarray(b, dtype=np.float64), float(positive(alpha, "alpha")))))


def isotropic_trajectory(t, b_star, alpha) -> Trajectory:
    """Closed-form b(t) of a `pm` DLN with X^T X / n = I (theory.dln.isotropic): b of shape (len(t), d)."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("times t must be finite and >= 0")
    b_star = as_vector(np.atleast_1d(b_star), None, "b_star")
    c = 2 * float(positive(alpha, "alpha")) ** 2
    f = compiled(th.isotropic, "b_of_t", ("t", "b_star", "c"))
    return Trajectory(t=t, b=np.asarray(f(t[:, None], b_star[None, :], c), dtype=np.float64), status="exact")
