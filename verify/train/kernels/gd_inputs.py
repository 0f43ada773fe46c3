"""Inputs of verify.train.dln.train_gd normalized for the fused trainers, and their outputs back into a TrainResult."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from numerics.dln_gd import step_factor

from verify.train.dln import TrainResult, _check_kind, _relative_residual, b_of, loss
from .step_sums import StepSums

DIVERGED, ACTIVE, DEGENERATE = 1, 2, 4   # bits of the per-run flags the kernels write


@dataclass
class GDInputs:
    kind: str
    X: torch.Tensor        # (R, n, d) per run, or (1, n, d) shared
    y: torch.Tensor        # (R, n) or (1, n)
    params: torch.Tensor   # (R, 2, d) copy of params0
    eta: torch.Tensor      # (R,)
    counts: torch.Tensor   # (steps, n) rows drawn per SGD step (with multiplicity), or (1, n) of ones for GD
    nb: torch.Tensor       # (steps,) batch sizes, or (1,) = n
    steps: int
    tol: float
    check_every: int
    xfac: float            # x = xfac eta g (numerics.dln_gd.step_factor)
    sgd: bool
    X_user: torch.Tensor   # X as given (for the final loss, computed as train_gd computes it)
    y_user: torch.Tensor

    @property
    def R(self) -> int:
        return self.params.shape[0]

    @property
    def n(self) -> int:
        return self.X.shape[1]

    @property
    def d(self) -> int:
        return self.X.shape[2]


def batch_counts(batches: Callable[[int], object], steps: int, n: int, dtype,
                 device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row multiplicities (steps, n) and sizes (steps,) of ``batches(k)``, called for k = 0 .. steps-1 in order."""
    counts = torch.zeros(steps, n, dtype=torch.int64)
    for k in range(steps):
        idx = torch.as_tensor(batches(k)).reshape(-1).cpu()
        if idx.dtype == torch.bool:
            idx = idx.nonzero().reshape(-1)
        if idx.numel() == 0:
            raise ValueError(f"batches({k}) is empty")
        idx = torch.where(idx < 0, idx + n, idx)
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"batches({k}) has a row index outside 0..{n - 1}")
        counts[k] = torch.bincount(idx, minlength=n)
    return counts.to(dtype=dtype, device=device), counts.sum(dim=1).to(dtype=dtype, device=device)


def gd_inputs(kind: str, X, y, params0: torch.Tensor, eta, steps: int, depth: int = 2, tol: float = 1e-24,
              check_every: int = 50, batches: Callable[[int], object] | None = None) -> GDInputs:
    """Checks as verify.train.dln.train_gd does (depth 2 only: the statistics are Even et al.'s depth-2 identity)."""
    _check_kind(kind, depth)
    if depth != 2:
        raise ValueError("the fused trainers are depth 2 only (`pm`, `uv`)")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if int(check_every) != check_every or check_every < 1:
        raise ValueError(f"check_every must be an integer >= 1, got {check_every!r}")
    dt, dev = params0.dtype, params0.device
    if params0.dim() != 3 or params0.shape[1] != 2:
        raise ValueError(f"params0 must have shape (R, 2, d), got {tuple(params0.shape)}")
    R, d = params0.shape[0], params0.shape[2]
    Xu = torch.as_tensor(X, dtype=dt, device=dev)
    yu = torch.as_tensor(y, dtype=dt, device=dev)
    if Xu.dim() not in (2, 3) or Xu.shape[-1] != d or (Xu.dim() == 3 and Xu.shape[0] != R):
        raise ValueError(f"X must be (n, {d}) or ({R}, n, {d}), got {tuple(Xu.shape)}")
    n = Xu.shape[-2]
    if yu.shape not in ((n,), (R, n)):
        raise ValueError(f"y must be ({n},) or ({R}, {n}), got {tuple(yu.shape)}")
    e = torch.as_tensor(eta, dtype=dt, device=dev).reshape(-1)
    e = e.expand(R) if e.numel() == 1 else e
    if e.numel() != R or torch.any(e <= 0) or not torch.all(torch.isfinite(e)):
        raise ValueError(f"eta must be finite, > 0 and scalar or one per run ({R}), got {e.tolist()}")
    if batches is None or steps == 0:
        counts, nb = torch.ones(1, n, dtype=dt, device=dev), torch.full((1,), float(n), dtype=dt, device=dev)
    else:
        counts, nb = batch_counts(batches, int(steps), n, dt, dev)
    return GDInputs(kind=kind, X=Xu.reshape(-1, n, d).contiguous(), y=yu.reshape(-1, n).contiguous(),
                    params=params0.detach().clone().contiguous(), eta=e.contiguous(), counts=counts.contiguous(),
                    nb=nb.contiguous(), steps=int(steps), tol=float(tol), check_every=int(check_every),
                    xfac=step_factor(kind), sgd=batches is not None, X_user=Xu, y_user=yu)


def gd_result(inp: GDInputs, params: torch.Tensor, done: torch.Tensor, flags: torch.Tensor, qp: torch.Tensor,
              qm: torch.Tensor) -> tuple[TrainResult, StepSums]:
    """TrainResult as train_gd builds it (final loss by the same torch code) and the step sums."""
    b = b_of(inp.kind, params)
    L = loss(inp.X_user, inp.y_user, b).detach().cpu().numpy()
    f = flags.cpu().numpy()
    status = ["diverged" if v & DIVERGED else ("max_steps" if v & ACTIVE else "converged") for v in f.tolist()]
    sums = StepSums(qp, qm, torch.as_tensor((f & DEGENERATE) != 0, device=qp.device))
    return (TrainResult(params, b, status, done.cpu().numpy().astype(np.int64), L,
                        residual=_relative_residual(inp.X_user, inp.y_user, b)), sums)
