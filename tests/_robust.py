"""Shared checks of the bad-input suites: a ValueError with a message, or a result with no NaN or inf anywhere."""
import dataclasses

import numpy as np
from hypothesis import strategies as st

specials = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e300, -1e-300, 1.0])


@st.composite
def maybe_bad_problem(draw, max_n: int = 5, max_d: int = 8, with_kind: bool = False, ok_weight: int = 1):
    """(X, y[, kind]): Gaussian X at scale 10^(-6..6), sometimes with a NaN/inf, a shape error, a repeated row,
    no columns, or a row repeated up to 1e-8 (condition number ~1e8); "ok" drawn ok_weight times as often."""
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(st.integers(0, 10**6)))
    X = rng.standard_normal((n, d)) * 10.0 ** draw(st.integers(-6, 6))
    y = rng.standard_normal(n)
    kind = draw(st.sampled_from(["ok"] * ok_weight + ["nan_X", "nan_y", "shape", "rank", "empty", "ill"]))
    if kind == "nan_X":
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))] = draw(specials)
    elif kind == "nan_y":
        y[draw(st.integers(0, n - 1))] = draw(specials)
    elif kind == "shape":
        y = np.append(y, 1.0)
    elif kind == "rank" and n >= 2:
        X[-1] = X[0]
    elif kind == "empty":
        X = X[:, :0]
    elif kind == "ill" and n >= 2:
        X[-1] = X[0] + 1e-8 * rng.standard_normal(d)
    return (X, y, kind) if with_kind else (X, y)


def numeric_leaves(out) -> list[np.ndarray]:
    """Every float array or number inside out (arrays, numbers, tuples, lists, dicts, dataclasses)."""
    if isinstance(out, (np.ndarray, float, np.floating)):
        arr = np.asarray(out)
        return [arr] if arr.dtype.kind in "fc" else []
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in numeric_leaves(o)]
    if isinstance(out, dict):
        return [a for o in out.values() for a in numeric_leaves(o)]
    if dataclasses.is_dataclass(out):
        return [a for f in dataclasses.fields(out) for a in numeric_leaves(getattr(out, f.name))]
    return []


def finite_or_value_error(fn, *args, **kw):
    """fn(*args, **kw), or None when it raises a ValueError with a message; any other exception propagates."""
    try:
        out = fn(*args, **kw)
    except ValueError as exc:
        assert str(exc).strip(), "ValueError without a message"
        return None
    for a in numeric_leaves(out):
        assert np.all(np.isfinite(a)), f"non-finite entries in the output of {fn.__name__}"
    return out
