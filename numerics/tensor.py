"""CP tensor factorization: component norms, gamma_r, the norm ODE and its unbalanced bounds (theory.tensor compiled).

Factors are arrays (N, d, R) (mode n, entry, component r) or batches (B, N, d, R). W_r = w_r^1 (x) ... (x) w_r^N,
||W_r|| = prod_n ||w_r^n||, gamma_r = <-grad l(W), W_r> / ||W_r|| (Razin, Maman, Cohen 2021, arXiv 2102.09972).
"""
from __future__ import annotations

import string

import numpy as np

from theory.tensor import cp_norms

from .compile import compiled
from .validate import finite_scalar, integer


def as_factors(F, name: str = "factors") -> np.ndarray:
    """Float64 factors of shape (N, d, R) or (B, N, d, R), N >= 2, finite; ValueError naming the problem."""
    try:
        F = np.asarray(F, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of shape (N, d, R) or (B, N, d, R)") from None
    if F.ndim not in (3, 4) or F.size == 0:
        raise ValueError(f"{name} must have shape (N, d, R) or (B, N, d, R) (mode, entry, component), got {F.shape}")
    if F.shape[-3] < 2:
        raise ValueError(f"{name}: a CP factorization needs order N >= 2, got N = {F.shape[-3]}")
    if not np.all(np.isfinite(F)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return F


def component_norms(F) -> np.ndarray:
    """||W_r|| = prod_n ||w_r^n||: shape (R,) or (B, R)."""
    F = as_factors(F)
    return np.prod(np.linalg.norm(F, axis=-2), axis=-2)


def factor_norms2(F) -> np.ndarray:
    """||w_r^n||^2: shape (N, R) or (B, N, R)."""
    return np.sum(as_factors(F) ** 2, axis=-2)


def unbalancedness(F) -> np.ndarray:
    """eps_r = max_n ||w_r^n||^2 - min_n ||w_r^n||^2 (conserved by GF: theory.tensor)."""
    a = factor_norms2(F)
    return a.max(axis=-2) - a.min(axis=-2)


def balance(F) -> np.ndarray:
    """Factors rescaled per component to equal norms ||w_r^n|| = ||W_r||^(1/N) (same W_r; zero components kept)."""
    F = as_factors(F).copy()
    N = F.shape[-3]
    nrm = np.linalg.norm(F, axis=-2, keepdims=True)                  # (..., N, 1, R)
    target = np.prod(nrm, axis=-3, keepdims=True) ** (1.0 / N)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(nrm > 0, target / np.where(nrm > 0, nrm, 1.0), 1.0)
    return F * scale


def full_tensor(F) -> np.ndarray:
    """W = sum_r w_r^1 (x) ... (x) w_r^N for factors (N, d, R) (or a batch)."""
    F = as_factors(F)
    N = F.shape[-3]
    letters = string.ascii_lowercase[:N]
    if F.ndim == 3:
        return np.einsum(",".join(f"{c}z" for c in letters) + "->" + letters, *F)
    return np.einsum(",".join(f"Y{c}z" for c in letters) + "->Y" + letters, *[F[:, n] for n in range(N)])


def component_inner(Gt, F) -> np.ndarray:
    """<Gt, W_r> for every component: Gt contracted with every factor of component r. Shape (R,)."""
    F = as_factors(F)
    if F.ndim != 3:
        raise ValueError("component_inner takes one factorization (N, d, R)")
    N, d, R = F.shape
    Gt = np.asarray(Gt, dtype=np.float64)
    if Gt.shape != (d,) * N:
        raise ValueError(f"shape mismatch: the gradient tensor has shape {Gt.shape} but the factors give {(d,) * N}")
    if not np.all(np.isfinite(Gt)):
        raise ValueError("the gradient tensor has non-finite entries")
    letters = string.ascii_lowercase[:N]
    return np.einsum(letters + "," + ",".join(f"{c}z" for c in letters) + "->z", Gt, *F)


def gammas(Gt, F) -> np.ndarray:
    """gamma_r = <-Gt, W_r / ||W_r||> (NaN for a zero component)."""
    nrm = component_norms(F)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(nrm > 0, -component_inner(Gt, F) / np.where(nrm > 0, nrm, 1.0), np.nan)


def _order(N) -> int:
    return integer(N, "N (tensor order)", 2)


def norm_rate(norms, gamma, N) -> np.ndarray:
    """Balanced factors: d||W_r||/dt = N gamma_r ||W_r||^(2 - 2/N) (theory.tensor.cp_norms, compiled)."""
    N = _order(N)
    norms, gamma = np.asarray(norms, dtype=np.float64), np.asarray(gamma, dtype=np.float64)
    if norms.shape != gamma.shape:
        raise ValueError(f"shape mismatch: norms {norms.shape} vs gamma {gamma.shape}")
    if np.any(norms < 0) or not np.all(np.isfinite(norms)):
        raise ValueError("component norms must be finite and >= 0")
    f = compiled(cp_norms, "dnorm_balanced", ("rho", "gamma_r", "N"))
    return np.asarray(f(norms, gamma, N), dtype=np.float64)


def norm_rate_exact(F, Gt) -> np.ndarray:
    """Any factors: d||W_r||/dt = gamma_r ||W_r||^2 sum_n 1/||w_r^n||^2 (theory.tensor; no balance assumed)."""
    F = as_factors(F)
    a = factor_norms2(F)
    nrm = component_norms(F)
    with np.errstate(divide="ignore", invalid="ignore"):
        return gammas(Gt, F) * nrm**2 * np.sum(1.0 / a, axis=0)


def norm_rate_bounds(norms, gamma, eps, N):
    """(lower, upper) of d||W_r||/dt for eps-unbalanced factors (Razin et al. Thm 2, theory.tensor): for gamma >= 0
    N gamma ||W||^2/(||W||^(2/N) + eps) <= . <= N gamma ||W||^2/(||W||^(2/N) - eps) (upper = inf when
    ||W||^(2/N) <= eps), the two swapped for gamma < 0."""
    N = _order(N)
    norms, gamma, eps = (np.asarray(x, dtype=np.float64) for x in (norms, gamma, eps))
    if np.any(eps < 0):
        raise ValueError("eps (unbalancedness) must be >= 0")
    lo_f = compiled(cp_norms, "dnorm_lower", ("rho", "gamma_r", "epsilon", "N"))
    hi_f = compiled(cp_norms, "dnorm_upper", ("rho", "gamma_r", "epsilon", "N"))
    lo = np.asarray(lo_f(norms, gamma, eps, N), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = np.where(norms ** (2.0 / N) > eps, hi_f(norms, gamma, eps, N), np.sign(gamma) * np.inf)
    return np.minimum(lo, hi), np.maximum(lo, hi)


def blowup_time(rho0, gamma, N) -> np.ndarray:
    """Frozen gamma > 0, balanced: ||W_r|| blows up at rho0^(-(N-2)/N) / ((N-2) gamma) (N >= 3)."""
    N = _order(N)
    if N < 3:
        raise ValueError("blow-up in finite time needs order N >= 3 (N = 2 grows exponentially)")
    f = compiled(cp_norms, "blowup_time", ("rho_0", "gamma_r", "N"))
    return np.asarray(f(np.asarray(rho0, dtype=np.float64), np.asarray(gamma, dtype=np.float64), N))


def effective_cp_rank(norms, target_norm: float, rel: float = 0.05) -> int:
    """Number of components with ||W_r|| >= rel * target_norm."""
    norms = np.asarray(norms, dtype=np.float64)
    target_norm = finite_scalar(target_norm, "target_norm")
    return int(np.sum(norms >= rel * target_norm))
