"""Top Hessian eigenvalue of trained DLNs by batched Lanczos on autograd Hessian-vector products (torch.func)."""
from __future__ import annotations

import torch
from torch.func import grad, jvp, vmap


def _b(kind, th):
    if kind == "uv":
        return th[0] * th[1]
    if kind == "shared":
        return th[0] ** 2
    return th[0] ** 2 - th[1] ** 2


def hvp_fn(kind: str, X: torch.Tensor, y: torch.Tensor):
    """Batched (R, k, d) x (R, k, d) -> Hessian-vector products of L = ||X b - y||^2 / (2n) by autograd."""
    def loss(th):
        r = X @ _b(kind, th) - y
        return 0.5 * (r**2).mean()

    def one(th, v):
        return jvp(grad(loss), (th,), (v,))[1]

    return vmap(one)


def lanczos_top(kind: str, params: torch.Tensor, X, y, iters: int | None = None, seed: int = 0) -> torch.Tensor:
    """lambda_max of each run's Hessian: Lanczos with full reorthogonalization, batched over runs (R,)."""
    params = params.detach()
    X = torch.as_tensor(X, dtype=params.dtype, device=params.device)
    y = torch.as_tensor(y, dtype=params.dtype, device=params.device)
    R, k, d = params.shape
    P = k * d
    m = P if iters is None else min(iters, P)
    hvp = hvp_fn(kind, X, y)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    V = torch.zeros(R, m, P, dtype=params.dtype, device=params.device)
    v = torch.randn(R, P, generator=gen, dtype=params.dtype).to(params.device)
    v = v / v.norm(dim=1, keepdim=True)
    alphas = torch.zeros(R, m, dtype=params.dtype, device=params.device)
    betas = torch.zeros(R, m, dtype=params.dtype, device=params.device)
    for j in range(m):
        V[:, j] = v
        w = hvp(params, v.reshape(R, k, d)).reshape(R, P)
        alphas[:, j] = (w * v).sum(1)
        for _ in range(2):   # full reorthogonalization, twice ("twice is enough")
            w = w - torch.einsum("rj,rjp->rp", torch.einsum("rjp,rp->rj", V[:, : j + 1], w), V[:, : j + 1])
        beta = w.norm(dim=1)
        if j + 1 < m:
            scale = torch.linalg.matrix_norm(torch.diag_embed(alphas[:, : j + 1]), ord=2).clamp_min(1.0)
            dead = beta <= 1e-13 * scale     # invariant subspace found: restart with a fresh orthogonal vector
            if dead.any():
                fresh = torch.randn(R, P, generator=gen, dtype=params.dtype).to(params.device)
                for _ in range(2):
                    fresh = fresh - torch.einsum("rj,rjp->rp", torch.einsum("rjp,rp->rj", V[:, : j + 1], fresh), V[:, : j + 1])
                w = torch.where(dead[:, None], fresh, w)
                beta = torch.where(dead, torch.zeros_like(beta), beta)
            betas[:, j] = beta
            v = w / w.norm(dim=1, keepdim=True)
    T = torch.diag_embed(alphas) + torch.diag_embed(betas[:, : m - 1], 1) + torch.diag_embed(betas[:, : m - 1], -1)
    return torch.linalg.eigvalsh(T)[:, -1]
