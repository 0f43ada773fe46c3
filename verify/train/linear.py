"""Deep linear networks with scalar output, batched over runs: f(x) = W_N ... W_1 x, layers (R, h_out, h_in).

End-to-end vector w = (W_N ... W_1)^T (R, d), named ``b`` in the results as by every predictor. Closed-form layer
gradients (one pass of prefix/suffix products):
dL/dW_j = (W_N ... W_{j+1})^T (W_{j-1} ... W_1 g)^T with g = X^T (X w - y)/n.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from numerics.result import Certified

from .dln import _relative_residual, grad_b, loss, residual_stop
from .flow import FlowResult, integrate


def end_to_end(Ws: list[torch.Tensor]) -> torch.Tensor:
    """w (R, d) of layers Ws[0] (R, h1, d), ..., Ws[-1] (R, 1, h)."""
    a = Ws[-1]
    for W in reversed(Ws[:-1]):
        a = a @ W
    return a[:, 0, :]


def layer_grads(Ws: list[torch.Tensor], g: torch.Tensor) -> list[torch.Tensor]:
    """dL/dW_j for every layer given g = dL/dw (R, d)."""
    return [lf[:, :, None] * rt[:, None, :] for lf, rt in layer_factors(Ws, g)]


def layer_factors(Ws: list[torch.Tensor], g: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """dL/dW_j = left_j right_j^T (rank one): left_j = (W_N..W_{j+1})^T, right_j = W_{j-1}..W_1 g."""
    N = len(Ws)
    right = [g]                                  # right[j] = W_{j-1} ... W_1 g  (R, h_{j-1})
    for W in Ws[:-1]:
        right.append(torch.einsum("rij,rj->ri", W, right[-1]))
    left = [None] * N                            # left[j] = W_N ... W_{j+1} (R, h_j)
    left[N - 1] = torch.ones(g.shape[0], 1, dtype=g.dtype, device=g.device)
    for j in range(N - 2, -1, -1):
        left[j] = torch.einsum("ri,rij->rj", left[j + 1], Ws[j + 1])
    return [(left[j], right[j]) for j in range(N)]


def shapes(d: int, width: int, depth: int) -> list[tuple[int, int]]:
    if depth == 1:
        return [(1, d)]
    return [(width, d)] + [(width, width)] * (depth - 2) + [(1, width)]


def gaussian_init(R: int, d: int, width: int, depth: int, seed: int, dtype=torch.float64, device="cpu"):
    """Standard Gaussian init: entries N(0, 1/fan_in) (LeCun), standard parametrization."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return [(torch.randn(R, o, i, generator=gen, dtype=dtype) / np.sqrt(i)).to(device) for o, i in shapes(d, width, depth)]


def balanced_init(w0: torch.Tensor, width: int, depth: int, seed: int) -> list[torch.Tensor]:
    """Balanced rank-one init with end-to-end w0 (R, d): W_1 = s a_2 w0^T/|w0|, W_j = s a_{j+1} a_j^T, W_N = s a_N^T, s = |w0|^(1/N).

    Balanced: W_{j+1}^T W_{j+1} = W_j W_j^T (= s^2 a_{j+1} a_{j+1}^T). Unit a_j are drawn from ``seed``.
    """
    R, d = w0.shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    nrm = torch.linalg.vector_norm(w0, dim=1, keepdim=True)
    sig = nrm ** (1.0 / depth)
    if depth == 1:
        return [w0[:, None, :].clone()]
    a = [w0 / nrm]
    for _ in range(depth - 1):
        v = torch.randn(R, width, generator=gen, dtype=w0.dtype).to(w0.device)
        a.append(v / torch.linalg.vector_norm(v, dim=1, keepdim=True))
    a.append(torch.ones(R, 1, dtype=w0.dtype, device=w0.device))
    return [sig[:, :, None] * a[j + 1][:, :, None] * a[j][:, None, :] for j in range(depth)]


def flatten(Ws):
    return torch.cat([W.reshape(W.shape[0], -1) for W in Ws], dim=1)


def unflatten(theta, shp):
    out, k = [], 0
    for o, i in shp:
        out.append(theta[:, k:k + o * i].reshape(theta.shape[0], o, i))
        k += o * i
    return out


def train_gf(X, y, Ws0: list[torch.Tensor], t_max: float, rtol: float = 1e-12, atol: float = 1e-14,
             method: str = "DOP853", stop_residual: float | None = 1e-13, t_eval=None) -> FlowResult:
    """Gradient flow of R deep linear nets (one stacked ODE, verify.train.flow.integrate): a FlowResult with the end-to-end
    b (T, R, d) at the returned times and the relative residual per run at the last one."""
    X = torch.as_tensor(X, dtype=Ws0[0].dtype, device=Ws0[0].device)
    y = torch.as_tensor(y, dtype=Ws0[0].dtype, device=Ws0[0].device)
    shp = [tuple(W.shape[1:]) for W in Ws0]

    def rhs(theta):
        Ws = unflatten(theta, shp)
        g = grad_b(X, y, end_to_end(Ws))
        return -flatten(layer_grads(Ws, g))

    stop = None if stop_residual is None else residual_stop(X, y, lambda theta: end_to_end(unflatten(theta, shp)))
    t_eval = np.array([t_max]) if t_eval is None else t_eval
    res: FlowResult = integrate(rhs, flatten(Ws0), t_eval, rtol=rtol, atol=atol, method=method, stop=stop,
                                stop_below=stop_residual or 0.0, t_max=t_max)
    states = torch.as_tensor(res.states, dtype=Ws0[0].dtype)
    ws = torch.stack([end_to_end(unflatten(s, shp)) for s in states]) if len(states) else states
    return replace(res, b=ws, residual=_relative_residual(X, y, ws[-1]) if len(states) else None)


@dataclass
class GDResult(Certified):
    """R trained deep linear nets: layers, end-to-end b (R, d), per-run status, steps, loss and residual."""

    Ws: list[torch.Tensor]
    b: torch.Tensor
    status: list[str]          # per run: "converged" | "diverged" | "max_steps"
    steps: np.ndarray
    loss: np.ndarray
    residual: np.ndarray       # per run ||X b - y|| / ||y||


def train_gd(X, y, Ws0: list[torch.Tensor], eta, steps: int, tol: float = 1e-28, check_every: int = 50) -> GDResult:
    """Full-batch GD of R deep linear nets; eta scalar or (R,). Runs stop below ``tol`` loss; non-finite -> diverged."""
    dt, dev = Ws0[0].dtype, Ws0[0].device
    X = torch.as_tensor(X, dtype=dt, device=dev)
    y = torch.as_tensor(y, dtype=dt, device=dev)
    R = Ws0[0].shape[0]
    eta = torch.as_tensor(eta, dtype=dt, device=dev).reshape(-1).expand(R)
    Ws = [W.clone() for W in Ws0]
    active = torch.ones(R, dtype=torch.bool, device=dev)
    diverged = torch.zeros(R, dtype=torch.bool, device=dev)
    done = np.full(R, steps)
    for k in range(steps):
        g = grad_b(X, y, end_to_end(Ws))
        scale = (eta * active)[:, None]
        for W, (lf, rt) in zip(Ws, layer_factors(Ws, g)):   # in place, rank-one: no (R, h, h) temporaries
            W.baddbmm_((-scale * lf)[:, :, None], rt[:, None, :])
        if (k + 1) % check_every == 0 or k == steps - 1:
            L = loss(X, y, end_to_end(Ws))
            bad = (~torch.isfinite(L) | (L > 1e100)) & active
            fin = (L <= tol) & active
            done[(bad | fin).cpu().numpy()] = k + 1
            diverged |= bad
            active &= ~(bad | fin)
            if not active.any():
                break
    w = end_to_end(Ws)
    status = ["diverged" if dv else ("max_steps" if ac else "converged")
              for dv, ac in zip(diverged.tolist(), active.tolist())]
    return GDResult(Ws, w, status, done, loss(X, y, w).cpu().numpy(), _relative_residual(X, y, w))


def ntk_end_to_end(Ws: list[torch.Tensor]) -> torch.Tensor:
    """K (R, d, d) with dw/dt = -K g under GF: K = sum_j |W_N..W_{j+1}|^2 (W_{j-1}..W_1)^T (W_{j-1}..W_1)."""
    R, _, d = Ws[0].shape
    eye = torch.eye(d, dtype=Ws[0].dtype, device=Ws[0].device).expand(R, d, d)
    K = torch.zeros(R, d, d, dtype=Ws[0].dtype, device=Ws[0].device)
    right = eye
    for j, W in enumerate(Ws):
        left = Ws[-1]
        for V in reversed(Ws[j + 1:-1]):
            left = left @ V
        lnorm = (left**2).sum(dim=(1, 2)) if j < len(Ws) - 1 else torch.ones(R, dtype=K.dtype, device=K.device)
        K = K + lnorm[:, None, None] * right.transpose(1, 2) @ right
        right = W @ right
    return K
