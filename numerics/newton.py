"""Damped Newton on the dual of argmin_{Xb=y} of a separable mirror potential (n x n systems, quadratic convergence).

KKT of min_{Xb=y} D_phi(b, b0): b = link(X^T nu). The dual min_nu sum_i Phi_i((X^T nu)_i) - y^T nu is smooth and
convex with Phi_i' = link_i, so Newton solves it with Hessian X diag(Phi'') X^T (Woodworth et al. 2020 Thm 1;
Azulay et al. 2021 Thm 4.1).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.linalg as sla

from .result import Certified


class DualFamily(Protocol):
    def link(self, s: np.ndarray) -> np.ndarray: ...
    def curvature(self, s: np.ndarray) -> np.ndarray: ...
    def increase(self, s: np.ndarray, ds: np.ndarray) -> float: ...
    def max_fraction(self, s: np.ndarray, ds: np.ndarray) -> float: ...


@dataclass
class Prediction(Certified):
    """A predicted interpolator with its certificate: b with its dual nu (b = link(X^T nu); b - b0 = X^T nu for the
    quadratic potentials; the LP dual for min-l1), feasibility residual, iterations and Newton history."""

    b: np.ndarray
    nu: np.ndarray
    residual: float            # ||X b - y|| / max(||y||, 1e-300)
    iterations: int
    status: str                # "converged" | "max_iter" | "stalled" | "singular" (Newton); "optimal" (LP); "exact"
    history: list[float] = field(default_factory=list)

    OK = ("converged", "optimal", "exact")


class SinhFamily:
    """Phi_i(s) = c_i cosh(theta_i + s), link = c_i sinh(theta_i + s); c_i held as log c_i (log domain)."""

    def __init__(self, log_c: np.ndarray, theta: np.ndarray):
        self.log_c, self.theta = log_c, theta

    def _exp2(self, s):
        z = self.theta + s
        return np.exp(self.log_c + z), np.exp(self.log_c - z)

    def link(self, s):
        z = self.theta + s
        small = np.abs(z) < 20
        with np.errstate(over="ignore"):
            direct = np.exp(self.log_c) * np.sinh(np.where(small, z, 0.0))
            a, m = self._exp2(np.where(small, 0.0, s))
        return np.where(small, direct, 0.5 * (a - m))

    def curvature(self, s):
        a, m = self._exp2(s)
        return 0.5 * (a + m)

    def increase(self, s, ds, axis=None):
        z = self.theta + s + 0.5 * ds
        half = 0.5 * ds
        # c [cosh(z0 + ds) - cosh(z0)] = 2 c sinh(z0 + ds/2) sinh(ds/2), evaluated without cancellation
        with np.errstate(over="ignore", invalid="ignore"):
            val = np.sign(z) * np.sign(half) * np.exp(self.log_c + np.log(2.0) + _log_abs_sinh(z) + _log_abs_sinh(half))
        out = np.sum(np.where(half == 0, 0.0, val), axis=axis)
        return float(out) if axis is None else out

    def max_fraction(self, s, ds):
        return 1.0


def _log_abs_sinh(x):
    ax = np.abs(x)
    with np.errstate(divide="ignore"):
        return np.where(ax > 20, ax - np.log(2.0), np.log(np.sinh(np.maximum(ax, 1e-300))))


class BoundedFamily:
    """Phi_i(s) = scale * H(s) on |s| < 1 with compiled H, h = H', dh = h' (depth-D networks)."""

    def __init__(self, scale: float, H, h, dh):
        self.scale, self.H, self.h, self.dh = scale, H, h, dh

    def link(self, s):
        return self.scale * self.h(s)

    def curvature(self, s):
        return self.scale * self.dh(s)

    def increase(self, s, ds):
        return float(self.scale * np.sum(self.H(s + ds) - self.H(s)))

    def max_fraction(self, s, ds):
        room = np.where(ds > 0, (1 - s) / np.where(ds > 0, ds, 1), np.where(ds < 0, (-1 - s) / np.where(ds < 0, ds, 1), np.inf))
        return float(min(1.0, 0.995 * np.min(room)))


def _newton_direction(X, w, r) -> np.ndarray | None:
    """Solve X diag(w) X^T dnu = -r; None when the dual Hessian is non-finite or no solver can factor it."""
    Hm = (X * w) @ X.T
    if not np.all(np.isfinite(Hm)):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)   # conditioning shows in the residual we report
            return sla.solve(Hm, -r, assume_a="pos", check_finite=True)
    except (sla.LinAlgError, ValueError):
        try:
            return np.linalg.lstsq(Hm, -r, rcond=None)[0]
        except np.linalg.LinAlgError:
            return None


def _line_search(X, y, family, s, ds, dnu, step, slope, res, ynorm) -> float:
    """Armijo on the dual objective; if rounding hides its decrease, fall back to the gradient norm."""
    y_dnu = float(y @ dnu)
    start = step
    for _ in range(60):
        inc = family.increase(s, step * ds) - step * y_dnu
        if np.isfinite(inc) and inc <= 0.25 * step * slope:
            return step
        step *= 0.5
    step = start
    for _ in range(60):
        with np.errstate(over="ignore", invalid="ignore"):
            res_new = np.linalg.norm(X @ family.link(s + step * ds) - y) / ynorm
        if res_new < min((1 - 0.25 * step) * res, res * (1 - 1e-12)):
            return step
        step *= 0.5
    return 0.0


def dual_newton(X: np.ndarray, y: np.ndarray, family: DualFamily, nu0: np.ndarray | None = None,
                tol: float = 1e-13, maxiter: int = 500, trust: float = 4.0) -> Prediction:
    """Minimize sum Phi((X^T nu)) - y^T nu by Newton with a trust region on X^T dnu and Armijo backtracking."""
    n = X.shape[0]
    nu = np.zeros(n) if nu0 is None else np.array(nu0, dtype=np.float64)
    ynorm = max(np.linalg.norm(y), 1e-300)
    history: list[float] = []
    status = "max_iter"
    radius = trust
    best, best_res = nu, np.inf
    for it in range(maxiter + 1):
        s = X.T @ nu
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            r = X @ family.link(s) - y
            res = np.linalg.norm(r) / ynorm
        if not np.isfinite(res):
            status = "singular"   # at the float64 floor: the link overflowed; the best finite iterate is returned
            break
        if res < best_res:
            best, best_res = nu, res
        history.append(float(res))
        if res <= tol:
            status = "converged"
            break
        if it == maxiter:
            break
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            dnu = _newton_direction(X, family.curvature(s), r)
        if dnu is None:
            status = "singular"
            break
        ds = X.T @ dnu
        big = np.max(np.abs(ds))
        step = min(1.0, radius / big) if big > 0 else 1.0
        step = min(step, family.max_fraction(s, ds))
        slope = float(r @ dnu)
        if slope >= 0:
            status = "stalled"
            break
        step = _line_search(X, y, family, s, ds, dnu, step, slope, res, ynorm)
        if step == 0.0:
            status = "stalled"
            break
        if res < 1e-8 and len(history) > 6 and min(history[-6:]) >= 0.5 * history[-7]:
            status = "stalled"  # at the float64 floor (e.g. |s| -> 1 for deep networks at tiny alpha)
            break
        radius = radius * 2 if step * big >= 0.99 * radius else max(trust, radius)
        nu = nu + step * dnu
    if not history:
        raise ValueError("nu0 gives a non-finite prediction (the link overflows there); start from nu0 = None")
    nu = best    # the smallest-residual iterate: past the rounding floor the residual only jitters
    s = X.T @ nu
    return Prediction(b=family.link(s), nu=nu, residual=best_res, iterations=len(history) - 1,
                      status=status, history=history)
