"""Commuting sensing for W = U U^T: closed-form limit and trajectory on the shared eigenbasis (Gunasekar 2017, Sec. 3).

Convention: L(W) = sum_i (<A_i, W> - y_i)^2 / (2m); lambda = alpha^2 exp(-4 a^T S), dS/dt = r / m.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import linprog

from theory.matrix import commuting

from .compile import compiled
from .result import Certified, relative_residual
from .validate import as_vector, pow2_scale, positive_scalar, times


@dataclass
class CommutingBasis:
    Q: np.ndarray   # (d, d) orthonormal, columns are the shared eigenvectors
    a: np.ndarray   # (m, d) eigenvalues a_ij of A_i on q_j


def sensing_stack(As, name: str = "As") -> np.ndarray:
    try:
        A = np.asarray(As, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a stack of equally sized numeric matrices (m, d, d)") from None
    if A.ndim != 3 or A.shape[1] != A.shape[2] or A.size == 0:
        raise ValueError(f"{name} must be a stack of square matrices of shape (m, d, d), got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} has non-finite entries")
    return A


def commuting_basis(As, tol: float = 1e-10) -> CommutingBasis:
    """Joint eigenbasis of symmetric commuting A_i; ValueError naming the pair that does not commute."""
    A = sensing_stack(As)
    tol = positive_scalar(tol, "tol")
    scale = max(np.abs(A).max(), 1e-300)
    asym = np.abs(A - A.transpose(0, 2, 1)).max() / scale
    if asym > tol:
        raise ValueError(f"sensing matrices must be symmetric for W = U U^T (max |A - A^T| / max|A| = {asym:.2g})")
    m = A.shape[0]
    for i in range(m):
        for j in range(i + 1, m):
            c = np.abs(A[i] @ A[j] - A[j] @ A[i]).max() / scale**2
            if c > tol:
                raise ValueError(f"sensing matrices A_{i} and A_{j} do not commute (max |A_i A_j - A_j A_i| / "
                                 f"max|A|^2 = {c:.2g} > {tol:g}); the commuting closed form does not apply -- use "
                                 f"the general gradient-flow trainer for non-commuting sensing")
    coef = np.random.default_rng(12345).standard_normal(m)
    _, Q = np.linalg.eigh(np.tensordot(coef, A, axes=1))
    B = np.einsum("dj,mde,ek->mjk", Q, A, Q)
    a = np.einsum("mjj->mj", B)
    off = np.abs(B - np.einsum("mj,jk->mjk", a, np.eye(A.shape[1]))).max() / scale
    if off > 1e3 * tol:
        raise ValueError(f"could not jointly diagonalize the sensing matrices (off-diagonal {off:.2g})")
    return CommutingBasis(Q=Q, a=a)


def _lam(S, a, alpha):
    f = compiled(commuting, "lam_of_S", ("S", "alpha"))
    return f(a.T @ S, alpha)


def _lp(a, y, cost):
    """linprog min cost^T lam, a lam = y, lam >= 0 on data rescaled by powers of 2 (HiGHS tolerances are absolute).

    Returns (result, sa, sy): lam = result.x * sy / sa, and a^T nu = (a / sa)^T result.eqlin.marginals.
    """
    sa, sy = pow2_scale(np.abs(a).max()), pow2_scale(np.abs(y).max())
    res = linprog(cost, A_eq=a / sa, b_eq=y / sy, bounds=[(0, None)] * a.shape[1], method="highs")
    return res, sa, sy


def _check_feasible(a, y):
    res = _lp(a, y, np.zeros(a.shape[1]))[0]
    if res.status != 0:
        raise ValueError("measurements y are inconsistent with any PSD matrix: no W >= 0 with <A_i, W> = y_i "
                         f"(linprog status {res.status}: {res.message})")


@dataclass
class CommutingPrediction(Certified):
    """GF limit W = Q diag(lam) Q^T from alpha I with its dual mu and Newton certificate (Gunasekar 2017, Sec. 3)."""

    W: np.ndarray
    lam: np.ndarray
    mu: np.ndarray         # dual variable, lambda = alpha^2 exp(a^T mu)
    residual: float        # ||a lambda - y|| / ||y||
    iterations: int
    status: str            # "converged" | "max_iter" | "stalled" (no step reduces the merit below rounding)
    log_lam: np.ndarray    # ln lambda = ln alpha^2 + a^T mu, finite where lambda underflows


def _log_lam(a, mu, alpha):
    return compiled(commuting, "log_link", ("nu", "alpha"))(a.T @ mu, alpha)


def _dual_newton(a, y, alpha, mu, tol, max_iter):
    """Damped Newton on the dual phi(mu) = sum_j alpha^2 e^{(a^T mu)_j} - y^T mu of the entropy potential.

    Armijo on phi while its decrease is above phi's rounding; below it (phi ~ L tr W at small alpha) the
    test cannot be decided and the step is judged on ||grad phi|| instead. Converged at ||grad|| <= tol ||y||
    plus the rounding of lambda = exp(ln alpha^2 + a^T mu), whose argument carries eps (|ln alpha^2| + |a|^T|mu|).
    Returns (mu, iterations, status).
    """
    eps = np.finfo(np.float64).eps
    ynorm = max(np.linalg.norm(y), 1e-300)

    def floor(lam, mu):
        return 4 * eps * np.linalg.norm(np.abs(a) @ (lam * (abs(2 * np.log(alpha)) + np.abs(a).T @ np.abs(mu))))

    def parts(mu):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            lam = np.exp(_log_lam(a, mu, alpha))
            f = np.sum(lam) - y @ mu
        ok = np.isfinite(f) and np.all(np.isfinite(lam))
        return (lam, f, a @ lam - y, eps * (np.sum(lam) + np.abs(y) @ np.abs(mu))) if ok else (None, np.inf, None, 0.0)

    lam, f0, grad, rnd = parts(mu)
    if lam is None:
        raise ValueError(f"the dual Newton start overflows at alpha = {alpha:g}; pass a smaller warm start mu0")
    for it in range(1, max_iter + 1):
        gnorm = np.linalg.norm(grad)
        if gnorm <= tol * ynorm + floor(lam, mu):
            return mu, it, "converged"
        H = (a * lam) @ a.T
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
        dec = grad @ step
        decidable = 0.25 * dec > 64 * rnd
        t = 1.0
        while t >= 1e-12:
            new = parts(mu - t * step)
            if new[0] is not None and (new[1] <= f0 - 0.25 * t * dec if decidable
                                       else np.linalg.norm(new[2]) <= (1 - 0.25 * t) * gnorm):
                break
            t *= 0.5
        else:
            return mu, it, "stalled"
        mu = mu - t * step
        lam, f0, grad, rnd = new
    return mu, max_iter, "max_iter"


def _ladder(alpha):
    """alpha * 10^k, k = K..1, the first >= 1e-2: continuation in ln(1/alpha) down to alpha."""
    out = [alpha * 10.0]
    while out[-1] < 1e-2:
        out.append(out[-1] * 10.0)
    return out[::-1]


def commuting_limit(As, y, alpha, tol: float = 1e-14, max_iter: int = 500, mu0=None) -> CommutingPrediction:
    """W_inf = Q diag(lambda) Q^T, lambda = alpha^2 exp(a^T mu), a lambda = y: damped dual Newton (log domain).

    ``mu0`` warm-starts the Newton solve; without it, alpha < 1e-2 is reached by continuation from 10^k alpha
    with mu rescaled by the ratio of ln alpha (mu ~ ln(1/alpha^2) nu* as alpha -> 0).
    """
    basis = commuting_basis(As)
    a = basis.a
    y = as_vector(y, a.shape[0], "y", "As")
    alpha = positive_scalar(alpha, "alpha")
    _check_feasible(a, y)
    if mu0 is not None:
        mu = as_vector(mu0, a.shape[0], "mu0", "As")
    else:
        mu, prev = np.zeros(a.shape[0]), None
        for b in (_ladder(alpha) if alpha < 1e-2 else []):
            mu = mu if prev is None else mu * np.log(b) / np.log(prev)
            mu, _, _ = _dual_newton(a, y, b, mu, tol, max_iter)
            prev = b
        if prev is not None:
            mu = mu * np.log(alpha) / np.log(prev)
    mu, it, status = _dual_newton(a, y, alpha, mu, tol, max_iter)
    log_lam = _log_lam(a, mu, alpha)
    lam = np.exp(log_lam)
    W = (basis.Q * lam) @ basis.Q.T
    return CommutingPrediction(W=W, lam=lam, mu=mu, residual=float(np.linalg.norm(a @ lam - y) /
                                                                    max(np.linalg.norm(y), 1e-300)),
                               iterations=it, status=status, log_lam=log_lam)


@dataclass
class CommutingTrajectory(Certified):
    """W(t) (T, d, d) and its eigenvalues lam (T, d) on the shared eigenbasis at times t."""

    t: np.ndarray
    W: np.ndarray
    lam: np.ndarray
    status: str                # "ok" | "failed: ..." (solve_ivp on the reduced ODE)
    nfev: int

    OK = ("ok",)


def commuting_trajectory(As, y, alpha, t_eval, rtol: float = 1e-13, atol: float = 1e-16) -> CommutingTrajectory:
    """W(t) = Q diag(alpha^2 e^{-4 a^T S(t)}) Q^T with the m-dim reduced ODE dS/dt = (y - a lambda(S)) / m
    (Gunasekar et al. 2017, Sec. 3)."""
    basis = commuting_basis(As)
    a = basis.a
    m = a.shape[0]
    y = as_vector(y, m, "y", "As")
    alpha = positive_scalar(alpha, "alpha")
    t_eval = times(t_eval)

    def rhs(_, S):
        return (a @ _lam(S, a, alpha) - y) / m

    dlam = compiled(commuting, "dlam_dS", ("S", "alpha"))

    def jac(_, S):
        return (a * dlam(a.T @ S, alpha)) @ a.T / m

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), np.zeros(m), method="Radau", jac=jac, t_eval=t_eval, rtol=rtol,
                    atol=atol)
    lam = np.array([_lam(S, a, alpha) for S in np.reshape(sol.y, (m, -1)).T]).reshape(len(sol.t), a.shape[1])
    W = np.einsum("ij,tj,kj->tik", basis.Q, lam, basis.Q)
    return CommutingTrajectory(t=sol.t, W=W, lam=lam, status="ok" if sol.success else f"failed: {sol.message}",
                               nfev=sol.nfev)


@dataclass
class MinTraceLP(Certified):
    """Minimum-trace PSD solution of commuting sensing: W = Q diag(lam) Q^T with the LP dual certificate s = a^T nu."""

    W: np.ndarray
    lam: np.ndarray
    s: np.ndarray              # s_j <= 1, = 1 on the support
    residual: float            # ||a lam - y|| / ||y||
    status: str                # "optimal" (HiGHS; a failed LP raises)

    OK = ("optimal",)


def min_trace_commuting(As, y) -> MinTraceLP:
    """Minimum-trace PSD solution for commuting sensing: the LP min 1^T lambda, a lambda = y, lambda >= 0
    (Gunasekar et al. 2017, Sec. 3: the alpha -> 0 limit)."""
    basis = commuting_basis(As)
    a = basis.a
    y = as_vector(y, a.shape[0], "y", "As")
    _check_feasible(a, y)
    res, sa, sy = _lp(a, y, np.ones(a.shape[1]))
    if res.status != 0:
        raise ValueError(f"minimum-trace LP not solved (linprog status {res.status}: {res.message})")
    lam, s = _refine_vertex(a, y, res.x * (sy / sa), (a / sa).T @ res.eqlin.marginals)
    return MinTraceLP(W=(basis.Q * lam) @ basis.Q.T, lam=lam, s=s,
                      residual=relative_residual(a, lam, y), status="optimal")


def _refine_vertex(a, y, lam, s):
    """A nondegenerate vertex (support S of size m, a_S invertible) to rounding: lam_S = a_S^-1 y, a_S^T nu = 1.

    HiGHS certifies lam and s = a^T nu only to its tolerances (1e-7); the refined pair is kept when it is
    primal and dual feasible and within those tolerances of the LP's, else the LP's pair is returned.
    """
    m = a.shape[0]
    S = np.flatnonzero(lam > 1e-7 * max(lam.max(), 1e-300))
    if len(S) != m or np.linalg.cond(a[:, S]) > 1e10:
        return lam, s
    lam_r = np.zeros_like(lam)
    lam_r[S] = np.linalg.solve(a[:, S], y)
    s_r = a.T @ np.linalg.solve(a[:, S].T, np.ones(m))
    off = np.setdiff1d(np.arange(a.shape[1]), S)
    ok = (np.all(lam_r[S] > 0) and np.all(s_r[off] < 1) and np.linalg.norm(lam_r - lam) <= 1e-6 * np.linalg.norm(lam)
          and np.abs(s_r - s).max() <= 1e-6 * max(1.0, np.abs(s).max()))
    return (lam_r, s_r) if ok else (lam, s)
