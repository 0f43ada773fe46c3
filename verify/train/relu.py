"""Two-layer ReLU networks f(x) = m^{-1/2} A relu(W x) (NTK scaling), batched over runs, and their trainers.

Width sweeps are one tensor program per step (hand-written batched gradient): runs (seeds x weight decays) batched as (R, ...) tensors,
one group per width, all groups summed into one loss (Neyshabur, Tomioka, Srebro 2014, arXiv 1412.6614).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from numerics.relu import TwoLayer, two_layer


def digits_split(rng: np.random.Generator, n_train: int):
    """sklearn's 8x8 digits (no download): pixels/16, centred by the training mean, rows scaled to unit norm."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    perm = rng.permutation(len(y))
    tr, te = perm[:n_train], perm[n_train:]
    X = X / 16.0
    X = X - X[tr].mean(axis=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    return X[tr], y[tr], X[te], y[te]


@dataclass
class SweepResult:
    """Per (run, width): runs = weight decays x seeds flattened (wd major)."""

    widths: list[int]
    train_err: np.ndarray      # (R, G)
    test_err: np.ndarray       # (R, G)
    path_norm: np.ndarray      # (R, G) l2 path norm sqrt(sum_{k,j,i} (A_kj W_ji)^2 / m)
    frob_prod: np.ndarray      # (R, G) ||W||_F ||A||_F / sqrt(m)
    diverged_step: np.ndarray  # (R, G) -1 if not diverged
    init: list[tuple[np.ndarray, np.ndarray]]
    final: list[tuple[np.ndarray, np.ndarray]]


def _errors(W, A, X, y, m):
    logits = torch.relu(X @ W.transpose(1, 2)) @ A / m**0.5
    return (logits.argmax(-1) != y).double().mean(-1)


def _grads(W, A, X, Yoh, m, lam):
    """Hand-written batched gradient of mean cross-entropy + lam/2 (|W|^2 + |A|^2); returns loss per run."""
    Z = X @ W.transpose(1, 2)
    H = torch.relu(Z)
    logits = H @ A / m**0.5
    lse = torch.logsumexp(logits, -1)
    ce = (lse - (logits * Yoh).sum(-1)).mean(-1)
    G = (torch.exp(logits - lse[..., None]) - Yoh) / X.shape[0]
    gA = H.transpose(1, 2) @ G / m**0.5
    gZ = (G @ A.transpose(1, 2) / m**0.5) * (Z > 0)
    gW = gZ.transpose(1, 2) @ X
    lam = lam[:, None, None]
    reg = 0.5 * lam[:, 0, 0] * (W.pow(2).sum((1, 2)) + A.pow(2).sum((1, 2)))
    return ce + reg, gW + lam * W, gA + lam * A


def train_sweep(X, y, Xte, yte, widths, n_seeds: int, wds, epochs: int, lr: float, batch: int, seed: int,
                device, dtype=torch.float64, k: int = 10) -> SweepResult:
    """Minibatch SGD (same batches for every run) on CE + wd/2 (|W|^2 + |A|^2) for all (wd, seed, width) at once."""
    gen = torch.Generator().manual_seed(seed)
    X, Xte = (torch.as_tensor(a, dtype=dtype, device=device) for a in (X, Xte))
    y, yte = (torch.as_tensor(a, dtype=torch.long, device=device) for a in (y, yte))
    n, d = X.shape
    R = len(wds) * n_seeds
    lam = torch.as_tensor(np.repeat(np.asarray(wds, dtype=float), n_seeds), dtype=dtype, device=device)
    params, init = [], []
    for m in widths:
        W = torch.randn(n_seeds, m, d, generator=gen, dtype=torch.float64).repeat(len(wds), 1, 1)
        A = torch.randn(n_seeds, m, k, generator=gen, dtype=torch.float64).repeat(len(wds), 1, 1)
        init.append((W.numpy().copy(), A.numpy().copy()))  # same init for each weight decay
        params.append([W.to(device, dtype), A.to(device, dtype)])
    diverged = torch.full((R, len(widths)), -1, dtype=torch.long)
    Yoh = torch.nn.functional.one_hot(y, k).to(dtype)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for s in range(0, n - batch + 1, batch):
            idx = order[s:s + batch]
            for g, (m, (W, A)) in enumerate(zip(widths, params)):
                loss, gW, gA = _grads(W, A, X[idx], Yoh[idx], m, lam)
                bad = ~torch.isfinite(loss)
                if bool(bad.any()):
                    newly = bad.cpu() & (diverged[:, g] < 0)
                    diverged[newly, g] = step
                    gW[bad], gA[bad] = 0.0, 0.0
                W.sub_(lr * gW)
                A.sub_(lr * gA)
            step += 1
    out = {"train_err": [], "test_err": [], "path_norm": [], "frob_prod": []}
    final = []
    for m, (W, A) in zip(widths, params):
        out["train_err"].append(_errors(W, A, X, y, m))
        out["test_err"].append(_errors(W, A, Xte, yte, m))
        out["path_norm"].append(torch.sqrt(torch.einsum("rji,rjk->r", W**2, A**2) / m))
        out["frob_prod"].append(W.pow(2).sum((1, 2)).sqrt() * A.pow(2).sum((1, 2)).sqrt() / m**0.5)
        final.append((W.double().cpu().numpy(), A.double().cpu().numpy()))
    arr = {key: torch.stack(v, 1).double().cpu().numpy() for key, v in out.items()}
    return SweepResult(list(widths), diverged_step=diverged.numpy(), init=init, final=final, **arr)


def as_two_layer(W: np.ndarray, A: np.ndarray) -> TwoLayer:
    """numerics' TwoLayer of one run: W (m, d), A (m, k) in NTK scaling."""
    return two_layer(W, A.T / np.sqrt(W.shape[0]))


def init_segment_samples(gen: torch.Generator, n_nets: int, m: int, x0: np.ndarray, x1: np.ndarray, ts,
                         sa: float, sw: float, device, chunk: int = 2000) -> dict[str, np.ndarray]:
    """Per sampled network f = m^{-1/2} sum a_j relu(w_j . x): kinks/m, |gap|^2, (u.gap)^2, |gap_perp|^2, c(t)^2."""
    x0t, x1t = (torch.as_tensor(v, dtype=torch.float64, device=device) for v in (x0, x1))
    dx = x1t - x0t
    u = dx / dx.norm()
    ts_t = torch.as_tensor(np.asarray(ts, dtype=float), dtype=torch.float64, device=device)
    pts = torch.cat([x0t[None], x1t[None], x0t[None] + ts_t[:, None] * dx[None]], 0)  # (2 + T, d)
    cols = {"kinks_per_unit": [], "gap_sq": [], "gap_along_sq": [], "gap_across_sq": [], "chord_sq": []}
    done = 0
    while done < n_nets:
        n = min(chunk, n_nets - done)
        W = sw * torch.randn(n, m, len(x0), generator=gen, dtype=torch.float64).to(device)
        a = sa * torch.randn(n, m, generator=gen, dtype=torch.float64).to(device)
        pre = W @ pts.T                                      # (n, m, 2 + T)
        f = (a[:, :, None] * torch.relu(pre)).sum(1) / m**0.5  # (n, 2 + T)
        s0, s1 = (pre[:, :, 0] > 0).double(), (pre[:, :, 1] > 0).double()
        gap = ((a * (s1 - s0))[:, :, None] * W).sum(1) / m**0.5  # (n, d)
        along = gap @ u
        c = f[:, 2:] - (1 - ts_t) * f[:, :1] - ts_t * f[:, 1:2]
        cols["kinks_per_unit"].append((s0 != s1).double().mean(1))
        cols["gap_sq"].append((gap**2).sum(1))
        cols["gap_along_sq"].append(along**2)
        cols["gap_across_sq"].append((gap**2).sum(1) - along**2)
        cols["chord_sq"].append(c**2)
        done += n
    return {k: torch.cat(v, 0).cpu().numpy() for k, v in cols.items()}
