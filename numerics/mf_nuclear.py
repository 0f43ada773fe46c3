"""Nuclear-norm programs: minimum nuclear norm under measurements, nuclear-regularized completion (SVT + cvxpy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mf_commuting import sensing_stack
from .result import Certified
from .validate import as_matrix, as_vector, consistent, finite_result, integer, positive_scalar, pow2_scale


def nuclear_norm(W) -> float:
    s = np.linalg.svd(as_matrix(W, "W"), compute_uv=False).sum()
    finite_result(s, "||W||_*", "rescale W")
    return float(s)


def _clarabel(prob, var, what: str, fix: str, unsolved: str) -> None:
    """Solve with Clarabel; a solver failure or a non-optimal status is a ValueError naming the problem."""
    import cvxpy as cp

    try:
        prob.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as exc:
        raise ValueError(f"{what}: solver failed ({exc}); {fix}") from exc
    if prob.status not in ("optimal", "optimal_inaccurate") or var.value is None:
        raise ValueError(unsolved.format(status=prob.status))


@dataclass
class MinNuclearNorm(Certified):
    """argmin ||W||_* (PSD: tr W) under the measurements, with its value and the relative measurement residual."""

    W: np.ndarray
    value: float               # ||W||_* (tr W when PSD) of the returned W
    residual: float            # ||A(W) - y|| / ||y||
    status: str                # cvxpy's ("optimal", "optimal_inaccurate") | "inaccurate (relative residual ...)"

    OK = ("optimal", "optimal_inaccurate")


def min_nuclear_norm(As, y, psd: bool = False) -> MinNuclearNorm:
    """argmin ||W||_* s.t. <A_i, W> = y_i (PSD: min trace over W >= 0), cvxpy + Clarabel (Gunasekar et al. 2017,
    Conjecture 1's candidate).

    Solved on data rescaled by powers of 2 (Clarabel's tolerances are absolute); status "inaccurate" when the
    relative measurement residual exceeds 1e-6 (Clarabel's feasibility tolerance 1e-8 with margin for conditioning).
    """
    import cvxpy as cp

    A = sensing_stack(As)
    y = as_vector(y, A.shape[0], "y", "As")
    consistent(A.reshape(A.shape[0], -1), y)   # <A_i, W> = y_i as a linear system in vec(W)
    sa, sy = pow2_scale(np.abs(A).max()), pow2_scale(np.abs(y).max())
    A0, y0, A, y = A, y, A / sa, y / sy
    d1, d2 = A.shape[1:]
    W = cp.Variable((d1, d2), PSD=True) if psd else cp.Variable((d1, d2))
    Am = A.reshape(A.shape[0], -1)
    cons = [Am @ cp.vec(W, order="C") == y]
    obj = cp.trace(W) if psd else cp.normNuc(W)
    prob = cp.Problem(cp.Minimize(obj), cons)
    _clarabel(prob, W, "minimum nuclear norm problem", "rescale As and y",
              "minimum nuclear norm problem is {status}: no (PSD) matrix fits the measurements")
    Wv = np.asarray(W.value) * (sy / sa)
    res = np.linalg.norm(np.einsum("mij,ij->m", A0, Wv) - y0) / max(np.linalg.norm(y0), 1e-300)
    return MinNuclearNorm(W=Wv, value=float(np.trace(Wv)) if psd else nuclear_norm(Wv), residual=float(res),
                          status=prob.status if res <= 1e-6 else f"inaccurate (relative residual {res:.2g})")


@dataclass
class CertifiedMinTrace(Certified):
    """min tr W over PSD W fitting the measurements, with a certified lower bound from a dual-feasible point."""

    W: np.ndarray
    upper: float          # tr W of the solver's W (feasible and PSD only to the solver's accuracy: not a bound)
    lower: float          # y^T nu_f with nu_f dual feasible (I - sum nu_i A_i >= 0): a certified lower bound
    nu: np.ndarray        # the dual-feasible multipliers nu_f
    residual: float       # ||A(W) - y|| / ||y||
    residual_abs: float   # ||A(W) - y||
    status: str           # cvxpy's ("optimal" | "optimal_inaccurate")

    OK = ("optimal",)


def min_trace_certified(As, y) -> CertifiedMinTrace:
    """min tr W s.t. <A_i, W> = y_i, W >= 0 (Clarabel) with a certified lower bound from the dual.

    Dual: max y^T nu s.t. Z = I - sum nu_i A_i >= 0. The solver's nu is scaled to exact feasibility:
    nu / (1 + delta) with delta >= -lambda_min(Z) (plus eigvalsh's rounding), so y^T nu_f <= min tr W.
    """
    import cvxpy as cp

    A = sensing_stack(As)
    if A.shape[1] != A.shape[2]:
        raise ValueError(f"min_trace_certified needs square sensing matrices, got {A.shape[1:]}")
    y = as_vector(y, A.shape[0], "y", "As")
    consistent(A.reshape(A.shape[0], -1), y)
    A = (A + A.transpose(0, 2, 1)) / 2
    sa, sy = pow2_scale(np.abs(A).max()), pow2_scale(np.abs(y).max())
    d = A.shape[1]
    W = cp.Variable((d, d), PSD=True)
    cons = [A.reshape(A.shape[0], -1) / sa @ cp.vec(W, order="C") == y / sy]
    prob = cp.Problem(cp.Minimize(cp.trace(W)), cons)
    _clarabel(prob, W, "minimum trace problem", "rescale As and y",
              "minimum trace problem is {status}: no PSD matrix fits the measurements")
    Wv = np.asarray(W.value) * (sy / sa)
    Wv = (Wv + Wv.T) / 2
    nu = np.asarray(cons[0].dual_value, dtype=np.float64).ravel() / sa
    if y @ nu < 0 < y @ -nu:   # cvxpy's sign convention for equality multipliers
        nu = -nu
    Z = np.eye(d) - np.tensordot(nu, A, axes=1)
    delta = max(0.0, -np.linalg.eigvalsh(Z)[0]) + 8 * d * np.finfo(np.float64).eps * max(1.0, np.abs(Z).max())
    nu_f = nu / (1 + delta)
    res = float(np.linalg.norm(np.einsum("mij,ij->m", A, Wv) - y))
    return CertifiedMinTrace(W=Wv, upper=float(np.trace(Wv)), lower=float(y @ nu_f), nu=nu_f,
                             residual=res / max(np.linalg.norm(y), 1e-300), residual_abs=res, status=prob.status)


def _mask(mask, M):
    M = as_matrix(M, "M")
    mask = np.asarray(mask)
    if mask.dtype != bool and not (mask.dtype.kind in "iuf" and np.all((mask == 0) | (mask == 1))):
        raise ValueError("mask must be boolean (or 0/1) marking the observed entries of M")
    mask = mask.astype(bool)
    if mask.shape != M.shape:
        raise ValueError(f"mask shape {mask.shape} differs from M shape {M.shape}")
    if not mask.any():
        raise ValueError("mask observes no entry")
    return mask, M


def svt(Z: np.ndarray, lam: float) -> np.ndarray:
    """prox of lam ||.||_*: soft-threshold the singular values (theory.matrix.tracenorm, prox identity)."""
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    return (U * np.maximum(s - lam, 0.0)) @ Vt


@dataclass
class Regularized(Certified):
    """A regularized fit W with its objective, stationarity residual, iterations and numerical rank."""

    W: np.ndarray
    objective: float
    residual: float     # SVT: ||W - svt(W - grad, lam)||_F / max(1, ||W||_F) (KKT fixed point); L-BFGS: ||grad||
    iterations: int
    rank: int
    status: str = "converged"   # "max_iter" when the step never fell below tol; cvxpy's status for the cross-check

    OK = ("converged", "optimal")


def _rank(W) -> int:
    s = np.linalg.svd(W, compute_uv=False)
    return int(np.sum(s > 1e-8 * max(s[0], 1e-300)))


def _kkt(W, mask, M, lam) -> float:
    return float(np.linalg.norm(W - svt(W - mask * (W - M), lam)) / max(1.0, np.linalg.norm(W)))


def completion_objective(W, mask, M, lam) -> float:
    return float(0.5 * np.sum((mask * (W - M)) ** 2) + lam * nuclear_norm(W))


def nuclear_regularized_completion(mask, M, lam, tol: float = 1e-13, max_iter: int = 20000) -> Regularized:
    """argmin (1/2)||P_Omega(W - M)||^2 + lam ||W||_*: accelerated proximal gradient (step 1) with restarts."""
    mask, M = _mask(mask, M)
    lam = positive_scalar(lam, "lam")
    max_iter = integer(max_iter, "max_iter", 1)
    W = np.zeros_like(M)
    Z, tk, f_prev = W.copy(), 1.0, np.inf
    it, status = 0, "max_iter"
    for it in range(1, max_iter + 1):
        Wn = svt(Z - mask * (Z - M), lam)
        f = completion_objective(Wn, mask, M, lam)
        if f > f_prev and tk > 1.0:  # adaptive restart (O'Donoghue & Candes); a step without momentum is always
            tk, Z = 1.0, W.copy()    # taken: near the optimum f's decrease is below its rounding, and a restart
            continue                 # there would repeat forever
        tn = (1 + np.sqrt(1 + 4 * tk * tk)) / 2
        Z = Wn + ((tk - 1) / tn) * (Wn - W)
        step = np.linalg.norm(Wn - W)
        W, tk, f_prev = Wn, tn, f
        if step <= tol * max(1.0, np.linalg.norm(W)):
            status = "converged"
            break
    return Regularized(W=W, objective=completion_objective(W, mask, M, lam), residual=_kkt(W, mask, M, lam),
                       iterations=it, rank=_rank(W), status=status)


def nuclear_regularized_cvxpy(mask, M, lam) -> Regularized:
    """The same convex problem by cvxpy + Clarabel (cross-check) on M rescaled by a power of 2."""
    import cvxpy as cp

    mask, M = _mask(mask, M)
    lam = positive_scalar(lam, "lam")
    sm = pow2_scale(np.abs(M).max())   # W(M / sm, lam / sm) = W(M, lam) / sm; Clarabel's tolerances are absolute
    W = cp.Variable(M.shape)
    obj = 0.5 * cp.sum_squares(cp.multiply(mask.astype(float), W - M / sm)) + (lam / sm) * cp.normNuc(W)
    prob = cp.Problem(cp.Minimize(obj))
    _clarabel(prob, W, "nuclear-regularized completion", "rescale M and lam",
              "nuclear-regularized completion not solved: status {status}")
    Wv = np.asarray(W.value) * sm
    return Regularized(W=Wv, objective=float(prob.value) * sm**2, residual=_kkt(Wv, mask, M, lam),
                       iterations=int(prob.solver_stats.num_iters or 0), rank=_rank(Wv), status=prob.status)
