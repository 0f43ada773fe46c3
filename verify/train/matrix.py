"""Factorization networks and trainers, batched over runs: W = U U^T, deep W = W_N...W_1, weight-decayed U V^T."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from numerics.mf_nuclear import Regularized
from numerics.result import Certified


def sensing_grad(A: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """G(W) = sum_i (<A_i, W> - y_i) A_i / m for a batch W (R, d, d); A (m, d, d), y (m,)."""
    m = A.shape[0]

    def grad(W):
        r = torch.einsum("mij,rij->rm", A, W) - y
        return torch.einsum("rm,mij->rij", r, A) / m
    return grad


def completion_grad(mask: torch.Tensor, M: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """G(W) = P_Omega(W - M) / |Omega| (sensing with A_i = e_a e_b^T)."""
    n_obs = float(mask.sum())
    return lambda W: mask * (W - M) / n_obs


def symmetric_rhs(grad: Callable, d: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """GF of U for W = U U^T with symmetric sensing: dU/dt = -2 G(U U^T) U (theory.matrix.commuting)."""
    def rhs(theta):
        U = theta.reshape(-1, d, d)
        G = grad(U @ U.transpose(1, 2))
        return (-2.0 * G @ U).reshape(theta.shape)
    return rhs


def product(Ws: torch.Tensor) -> torch.Tensor:
    """W_N ... W_1 for factors (R, N, d, d)."""
    W = Ws[:, 0]
    for j in range(1, Ws.shape[1]):
        W = Ws[:, j] @ W
    return W


def deep_factor_grads(Ws: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """dL/dW_j = A_j^T G B_j^T, A_j = W_N...W_{j+1}, B_j = W_{j-1}...W_1, for (R, N, d, d) factors."""
    R, N, d, _ = Ws.shape
    eye = torch.eye(d, dtype=Ws.dtype, device=Ws.device).expand(R, d, d)
    B = [eye]
    for j in range(N - 1):
        B.append(Ws[:, j] @ B[-1])
    A = [eye] * N
    for j in range(N - 2, -1, -1):
        A[j] = A[j + 1] @ Ws[:, j + 1]
    return torch.stack([A[j].transpose(1, 2) @ G @ B[j].transpose(1, 2) for j in range(N)], dim=1)


def deep_rhs(grad: Callable, N: int, d: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """GF of the N factors: dW_j/dt = -A_j^T G(W) B_j^T."""
    def rhs(theta):
        Ws = theta.reshape(-1, N, d, d)
        return (-deep_factor_grads(Ws, grad(product(Ws)))).reshape(theta.shape)
    return rhs


@dataclass
class FactorRun(Certified):
    """R runs of GD on factors: final factors Ws (R, N, d, d), end-to-end W (R, d, d), per-run status, history."""

    Ws: torch.Tensor
    W: torch.Tensor
    status: list[str]          # per run: "ok" | "diverged at step k"
    history: list              # every ``record`` steps: end-to-end W (R, d, d), or the factors
    residual: np.ndarray       # per run ||G(W)|| / ||G(W(0))||: stationarity relative to the start

    OK = ("ok",)


def gd_deep(Ws0: torch.Tensor, grad: Callable, eta: float, steps: int, record: int = 0,
            record_factors: bool = False) -> FactorRun:
    """Full-batch GD on factors (R, N, d, d), one tensor program per step; per-run divergence detection (Arora et al.
    2019); history every ``record`` steps: end-to-end W, or the factors if ``record_factors``."""
    Ws = Ws0.clone()
    R = Ws.shape[0]
    diverged = torch.full((R,), -1, dtype=torch.long)
    hist = []
    for k in range(steps):
        if record and k % record == 0:
            hist.append(Ws.clone() if record_factors else product(Ws).clone())
        step = deep_factor_grads(Ws, grad(product(Ws)))
        Ws = Ws - eta * step
        bad = ~torch.isfinite(Ws.reshape(R, -1)).all(dim=1) & (diverged < 0)
        if bad.any():
            diverged[bad] = k
            Ws[bad] = 0.0
    status = ["ok" if int(s) < 0 else f"diverged at step {int(s)}" for s in diverged]
    W = product(Ws)
    g0, g = (torch.linalg.matrix_norm(grad(V)).cpu().numpy() for V in (product(Ws0), W))
    return FactorRun(Ws=Ws, W=W, status=status, history=hist, residual=g / np.maximum(g0, 1e-300))


def weight_decay_lbfgs(mask: np.ndarray, M: np.ndarray, lam: float, k: int, rng: np.random.Generator,
                       init_scale: float = 0.1, gtol: float = 1e-13, max_iter: int = 20000) -> Regularized:
    """Stationary point W = U V^T of (1/2)||P_Omega(U V^T - M)||^2 + (lam/2)(||U||^2 + ||V||^2), width k (L-BFGS;
    Srebro et al. 2005); residual = ||grad|| in (U, V)."""
    from scipy.optimize import minimize

    d1, d2 = M.shape
    Mm = mask * M

    def fg(x):
        U, V = x[:d1 * k].reshape(d1, k), x[d1 * k:].reshape(d2, k)
        Rr = mask * (U @ V.T) - Mm
        f = 0.5 * np.sum(Rr**2) + 0.5 * lam * (np.sum(U**2) + np.sum(V**2))
        return f, np.concatenate([(Rr @ V + lam * U).ravel(), (Rr.T @ U + lam * V).ravel()])

    x0 = init_scale * rng.standard_normal((d1 + d2) * k)
    res = minimize(fg, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxfun": 4 * max_iter, "gtol": gtol, "ftol": 1e-300, "maxcor": 30})
    U, V = res.x[:d1 * k].reshape(d1, k), res.x[d1 * k:].reshape(d2, k)
    f, g = res.fun, res.jac
    W = U @ V.T
    s = np.linalg.svd(W, compute_uv=False)
    return Regularized(W=W, objective=float(f), residual=float(np.linalg.norm(g)), iterations=res.nit,
                       rank=int(np.sum(s > 1e-8 * max(s[0], 1e-300))),
                       status="converged" if res.success else f"stopped: {res.message}")
