"""Predicted solutions of underdetermined linear systems from a given init (Gruber & Avron 2024, arXiv 2402.02454).

X (n x d) must have full row rank (n <= d, rank n): the formulas use X^+ = X^T (X X^T)^{-1} and need X w = y
solvable for every y. X^+ v is applied as Q R^{-T} v with X^T = Q R (never forming X X^T, whose condition number is
cond(X)^2: at cond(X) = 1e8 the normal equations lose every digit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

from theory import linear as th

from .compile import compiled
from .newton import Prediction
from .result import Certified, relative_residual
from .validate import as_matrix, as_vector, depth_value, finite_result


def full_row_rank(X, name: str = "X") -> np.ndarray:
    """Validate X (n x d) with rank n; ValueError naming the rank otherwise."""
    X = as_matrix(X, name)
    n, d = X.shape
    rank = np.linalg.matrix_rank(X)
    if rank < n:
        raise ValueError(f"{name} must have full row rank for the underdetermined-system formulas "
                         f"(rank {rank} < n = {n} rows): remove dependent samples or use fewer rows than features")
    return X


def _pinv(X, v) -> tuple[np.ndarray, np.ndarray]:
    """(X^+ v, nu) with X^+ v = X^T nu, nu = (X X^T)^{-1} v, via the reduced QR X^T = Q R (full row rank X)."""
    Q, R = np.linalg.qr(X.T)
    z = solve_triangular(R, v, trans="T")
    return Q @ z, solve_triangular(R, z)


def _prep(X, y, w0):
    X = full_row_rank(X)
    y = as_vector(y, X.shape[0])
    w0 = as_vector(w0, None, "w0")
    if w0.shape[0] != X.shape[1]:
        raise ValueError(f"shape mismatch: w0 has {w0.shape[0]} entries but X has {X.shape[1]} columns")
    return X, y, w0


def pinv_solution(X, y) -> Prediction:
    """X^+ y = X^T nu, nu = (X X^T)^{-1} y: the minimum-norm interpolator."""
    X = full_row_rank(X)
    y = as_vector(y, X.shape[0])
    b, nu = _pinv(X, y)
    finite_result(b, "X^+ y", "rescale X or y")
    return Prediction(b=b, nu=nu, residual=relative_residual(X, b, y), iterations=0, status="exact")


def null_projection(X, v) -> np.ndarray:
    """P_perp v = v - X^+ X v (component in null(X))."""
    X = full_row_rank(X)
    v = as_vector(v, None, "v")
    if v.shape[0] != X.shape[1]:
        raise ValueError(f"shape mismatch: v has {v.shape[0]} entries but X has {X.shape[1]} columns")
    return v - _pinv(X, X @ v)[0]


def one_layer_limit(X, y, w0) -> Prediction:
    """GF/GD limit of a linear model from w0: b = w0 + X^+(y - X w0) = w0 + X^T nu (theory.linear.one_layer)."""
    X, y, w0 = _prep(X, y, w0)
    step, nu = _pinv(X, y - X @ w0)
    w = w0 + step
    finite_result(w, "w0 + X^+ (y - X w0)", "rescale X, y or w0")
    return Prediction(b=w, nu=nu, residual=relative_residual(X, w, y), iterations=0, status="exact")


@dataclass
class Kappa(Certified):
    """The null-space scale kappa of the balanced depth-N limit (Gruber & Avron 2024) and its equation's residual."""

    value: float
    residual: float            # |kappa equation| / max(||X^+ y||^2, kappa^2 ||P_perp w0||^2)
    iterations: int            # Newton polish steps after bisection
    status: str                # "converged" (last Newton step within 4 ulps of q) | "max_iter"


@dataclass
class DeepLimit(Prediction):
    """The balanced depth-N limit b = X^+ y + kappa P_perp w0 (b - kappa w0 = X^T nu) with its kappa root."""

    kappa: Kappa | None = None


def kappa(X, y, w0, depth: int) -> Kappa:
    """kappa > 0 solving kappa^(2N/(N-1)) ||w0||^2 = ||X^+ y||^2 + kappa^2 ||P_perp w0||^2 (Gruber & Avron 2024).

    Solved as the unique positive root of A q^N - B q^(N-1) - C (q = kappa^(2/(N-1)), theory.linear.deep),
    bracketed and polished by Newton to machine precision.
    """
    X, y, w0 = _prep(X, y, w0)
    N = depth_value(depth)
    A = float(w0 @ w0)
    if A == 0 and np.any(w0):
        raise ValueError("||w0||^2 underflows to 0 in float64 (|w0| below ~1e-154); rescale w0")
    if A == 0:
        raise ValueError("w0 = 0 is a saddle of the deep linear network (no gradient flows); use w0 != 0")
    B = float(np.sum(null_projection(X, w0) ** 2))
    xp = pinv_solution(X, y).b
    C = float(xp @ xp)
    finite_result((A, B, C), "||w0||^2, ||P_perp w0||^2 or ||X^+ y||^2", "rescale X, y or w0")
    poly = compiled(th.deep, "q_poly", ("A", "B", "C", "q"), "numpy", (N,))
    dpoly = compiled(th.deep, "dq_poly", ("A", "B", "C", "q"), "numpy", (N,))
    k_of_q = compiled(th.deep, "kappa_of_q", ("q",), "numpy", (N,))
    eq = compiled(th.deep, "kappa_equation", ("A", "B", "C", "kappa"), "numpy", (N,))
    lo, hi = 0.0, max(1.0, B / A, (C / A) ** (1.0 / N)) * 2.0
    while poly(A, B, C, hi) <= 0:
        hi *= 2
    # the polynomial is negative on (0, q*) and positive after (one sign change): bisect then Newton
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if poly(A, B, C, mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-6 * hi:
            break
    q = 0.5 * (lo + hi)
    its, step = 0, np.inf
    for its in range(1, 21):
        step = poly(A, B, C, q) / dpoly(A, B, C, q)
        q -= step
        if abs(step) <= 1e-16 * q:
            break
    k = float(k_of_q(q))
    scale = max(C, k**2 * B, 1e-300)
    status = "converged" if abs(step) <= 4 * np.finfo(np.float64).eps * q else "max_iter"
    return Kappa(value=k, residual=float(abs(eq(A, B, C, k)) / scale), iterations=its, status=status)


def deep_limit(X, y, w0, depth: int) -> DeepLimit:
    """Balanced depth-N scalar-output linear net from end-to-end w0: X^+ y + kappa P_perp w0 (Gruber & Avron 2024)."""
    k = kappa(X, y, w0, depth)
    X, y, w0 = _prep(X, y, w0)
    p = pinv_solution(X, y)
    w = p.b + k.value * null_projection(X, w0)
    finite_result(w, "X^+ y + kappa P_perp w0", "rescale X, y or w0")
    nu = p.nu - k.value * _pinv(X, X @ w0)[1]
    return DeepLimit(b=w, nu=nu, residual=relative_residual(X, w, y), iterations=k.iterations,
                     status="exact" if k.converged else f"kappa {k.status}", kappa=k)
