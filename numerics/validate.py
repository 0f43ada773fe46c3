"""Input validation for public predictors: a clear ValueError naming the argument and the fix."""
from __future__ import annotations

import numpy as np


def _numeric(x, name: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array (equal-length rows of numbers), "
                         f"got {type(x).__name__}") from None


def as_matrix(X, name: str = "X") -> np.ndarray:
    X = _numeric(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n samples x d features), got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one sample and one feature")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf); clean the data first")
    return X


def as_vector(y, n: int | None = None, name: str = "y", rows_of: str = "X") -> np.ndarray:
    y = _numeric(y, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"shape mismatch: {name} has {y.shape[0]} entries but {rows_of} has {n} rows")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return y


def positive(x, name: str) -> np.ndarray:
    arr = _numeric(x, name)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {x!r}")
    return arr


def finite_scalar(x, name: str) -> float:
    arr = _numeric(x, name)
    if arr.ndim != 0 or not np.isfinite(arr):
        raise ValueError(f"{name} must be a finite real scalar, got {x!r}")
    return float(arr)


def positive_scalar(x, name: str) -> float:
    """A finite scalar > 0 (a 0-d array or a number)."""
    arr = positive(x, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return float(arr)


def integer(k, name: str, minimum: int) -> int:
    """An integer-valued number >= minimum (3.0 is accepted as 3; NaN, inf, 2.5 and arrays are not)."""
    try:
        ok = np.ndim(k) == 0 and not isinstance(k, (str, bool)) and np.isfinite(k) and int(k) == k and k >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {k!r}")
    return int(k)


def depth_value(D, name: str = "depth") -> int:
    return integer(D, name, 2)


def times(t, name: str = "t_eval") -> np.ndarray:
    """Output times of an integrator: 1-D, finite, >= 0, non-decreasing, ending after 0."""
    t = _numeric(t, name)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of times, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) < 0) or t[-1] <= 0:
        raise ValueError(f"{name} must be finite, >= 0, non-decreasing and end at a time > 0, got {t!r}")
    return t


def square(S, name: str) -> np.ndarray:
    S = as_matrix(S, name)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {S.shape}")
    return S


def symmetric(S, name: str, rtol: float = 1e-8) -> np.ndarray:
    """Square, finite, symmetric up to rtol * max|S| (rounding); returns the symmetric part."""
    S = square(S, name)
    asym = np.abs(S - S.T).max()
    if asym > rtol * np.abs(S).max():
        raise ValueError(f"{name} must be symmetric (max |S - S^T| = {asym:.3g} > {rtol:g} max|S|); pass (S + S^T)/2")
    return (S + S.T) / 2


def finite_result(x, what: str, fix: str) -> None:
    """Raise when a computed result left float64 (overflow, 0/0): the inputs are out of the representable range."""
    if not np.all(np.isfinite(np.asarray(x, dtype=np.float64))):
        raise ValueError(f"{what} is not finite in float64 (overflow or 0/0); {fix}")


def pow2_scale(a: float) -> float:
    """1 for magnitudes in [1e-3, 1e3], else the nearest power of 2: exact rescaling for solvers with absolute
    tolerances that leaves well-scaled problems bit-identical."""
    a = float(a)
    return 1.0 if a == 0 or 1e-3 <= a <= 1e3 else float(2.0 ** np.round(np.log2(a)))


def consistent(X: np.ndarray, y: np.ndarray, rtol: float = 1e-9) -> None:
    """Raise if X b = y has no solution: least-squares residual above ``rtol * (||y|| + ||X|| ||b_ls||)``."""
    b_ls, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = np.linalg.norm(X @ b_ls - y)
    scale = np.linalg.norm(y) + np.linalg.norm(X, 2) * np.linalg.norm(b_ls)
    if res > rtol * max(scale, np.finfo(float).tiny):
        raise ValueError(f"inconsistent system: no interpolator of X b = y exists (least-squares residual "
                         f"{res:.3g} > {rtol:g} x scale {scale:.3g}); y must lie in the range of X")
