"""CP tensor completion, batched over runs (torch): problem instances, the loss gradient, GD and the GF right side.

Convention (THEORY.md §0): l(W) = sum_{I in Omega} (W_I - y_I)^2 / (2 |Omega|) (Razin et al. use the mean squared
error, twice this: their time is half ours). Factors F are (B, N, d, R): run, mode, entry, component.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from numerics.result import Certified
from numerics.tensor import full_tensor


@dataclass(frozen=True)
class Completion:
    """Order-N tensor completion: target T (unit Frobenius norm, CP rank ``rank``), observed indices and values."""

    T: np.ndarray          # (d,)*N
    idx: np.ndarray        # (n_obs, N) observed multi-indices
    y: np.ndarray          # (n_obs,) = T[idx]
    factors: np.ndarray    # (N, d, rank) generating factors of T (balanced, scaled so that sum_r W_r = T)

    @property
    def order(self) -> int:
        return self.T.ndim

    @property
    def dim(self) -> int:
        return self.T.shape[0]


def make_completion(rng: np.random.Generator, order: int, dim: int, rank: int, n_obs: int) -> Completion:
    """Target as in Razin et al. (their tensor_sensing_data_generator): Gaussian factors (d, rank) per mode, CP sum,
    normalized to unit Frobenius norm; n_obs distinct entries observed uniformly at random."""
    if order < 2 or dim < 1 or rank < 1:
        raise ValueError(f"need order >= 2, dim >= 1, rank >= 1; got {order}, {dim}, {rank}")
    if not 1 <= n_obs <= dim**order:
        raise ValueError(f"n_obs must be in [1, {dim ** order}] for a {dim}^{order} tensor, got {n_obs}")
    fac = rng.standard_normal((order, dim, rank))
    letters = "abcdefgh"[:order]
    T = np.einsum(",".join(f"{c}z" for c in letters) + "->" + letters, *fac)
    s = np.linalg.norm(T)
    fac = fac * s ** (-1.0 / order)
    T = T / s
    flat = rng.choice(dim**order, n_obs, replace=False)
    idx = np.array(np.unravel_index(flat, (dim,) * order)).T
    return Completion(T=T, idx=idx, y=T.reshape(-1)[flat], factors=fac)


DENSE_CROSSOVER = 16     # dense when d^N <= 16 N |Omega|: measured (verify.bench fig. 7, 2-core EPYC) dense 1.5x faster at
                         # d^N / (N |Omega|) = 20, gather 10x faster at 80; 16 stays on the measured dense side


def _khatri_rao(Fs: list[torch.Tensor]) -> torch.Tensor:
    """Column-wise Kronecker product of (B, d, R) factors, (B, d^k, R), first factor slowest."""
    out = Fs[0]
    for f in Fs[1:]:
        out = (out[:, :, None, :] * f[:, None, :, :]).reshape(out.shape[0], -1, out.shape[-1])
    return out


class CPLoss:
    """l and its factor gradient for a batch of CP factorizations on one completion problem (torch, any order).

    ``form``: "dense" unfolds W to a (d^h, d^(N-h)) matrix, h = N // 2, and takes the gradient by three GEMMs with
    Khatri-Rao products (3 d^N R multiply-adds per run); "gather" works on the observed entries only (index_select and
    index_add, ~4 N |Omega| R, memory-bound); "auto" picks dense when d^N <= DENSE_CROSSOVER N |Omega|."""

    def __init__(self, prob: Completion, device="cpu", dtype=torch.float64, form: str = "auto"):
        if form not in ("auto", "dense", "gather"):
            raise ValueError(f"form must be 'auto', 'dense' or 'gather', got {form!r}")
        self.N, self.d = prob.order, prob.dim
        self.idx = [torch.as_tensor(prob.idx[:, n], device=device) for n in range(self.N)]
        self.y = torch.as_tensor(prob.y, device=device, dtype=dtype)
        self.n_obs = len(prob.y)
        if form == "auto":
            form = "dense" if self.d**self.N <= DENSE_CROSSOVER * self.N * self.n_obs else "gather"
        self.form = form
        if form == "dense":
            self.h = self.N // 2
            shape = (self.d**self.h, self.d ** (self.N - self.h))
            self.flat = torch.as_tensor(np.ravel_multi_index(tuple(prob.idx.T), (self.d,) * self.N), device=device)
            mask = torch.zeros(self.d**self.N, device=device, dtype=dtype)
            mask[self.flat] = 1.0
            target = torch.zeros_like(mask)
            target[self.flat] = self.y
            self.mask, self.target = mask.reshape(shape), target.reshape(shape)

    def _gather(self, F):
        return [F[:, n].index_select(1, self.idx[n]) for n in range(self.N)]     # each (B, n_obs, R)

    def _unfold(self, F):
        """Left and right Khatri-Rao products (B, d^h, R), (B, d^(N-h), R) and W unfolded, (B, d^h, d^(N-h))."""
        KL = _khatri_rao([F[:, n] for n in range(self.h)])
        KR = _khatri_rao([F[:, n] for n in range(self.h, self.N)])
        return KL, KR, KL @ KR.transpose(1, 2)

    def residual(self, F) -> torch.Tensor:
        """W_I - y_I on Omega, (B, n_obs)."""
        if self.form == "dense":
            return self._unfold(F)[2].flatten(1).index_select(1, self.flat) - self.y
        G = self._gather(F)
        p = G[0]
        for g in G[1:]:
            p = p * g
        return p.sum(-1) - self.y

    def loss(self, F) -> torch.Tensor:
        return 0.5 * (self.residual(F) ** 2).mean(dim=1)

    def grad(self, F):
        """(dl/dF (B, N, d, R), loss (B,))."""
        return self._grad_dense(F) if self.form == "dense" else self._grad_gather(F)

    def _grad_dense(self, F):
        """E = P_Omega(W - T) / |Omega| unfolded; dl/dKL = E KR, dl/dKR = E^T KL, then one contraction per mode."""
        KL, KR, W = self._unfold(F)
        res = W * self.mask - self.target
        E = res / self.n_obs
        out = torch.empty_like(F)
        B, d, R = F.shape[0], self.d, F.shape[-1]
        for M, modes in ((E @ KR, range(self.h)), (E.transpose(1, 2) @ KL, range(self.h, self.N))):
            k = len(modes)
            if k == 1:
                out[:, modes[0]] = M
                continue
            Mv = M.reshape((B,) + (d,) * k + (R,))
            letters = "abcdefgh"[:k]
            for j, n in enumerate(modes):
                others = [m for i, m in enumerate(modes) if i != j]
                spec = f"Y{letters}z," + ",".join(f"Y{letters[i]}z" for i in range(k) if i != j) + f"->Y{letters[j]}z"
                out[:, n] = torch.einsum(spec, Mv, *[F[:, m] for m in others])
        return out, 0.5 * (res**2).flatten(1).sum(dim=1) / self.n_obs

    def _grad_gather(self, F):
        """Leave-one-out products by prefix/suffix products over the modes, on the observed entries."""
        G = self._gather(F)
        pre = [torch.ones_like(G[0])]
        for g in G[:-1]:
            pre.append(pre[-1] * g)
        full = pre[-1] * G[-1]
        r = full.sum(-1) - self.y                                   # (B, n_obs)
        w = (r / self.n_obs)[:, :, None]
        out = torch.zeros_like(F)
        suf = torch.ones_like(G[0])
        for n in range(self.N - 1, -1, -1):
            out[:, n].index_add_(1, self.idx[n], w * pre[n] * suf)
            suf = suf * G[n]
        return out, 0.5 * (r**2).mean(dim=1)

    def grad_tensor(self, F) -> np.ndarray:
        """Dense grad l(W) = P_Omega(W - T) / |Omega| per run, (B,) + (d,)*N (for gamma_r)."""
        r = self.residual(F).detach().cpu().numpy() / self.n_obs
        B = r.shape[0]
        out = np.zeros((B,) + (self.d,) * self.N)
        ix = tuple(i.cpu().numpy() for i in self.idx)
        for b in range(B):
            np.add.at(out[b], ix, r[b])
        return out


def cp_rhs(lossfn: CPLoss, R: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """GF right side on flattened factors (B, N*d*R): -dl/dF (for verify.train.flow.integrate)."""
    N, d = lossfn.N, lossfn.d

    def rhs(theta):
        F = theta.reshape(-1, N, d, R)
        return (-lossfn.grad(F)[0]).reshape(theta.shape)
    return rhs


@dataclass
class GDRun(Certified):
    """B runs of GD on CP factors: final factors F, recorded norms, losses and test errors, per-run status."""

    F: torch.Tensor            # final factors (B, N, d, R)
    steps: list[int]           # recorded steps
    norms: np.ndarray          # (S, B, R) component norms at the recorded steps
    loss: np.ndarray           # (S, B) training loss
    test: np.ndarray           # (S, B) ||W - T|| / ||T|| (full tensor)
    status: list[str]          # per run: "ok" | "converged at step k" | "diverged at step k"
    residual: np.ndarray       # (B,) ||W_Omega - y|| / ||y|| of the final factors
    optimizer: str = "plain GD"

    @property
    def converged(self) -> np.ndarray:
        """Per run: the loss fell below ``stop_loss``."""
        return np.array([st.startswith("converged") for st in self.status], dtype=bool)

    @property
    def W(self) -> np.ndarray:
        """The final tensors sum_r w_r^1 (x) ... (x) w_r^N, (B,) + (d,)*N."""
        return full_tensor(self.F.detach().cpu().numpy())


@dataclass(frozen=True)
class GroupRMSprop:
    """Razin et al.'s default optimizer (their code: common/train/optim.py, defaults lr 1e-2, alpha 0.99, eps 1e-6):
    one step size per run, lr / (sqrt(v_k / (1 - alpha^k)) + eps), v_k the running mean of the squared gradient norm
    of their loss, the mean squared error (= 2 l: its gradient is 2 dl/dF)."""

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-6

    def __post_init__(self):
        if not (self.lr > 0 and 0 <= self.alpha < 1 and self.eps >= 0):
            raise ValueError(f"GroupRMSprop needs lr > 0, 0 <= alpha < 1, eps >= 0; got {self}")

    def label(self) -> str:
        return f"GroupRMSprop (Razin et al.'s optimizer) lr={self.lr:g}, alpha={self.alpha:g}, eps={self.eps:g}"


def gd(lossfn: CPLoss, F0: torch.Tensor, eta: float, steps: int, record: int, T: np.ndarray,
       stop_loss: float = 0.0) -> GDRun:
    """Plain full-batch GD at step eta, batched over runs; a run whose loss falls below ``stop_loss`` is frozen
    (converged), one that leaves float64 is frozen at its last finite state (diverged). Records every ``record``
    steps."""
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return _descend(lossfn, F0, lambda g, ids, k: eta * g, steps, record, T, stop_loss, f"plain GD, eta={eta:g}")


def group_rmsprop(lossfn: CPLoss, F0: torch.Tensor, opt: GroupRMSprop, steps: int, record: int, T: np.ndarray,
                  stop_loss: float = 0.0) -> GDRun:
    """Razin et al.'s GroupRMSprop (labelled in the result), batched over runs, same freezing and records as ``gd``."""
    v = torch.zeros(F0.shape[0], dtype=F0.dtype, device=F0.device)

    def update(g, ids, k):
        g2 = 2.0 * g
        sq = g2.flatten(1).pow(2).sum(dim=1)
        vi = opt.alpha * (v if ids is None else v[ids]) + (1 - opt.alpha) * sq
        if ids is None:
            v.copy_(vi)
        else:
            v[ids] = vi
        scale = opt.lr / ((vi / (1 - opt.alpha ** (k + 1))).sqrt() + opt.eps)
        return scale.reshape((-1,) + (1,) * (g.dim() - 1)) * g2

    return _descend(lossfn, F0, update, steps, record, T, stop_loss, opt.label())


def _descend(lossfn: CPLoss, F0: torch.Tensor, update: Callable, steps: int, record: int, T: np.ndarray,
             stop_loss: float, label: str) -> GDRun:
    """F <- F - update(dl/dF, active run ids or None, k) for the active runs; freezing, records and status."""
    F = F0.clone()
    B = F.shape[0]
    active = torch.ones(B, dtype=torch.bool, device=F.device)
    status = ["ok"] * B
    Tt = torch.as_tensor(T, device=F.device, dtype=F.dtype)
    letters = "abcdefgh"[:lossfn.N]
    spec = ",".join(f"Y{c}z" for c in letters) + "->Y" + letters
    rec_steps, norms, losses, tests = [], [], [], []

    def snapshot(k, loss):
        W = torch.einsum(spec, *[F[:, n] for n in range(lossfn.N)])
        rec_steps.append(k)
        norms.append(F.norm(dim=2).prod(dim=1).cpu().numpy())
        losses.append(loss.cpu().numpy())
        tests.append(((W - Tt).flatten(1).norm(dim=1) / Tt.norm()).cpu().numpy())

    all_active = True
    for k in range(steps + 1):
        if all_active:
            ids = None
            g, loss_a = lossfn.grad(F)
        else:
            ids = torch.nonzero(active).flatten()
            if len(ids) == 0:
                break
            g, loss_a = lossfn.grad(F[ids])
        if record and k % record == 0:
            full = lossfn.loss(F) if ids is not None else loss_a
            snapshot(k, full)
        if k == steps:
            break
        Fn = (F if ids is None else F[ids]) - update(g, ids, k)
        bad = ~torch.isfinite(Fn.flatten(1)).all(dim=1)
        done = loss_a <= stop_loss
        if not (bad.any() or done.any()):
            if ids is None:
                F = Fn
            else:
                F[ids] = Fn
            continue
        rows = torch.arange(B, device=F.device) if ids is None else ids
        for j, b in enumerate(rows.tolist()):
            if bad[j]:
                status[b], active[b] = f"diverged at step {k}", False
            elif done[j]:
                status[b], active[b] = f"converged at step {k}", False
        keep = ~(bad | done)
        F[rows[keep]] = Fn[keep]
        all_active = False
    if record and rec_steps[-1] != k:
        snapshot(k, lossfn.loss(F))
    with torch.no_grad():
        resid = (lossfn.residual(F).norm(dim=1) / lossfn.y.norm().clamp_min(1e-300)).cpu().numpy()
    return GDRun(F=F, steps=rec_steps, norms=np.array(norms), loss=np.array(losses), test=np.array(tests),
                 status=status, residual=resid, optimizer=label)
