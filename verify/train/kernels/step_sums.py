"""Per-run sums of q+(x), q-(x) over GD steps (Even et al. 2023, Thm 1), as the fused trainers return them."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from numerics.dln_gd import GDStats


@dataclass
class StepSums:
    qp: torch.Tensor            # (R, d) sum_l q+(x_l)
    qm: torch.Tensor            # (R, d) sum_l q-(x_l)
    degenerate: torch.Tensor    # (R,) some |x_l| == 1 exactly

    def gdstats(self, kind: str, alpha) -> GDStats:
        """A numerics.dln_gd.GDStats holding these sums, for ``exact_limit`` (alpha: the standard init's scale)."""
        R, d = self.qp.shape
        st = GDStats(kind, alpha, R, d, dtype=self.qp.dtype, device=self.qp.device, block=1)
        st._sum_p += self.qp
        st._sum_m += self.qm
        st._degenerate |= self.degenerate.to(st._degenerate.device)
        return st


class StepScale:
    """Rounding yardstick of the step sums: |2x| + |2 ln|1 -+ x|| <= 8|x| + |q+-(x)| for every x, so two evaluations
    of sum_l q+-(x_l) (any log, any order) differ by a few eps times 8 sum|x_l| + |sum q| (q >= 0 wherever |x| ~ 1)."""

    def __init__(self, kind: str, eta):
        from numerics.dln_gd import step_factor

        self.xfac, self.eta, self.abs_x = step_factor(kind), eta, None

    def update(self, g: torch.Tensor, active: torch.Tensor) -> None:
        eta = torch.as_tensor(self.eta, dtype=g.dtype, device=g.device).reshape(-1, 1)
        x = torch.where(active[:, None], self.xfac * eta * g, torch.zeros_like(g)).abs()
        self.abs_x = x if self.abs_x is None else self.abs_x + x

    def relative(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """|a - ref| / (8 sum|x| + |ref|) per entry; 0 where both are equal (inf or nan alike), inf where one is nan."""
        scale = 8 * self.abs_x + ref.abs()
        same = (a == ref) | (torch.isnan(a) & torch.isnan(ref))
        return torch.where(same, torch.zeros_like(a), (a - ref).abs() / scale)
