"""Input validation for public predictors: a clear ValueError naming the argument and the fix."""
from __future__ import annotations

import numpy as np


def as_matrix(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n samples x d features), got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one sample and one feature")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf); clean the data first")
    return X


def as_vector(y, n: int | None = None, name: str = "y") -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"shape mismatch: {name} has {y.shape[0]} entries but X has {n} rows")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return y


def positive(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {x!r}")
    return arr


def depth_value(D) -> int:
    if int(D) != D or D < 2:
        raise ValueError(f"depth must be an integer >= 2, got {D!r}")
    return int(D)


def consistent(X: np.ndarray, y: np.ndarray, rtol: float = 1e-9) -> None:
    """Raise if X b = y has no solution: least-squares residual above ``rtol * (||y|| + ||X|| ||b_ls||)``."""
    b_ls, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = np.linalg.norm(X @ b_ls - y)
    scale = np.linalg.norm(y) + np.linalg.norm(X, 2) * np.linalg.norm(b_ls)
    if res > rtol * max(scale, np.finfo(float).tiny):
        raise ValueError(f"inconsistent system: no interpolator of X b = y exists (least-squares residual "
                         f"{res:.3g} > {rtol:g} x scale {scale:.3g}); y must lie in the range of X")
