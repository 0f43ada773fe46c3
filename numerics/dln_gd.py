"""Exact limit of GD/SGD on a DLN from the run's accumulated statistics (Even et al. 2023, arXiv 2302.08982, Thm 1).

Per step and coordinate x = eta g (`uv`) or 2 eta g (`pm`); accumulate sum q+(x), sum q-(x) (O(d) per step, compiled
from theory.dln_gd). Then b_inf = c sinh(theta + X^T nu) with log c = ln(k alpha^2) - (Q+ + Q-)/2, theta = (Q- - Q+)/2
(k = 1 for `uv`, 2 for `pm`): the Bregman limit argmin_{Xb=y} D_phi_c(b, b~0), solved by dual Newton.
"""
from __future__ import annotations

import numpy as np
import torch

from theory import dln_gd as th

from .compile import compiled
from .dln import _checked, sinh_limit
from .newton import Prediction
from .validate import integer, positive

KINDS = ("pm", "uv")


def step_factor(kind: str) -> float:
    """k in x = k eta g (theory.dln_gd 'x_uv', 'x_pm')."""
    d = th.gd()
    return float(d[f"x_{kind}"] / (d.symbols["eta"] * d.symbols["g"]))


def c_scale(kind: str) -> float:
    """c = scale alpha_k^2 of the Bregman limit: 1 for `uv` (uv_general at c = alpha_k^2), theory.dln_gd 'pm_scale'."""
    return 1.0 if kind == "uv" else float(th.gd()["pm_scale"])


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"parametrization must be one of {KINDS}, got {kind!r}")


class GDStats:
    """Running sums of q+(x), q-(x) per run and coordinate; ``degenerate`` marks runs where some 1 -+ x = 0 exactly.

    Steps are buffered (up to 256 steps, ~1 MB: cache-resident) and summed once per block; reading a statistic
    first adds the pending steps.
    """

    def __init__(self, kind: str, alpha, R: int, d: int, dtype=torch.float64, device="cpu", block: int | None = None):
        _check_kind(kind)
        alpha = np.broadcast_to(positive(alpha, "alpha"), (R,)).astype(np.float64)
        self.kind, self.alpha = kind, alpha
        self._sum_p = torch.zeros(R, d, dtype=dtype, device=device)
        self._sum_m = torch.zeros(R, d, dtype=dtype, device=device)
        self._degenerate = torch.zeros(R, dtype=torch.bool, device=device)
        self._qp = compiled(th.gd, "q_plus", ("x",), "torch")
        self._qm = compiled(th.gd, "q_minus", ("x",), "torch")
        self._x_factor, self._c_scale = step_factor(kind), c_scale(kind)
        auto = max(1, min(256, (1 << 17) // max(1, R * d)))
        self._block = integer(block, "block", 1) if block is not None else auto
        self._buf = torch.empty((self._block, R, d), dtype=dtype, device=device)
        self._pending = 0

    def update(self, g: torch.Tensor, eta: torch.Tensor, active: torch.Tensor | None = None) -> None:
        """Add one step: g (R, d) b-gradient used by the step, eta (R,) or scalar, active (R,) runs that moved."""
        eta = torch.as_tensor(eta, dtype=g.dtype, device=g.device).reshape(-1, 1)
        x = self._x_factor * eta * g
        if active is not None:
            x = torch.where(active[:, None], x, torch.zeros_like(x))
        self._buf[self._pending] = x
        self._pending += 1
        if self._pending == self._block:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            x = self._buf[: self._pending]
            self._degenerate |= (torch.abs(x) == 1).any(dim=2).any(dim=0)
            self._sum_p += self._qp(x).sum(dim=0)
            self._sum_m += self._qm(x).sum(dim=0)
            self._pending = 0

    @property
    def qp(self) -> torch.Tensor:
        """sum_l q+(x_l) per run and coordinate (R, d)."""
        self._flush()
        return self._sum_p

    @property
    def qm(self) -> torch.Tensor:
        """sum_l q-(x_l) per run and coordinate (R, d)."""
        self._flush()
        return self._sum_m

    @property
    def degenerate(self) -> torch.Tensor:
        self._flush()
        return self._degenerate

    def callback(self, eta):
        """An ``on_step(k, g, active)`` for verify.train.dln.train_gd."""
        return lambda k, g, active: self.update(g, eta, active)

    def log_c(self) -> np.ndarray:
        """ln c per run and coordinate: c = alpha_k^2 (`uv`) or 2 alpha_k^2 (`pm`)."""
        base = np.log(self._c_scale * self.alpha**2)[:, None]
        return base - 0.5 * (self.qp + self.qm).detach().cpu().numpy()

    def alpha_sq(self) -> np.ndarray:
        """Effective alpha_k^2 per run and coordinate (THEORY §2)."""
        return np.exp(self.log_c() - np.log(self._c_scale))

    def theta(self) -> np.ndarray:
        return 0.5 * (self.qm - self.qp).detach().cpu().numpy()

    def b0_tilde(self) -> np.ndarray:
        """The offset b~0 = c sinh(theta) of the Bregman limit (in the network's own b units)."""
        return np.exp(self.log_c()) * np.sinh(self.theta())


def exact_limit(X, y, stats: GDStats, run: int, tol: float = 1e-13) -> Prediction:
    """argmin_{Xb=y} D_phi_c(b, b~0) for one recorded run (Even et al. 2023, Thm 1; theory.dln_gd 'Bregman' step)."""
    X, y = _checked(X, y)
    if bool(stats.degenerate[run]):
        raise ValueError(f"run {run}: a step had 1 - x = 0 or 1 + x = 0 exactly (x = eta g), so a factor u+-v "
                         "vanished and alpha_k = 0: the Bregman limit is undefined; change eta")
    log_c, theta = stats.log_c()[run], stats.theta()[run]
    if not (np.all(np.isfinite(log_c)) and np.all(np.isfinite(theta))):
        raise ValueError(f"run {run}: non-finite statistics (diverged run?); predict only converged runs")
    return sinh_limit(X, y, log_c, theta, tol=tol)
