"""Exact along-segment geometry of two-layer ReLU networks f(x) = A relu(W x + b) + c (Kubo et al. 2019, arXiv 1903.01997).

Definitions (segment x(t) = x0 + t (x1 - x0), t in [0, 1], L = ||x1 - x0||, u = (x1 - x0)/L, relu'(0) = 0):
- breakpoints: the t in (0, 1) where a unit's pre-activation w_j . x(t) + b_j changes sign;
- directional derivative: f'(t) = d f(x(t))/dt, constant between consecutive breakpoints;
- gradient gap: Delta = grad f(x1) - grad f(x0) (one row per output);
- gradient gap deviation: u . Delta, the change of the slope along the direction between the endpoints;
- gradient deflection: ||(I - u u^T) Delta||, the part of the gradient change across the direction;
- chord deviation: c(t) = f(x(t)) - (1 - t) f(x0) - t f(x1); straightness defect
  kappa = ||c||_{L2[0,1]} / ||f'||_{L2[0,1]} (norms over t and outputs), 0 iff f is straight on the segment,
  invariant to rescaling the outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

from theory.relu import segment_init

from .compile import compiled
from .validate import as_matrix, finite_result, integer, positive


@dataclass(frozen=True)
class TwoLayer:
    """f(x) = A relu(W x + b) + c with W (m, d), b (m,), A (k, m), c (k,)."""

    W: np.ndarray
    b: np.ndarray
    A: np.ndarray
    c: np.ndarray

    @property
    def width(self) -> int:
        return self.W.shape[0]


def two_layer(W, A, b=None, c=None) -> TwoLayer:
    """Validated network; ``A`` may be a vector (scalar output)."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] == 0:
        raise ValueError(f"W must be (m, d) with width m >= 1 (a zero-width network has no units), got shape {W.shape}")
    W = as_matrix(W, "W")
    m = W.shape[0]
    A = np.asarray(A, dtype=np.float64)
    A = A[None, :] if A.ndim == 1 else A
    if A.ndim != 2 or A.shape[1] != m or A.shape[0] == 0:
        raise ValueError(f"A must be (k, m) or (m,) with m = {m} output weights per output, got shape {A.shape}")
    b = np.zeros(m) if b is None else np.asarray(b, dtype=np.float64)
    c = np.zeros(A.shape[0]) if c is None else np.atleast_1d(np.asarray(c, dtype=np.float64))
    if b.shape != (m,) or c.shape != (A.shape[0],):
        raise ValueError(f"b must have shape ({m},) and c shape ({A.shape[0]},); got {b.shape}, {c.shape}")
    for name, arr in (("A", A), ("b", b), ("c", c)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return TwoLayer(W, b, A, c)


def _point(x, d: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (d,):
        raise ValueError(f"{name} must be a vector of length d = {d}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return x


def _segment(net: TwoLayer, x0, x1):
    d = _net(net).W.shape[1]
    x0, x1 = _point(x0, d, "x0"), _point(x1, d, "x1")
    if np.array_equal(x0, x1):
        raise ValueError("x0 and x1 are identical: a segment needs two distinct endpoints")
    return x0, x1


def _net(net) -> TwoLayer:
    if not isinstance(net, TwoLayer):
        raise ValueError(f"net must be a TwoLayer (build it with two_layer(W, A, b, c)), got {type(net).__name__}")
    return net


def forward(net: TwoLayer, X) -> np.ndarray:
    """f at the rows of X (or at the single point X of length d), shape (n, k)."""
    d = _net(net).W.shape[1]
    X = np.asarray(X, dtype=np.float64)
    X = as_matrix(X[None, :] if X.ndim == 1 else X, "X")
    if X.shape[1] != d:
        raise ValueError(f"X must have d = {d} columns (the input dimension of W), got shape {X.shape}")
    out = np.maximum(X @ net.W.T + net.b, 0.0) @ net.A.T + net.c
    finite_result(out, "f(X)", "rescale X or the weights")
    return out


def input_gradient(net: TwoLayer, x) -> np.ndarray:
    """grad f(x), shape (k, d), with relu'(0) = 0."""
    x = _point(x, net.W.shape[1], "x")
    mask = (net.W @ x + net.b) > 0
    return (net.A * mask) @ net.W


def breakpoints(net: TwoLayer, x0, x1) -> np.ndarray:
    """Sorted distinct t in (0, 1) where some unit's pre-activation changes sign along x0 -> x1."""
    x0, x1 = _segment(net, x0, x1)
    p0, p1 = net.W @ x0 + net.b, net.W @ x1 + net.b
    cross = np.sign(p0) * np.sign(p1) < 0
    return np.unique(p0[cross] / (p0[cross] - p1[cross]))


@dataclass(frozen=True)
class SegmentProfile:
    """f along a segment: knots 0 = t_0 < ... < t_K = 1, values f(x(t_i)) (K+1, k), slopes f' per piece (K, k)."""

    knots: np.ndarray
    values: np.ndarray
    slopes: np.ndarray
    length: float

    @property
    def n_kinks(self) -> int:
        return len(self.knots) - 2

    def __call__(self, t) -> np.ndarray:
        """The piecewise-linear interpolant of the knot values at t, shape (len(t), k)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return np.stack([np.interp(t, self.knots, v) for v in self.values.T], axis=1)

    def chord(self, t) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))[:, None]
        return (1 - t) * self.values[0] + t * self.values[-1]

    def chord_deviation(self, t) -> np.ndarray:
        return self(t) - self.chord(t)


def segment_profile(net: TwoLayer, x0, x1) -> SegmentProfile:
    """Exact piecewise-linear description of t -> f(x0 + t (x1 - x0))."""
    x0, x1 = _segment(net, x0, x1)
    if not np.isfinite(np.linalg.norm(x1 - x0)) or not np.all(np.isfinite(net.W @ (x1 - x0))):
        raise ValueError("the segment x1 - x0 (or W (x1 - x0)) overflows float64; rescale x0, x1 or W")
    knots = np.concatenate([[0.0], breakpoints(net, x0, x1), [1.0]])
    dx = x1 - x0
    values = forward(net, x0[None, :] + knots[:, None] * dx[None, :])
    mid = 0.5 * (knots[1:] + knots[:-1])
    p0, v = net.W @ x0 + net.b, net.W @ dx
    active = (p0[None, :] + mid[:, None] * v[None, :]) > 0
    slopes = (active * v[None, :]) @ net.A.T
    finite_result(slopes, "the slopes f' along the segment", "rescale x0, x1 or the weights")
    return SegmentProfile(knots, values, slopes, float(np.linalg.norm(dx)))


def segment_measures(net: TwoLayer, x0, x1) -> dict:
    """Kinks, gradient gap (deviation along u, deflection across u), chord deviation and kappa (module doc)."""
    x0, x1 = _segment(net, x0, x1)
    prof = segment_profile(net, x0, x1)
    u = (x1 - x0) / prof.length
    gap = input_gradient(net, x1) - input_gradient(net, x0)
    along = gap @ u
    deflection = np.linalg.norm(gap - along[:, None] * u[None, :], axis=1)
    h = np.diff(prof.knots)
    cv = prof.values - prof.chord(prof.knots)
    # exact integrals of piecewise-linear c^2 and piecewise-constant f'^2
    c_sq = float(np.sum(h[:, None] * (cv[:-1] ** 2 + cv[:-1] * cv[1:] + cv[1:] ** 2) / 3))
    fp_sq = float(np.sum(h[:, None] * prof.slopes**2))
    out = {"n_kinks": prof.n_kinks, "gap": gap, "gap_along": along, "deflection": deflection,
           "chord_max": float(np.max(np.abs(cv))), "chord_l2": np.sqrt(c_sq), "slope_l2": np.sqrt(fp_sq),
           "kappa": np.sqrt(c_sq) / np.sqrt(fp_sq) if fp_sq > 0 else 0.0, "profile": prof}
    for k in ("gap", "gap_along", "deflection", "chord_l2", "slope_l2", "kappa"):
        finite_result(out[k], f"segment measure {k!r}", "rescale x0, x1 or the weights (the segment length "
                      f"{prof.length:.3g} or the squared slopes leave float64)")
    return out


def _angle_args(theta, r0, r1):
    theta = np.asarray(theta, dtype=np.float64)
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0) or np.any(theta >= np.pi):
        raise ValueError(f"theta must lie in the open interval (0, pi), got {theta!r}; "
                         "theta = 0 or pi are limits of the closed forms, not segments through the plane")
    for name, r in (("r0", r0), ("r1", r1)):
        r = np.asarray(r, dtype=np.float64)
        if not np.all(np.isfinite(r)) or np.any(r <= 0):
            raise ValueError(f"{name} (an endpoint norm) must be finite and > 0, got {r!r}")
    return theta


_ARGS = ("theta", "t", "r0", "r1", "sa", "sw", "d")
_THETA_MP = 0.1   # below it the float64 closed forms cancel (~4 digits lost per decade of theta): mpmath instead


def _closed_form(key: str, vals: tuple) -> np.ndarray:
    """float64 evaluation; at theta < _THETA_MP, mpmath with 30 + 5 log10(1/theta) digits (theta = vals[0])."""
    with np.errstate(all="ignore"):
        out = np.array(np.broadcast_to(compiled(segment_init, key, _ARGS)(*vals), vals[0].shape), dtype=np.float64)
    f_mp = compiled(segment_init, key, _ARGS, "mpmath")
    for idx in np.ndindex(out.shape):
        if vals[0][idx] < _THETA_MP:
            with mpmath.workdps(30 + int(5 * np.log10(1.0 / vals[0][idx]))):
                out[idx] = float(f_mp(*(mpmath.mpf(float(v[idx])) for v in vals)))
    finite_result(out, f"closed form {key!r}", "rescale r0, r1, sa, sw")
    return out


def init_closed_forms(theta, r0=1.0, r1=1.0, sa=1.0, sw=1.0, d=2, t=0.5) -> dict:
    """Compiled closed forms of theory.relu.segment_init at random init (per unit / per network, width-free)."""
    theta = _angle_args(theta, r0, r1)
    d = integer(d, "d", 2)
    for name, v in (("sa", sa), ("sw", sw)):
        positive(v, f"{name} (a weight standard deviation)")
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t > 1):
        raise ValueError(f"t (the position along the segment) must lie in [0, 1], got {t!r}")
    try:
        vals = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (theta, t, r0, r1, sa, sw, d)))
    except ValueError:
        raise ValueError("theta, t, r0, r1, sa, sw must be scalars or arrays of broadcastable shapes") from None
    keys = ("kinks_per_unit", "gap_sq", "gap_along_var", "gap_across_sq", "gap_normal_var",
            "gap_var_out_of_plane", "chord_var")
    return {k: _closed_form(k, tuple(vals)) for k in keys}
