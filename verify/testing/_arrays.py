"""Coercion of trained results from any framework (numpy, torch on any device, JAX, lists) to float64 numpy."""
from __future__ import annotations

import sys

import numpy as np


def _torch_to_numpy(x, name: str) -> tuple[np.ndarray, float]:
    """A torch tensor (any device, grad or not) as float64 numpy, with the epsilon of its own dtype."""
    torch = sys.modules["torch"]
    t = x.detach().cpu()
    if t.is_complex() or not t.is_floating_point():
        raise TypeError(f"{name} is a torch tensor of dtype {t.dtype}: pass the trained real floating-point values")
    return t.to(torch.float64).numpy(), float(torch.finfo(t.dtype).eps)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and "torch" in sys.modules


def to_numpy(x, name: str) -> tuple[np.ndarray, float]:
    """(float64 array, eps of the source dtype); TypeError for non-numeric, integer, boolean or complex input."""
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be an array (numpy, torch or JAX), got {type(x).__name__}")
    if _is_torch(x):
        return _torch_to_numpy(x, name)
    try:
        arr = np.asarray(x)          # numpy, JAX (via __array__), lists, scalars
    except Exception as exc:         # noqa: BLE001 - any framework's conversion error
        raise TypeError(f"{name} could not be converted to an array ({type(x).__name__}: {exc})") from None
    if arr.dtype == object or arr.dtype.kind not in "f":
        names = {"b": "boolean", "i": "integer", "u": "unsigned integer", "c": "complex"}
        kind = names.get(arr.dtype.kind, "non-numeric")
        raise TypeError(f"{name} has {kind} dtype {arr.dtype}: pass the trained real floating-point values "
                        "(float32 or float64)")
    return arr.astype(np.float64), float(np.finfo(arr.dtype).eps)


def _fits(shape: tuple, expected: tuple) -> bool:
    """Same rank; int entries equal, str entries (named sizes such as "R") any size >= 1."""
    return len(shape) == len(expected) and all(s == e if isinstance(e, int) else s >= 1
                                               for s, e in zip(shape, expected))


def checked(x, name: str, shape: tuple, what: str, rtol: float | None = None) -> np.ndarray:
    """x as float64 of ``shape`` (ints exact, strs any size >= 1), finite, precise enough for ``rtol``; errors name
    ``what`` (the problem)."""
    arr, eps = to_numpy(x, name)
    if not _fits(arr.shape, tuple(shape)):
        raise ValueError(f"{name} has shape {arr.shape} but {what} needs shape ({', '.join(map(str, shape))})")
    bad = np.flatnonzero(~np.isfinite(arr.ravel()))
    if bad.size:
        where = [tuple(int(i) for i in np.unravel_index(k, arr.shape)) for k in bad[:3]]
        raise ValueError(f"{name} has {bad.size} non-finite entries (NaN or inf), first at {where}: the trained run "
                         f"diverged or was not finished ({what})")
    if rtol is not None and rtol < 4 * eps:
        raise ValueError(f"rtol = {rtol:g} is below what {name}'s dtype can resolve (eps {eps:.2g}): train in float64 "
                         f"or raise rtol above {4 * eps:.2g} ({what})")
    return arr


def tolerance(value, name: str) -> float:
    """A finite tolerance >= 0 given as a Python or numpy number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value
