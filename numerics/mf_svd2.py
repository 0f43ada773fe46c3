"""2x2 end-to-end flow in SVD coordinates (phi, psi, ln sigma1, ln sigma2): sign of det W is structural.

W = R(phi) diag(e^l1, e^l2) R(psi)^T D with D = diag(1, sign det W0) fixed (Razin & Cohen 2020, Sec. 3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp

from theory.matrix import svd2

from .compile import compiled
from .mf_deep import _grad_at
from .result import Certified
from .validate import as_matrix, depth_value, times

_ARGS = ("l1", "l2", "h11", "h12", "h21", "h22")


def _rot(x):
    c, s = np.cos(x), np.sin(x)
    return np.array([[c, -s], [s, c]])


def to_svd2(W0):
    """(state (phi, psi, l1, l2), D) with W0 = R(phi) diag(e^l) R(psi)^T D; needs det W0 != 0, sigma1 != sigma2."""
    W0 = as_matrix(W0, "W0")
    if W0.shape != (2, 2):
        raise ValueError(f"W0 must be 2x2, got {W0.shape}")
    sign = np.linalg.slogdet(W0)[0]
    s = np.linalg.svd(W0, compute_uv=False)
    if sign == 0 or s[1] <= 4 * np.finfo(np.float64).eps * s[0]:
        raise ValueError(f"det W0 = 0 to rounding (singular values {s[0]:.3g}, {s[1]:.3g}): the sign of det is "
                         "undefined; pick an init with det W0 != 0")
    if s[0] - s[1] <= 1e-12 * s[0]:
        raise ValueError(f"W0 has equal singular values ({s[0]:.6g}, {s[1]:.6g}): the SVD angles phi, psi are "
                         "undefined there (a singular point of these coordinates); perturb W0")
    D = np.diag([1.0, sign])
    U, s, Vt = np.linalg.svd(W0 @ D)
    if np.linalg.det(U) < 0:  # W0 D has det > 0, so U and V share the sign; flip both to rotations
        U, Vt = U @ np.diag([1.0, -1.0]), np.diag([1.0, -1.0]) @ Vt
    phi, psi = np.arctan2(U[1, 0], U[0, 0]), np.arctan2(Vt[0, 1], Vt[0, 0])
    return np.array([phi, psi, np.log(s[0]), np.log(s[1])]), D


def from_svd2(state, D):
    phi, psi, l1, l2 = state
    return _rot(phi) @ np.diag([np.exp(l1), np.exp(l2)]) @ _rot(psi).T @ D


@dataclass
class Svd2Flow(Certified):
    """The 2x2 end-to-end flow in SVD coordinates: W(t), ln|det W|, the conserved sign of det (Razin & Cohen 2020)."""

    t: np.ndarray
    states: np.ndarray   # (T, 4): phi, psi, ln sigma1, ln sigma2
    W: np.ndarray        # (T, 2, 2)
    logabsdet: np.ndarray
    sign_det: float
    status: str                # "ok" | "failed: ..." (solve_ivp)

    OK = ("ok",)


def integrate_svd2(W0, grad: Callable[[np.ndarray], np.ndarray], N: int, t_eval, rtol: float = 1e-10,
                   atol: float = 1e-12) -> Svd2Flow:
    """Integrate the depth-N end-to-end ODE of a 2x2 W (balanced init) in SVD coordinates (Radau)."""
    N = depth_value(N, "N")
    y0, D = to_svd2(W0)
    t_eval = times(t_eval)
    if not callable(grad):
        raise ValueError("grad must be a callable W -> dL/dW")
    fs = [compiled(svd2, k, _ARGS, deriv_args=(N,)) for k in ("dphi", "dpsi", "dl1", "dl2")]

    def rhs(_, y):
        phi, psi, l1, l2 = y
        W = from_svd2(y, D)
        if not np.all(np.isfinite(W)):
            return np.full(4, np.nan)    # a trial state left float64: the integrator rejects the step
        h = _rot(phi).T @ _grad_at(grad, W) @ D @ _rot(psi)
        args = (l1, l2, h[0, 0], h[0, 1], h[1, 0], h[1, 1])
        return np.array([f(*args) for f in fs], dtype=np.float64)

    if not np.all(np.isfinite(rhs(0.0, y0))):
        raise ValueError(f"the SVD-coordinate ODE is not finite at W0 (singular values {np.exp(y0[2:])}): "
                         "W0 is out of the float64 range of these formulas; rescale W0")

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), y0, method="Radau", t_eval=t_eval, rtol=rtol, atol=atol)
    S = np.reshape(sol.y, (4, -1)).T
    W = np.array([from_svd2(s, D) for s in S]).reshape(-1, 2, 2)
    return Svd2Flow(t=sol.t, states=S, W=W, logabsdet=S[:, 2] + S[:, 3], sign_det=float(D[1, 1]),
                    status="ok" if sol.success else f"failed: {sol.message}")
