"""Predicted solutions of underdetermined linear systems from a given init (Gruber & Avron 2024, arXiv 2402.02454).

X (n x d) must have full row rank (n <= d, rank n): the formulas use X^+ = X^T (X X^T)^{-1} and need X w = y
solvable for every y. X^+ v is applied as Q R^{-T} v with X^T = Q R (never forming X X^T, whose condition number is
cond(X)^2: at cond(X) = 1e8 the normal equations lose every digit).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from theory import linear as th

from .compile import compiled
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


def _apply_pinv(X, v) -> np.ndarray:
    """X^+ v = X^T (X X^T)^{-1} v via the reduced QR of X^T (full row rank X)."""
    Q, R = np.linalg.qr(X.T)
    return Q @ solve_triangular(R, v, trans="T")


def _prep(X, y, w0):
    X = full_row_rank(X)
    y = as_vector(y, X.shape[0])
    w0 = as_vector(w0, None, "w0")
    if w0.shape[0] != X.shape[1]:
        raise ValueError(f"shape mismatch: w0 has {w0.shape[0]} entries but X has {X.shape[1]} columns")
    return X, y, w0


def pinv_solution(X, y) -> np.ndarray:
    """X^+ y = X^T (X X^T)^{-1} y."""
    X = full_row_rank(X)
    y = as_vector(y, X.shape[0])
    b = _apply_pinv(X, y)
    finite_result(b, "X^+ y", "rescale X or y")
    return b


def null_projection(X, v) -> np.ndarray:
    """P_perp v = v - X^+ X v (component in null(X))."""
    X = full_row_rank(X)
    v = as_vector(v, None, "v")
    if v.shape[0] != X.shape[1]:
        raise ValueError(f"shape mismatch: v has {v.shape[0]} entries but X has {X.shape[1]} columns")
    return v - _apply_pinv(X, X @ v)


def one_layer_limit(X, y, w0) -> np.ndarray:
    """GF/GD limit of a linear model from w0: w0 + X^+(y - X w0) (theory.linear.one_layer)."""
    X, y, w0 = _prep(X, y, w0)
    w = w0 + _apply_pinv(X, y - X @ w0)
    finite_result(w, "w0 + X^+ (y - X w0)", "rescale X, y or w0")
    return w


def kappa(X, y, w0, depth: int) -> tuple[float, float]:
    """kappa > 0 solving kappa^(2N/(N-1)) ||w0||^2 = ||X^+ y||^2 + kappa^2 ||P_perp w0||^2; returns (kappa, residual).

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
    xp = pinv_solution(X, y)
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
    for _ in range(20):
        step = poly(A, B, C, q) / dpoly(A, B, C, q)
        q -= step
        if abs(step) <= 1e-16 * q:
            break
    k = float(k_of_q(q))
    scale = max(C, k**2 * B, 1e-300)
    return k, float(abs(eq(A, B, C, k)) / scale)


def deep_limit(X, y, w0, depth: int) -> np.ndarray:
    """Balanced depth-N scalar-output linear net from end-to-end w0: X^+ y + kappa P_perp w0 (Gruber & Avron 2024)."""
    k, _ = kappa(X, y, w0, depth)
    w = pinv_solution(X, y) + k * null_projection(X, w0)
    finite_result(w, "X^+ y + kappa P_perp w0", "rescale X, y or w0")
    return w
