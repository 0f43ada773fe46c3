"""Diagonal linear networks batched over runs, with closed-form gradients, a GD/SGD trainer and a GF integrator.

Parameters of R networks are one tensor (R, 2, d): `pm` (w+, w-), `uv` (u, v), depth D (w+, w-).
Gradient flow integrates `pm`/depth in log coordinates l = ln w (w > 0 is preserved by GF), `uv` as is.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from numerics.result import Certified

from .flow import FlowResult, integrate

KINDS = ("pm", "uv")


def _check_kind(kind: str, depth: int) -> None:
    if kind not in KINDS:
        raise ValueError(f"parametrization must be one of {KINDS}, got {kind!r}")
    if int(depth) != depth or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    if kind == "uv" and depth != 2:
        raise ValueError("the 'uv' parametrization is depth 2 only")


def init_params(kind: str, alpha, d: int, depth: int = 2, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """Standard init (THEORY §0): `pm`/depth w+ = w- = alpha; `uv` u = sqrt2 alpha, v = 0. alpha: (R,)."""
    _check_kind(kind, depth)
    a = torch.as_tensor(alpha, dtype=dtype, device=device).reshape(-1, 1).expand(-1, d)
    if not torch.all(torch.isfinite(a)) or torch.any(a <= 0):
        raise ValueError(f"alpha must be finite and > 0, got {alpha!r}")
    if kind == "pm":
        return torch.stack([a, a], dim=1).clone()
    return torch.stack([np.sqrt(2.0) * a, torch.zeros_like(a)], dim=1)


def b_of(kind: str, params: torch.Tensor, depth: int = 2) -> torch.Tensor:
    """End-to-end linear predictor b (R, d)."""
    p, m = params[:, 0], params[:, 1]
    if kind == "uv":
        return p * m
    return p**depth - m**depth


def residual(X: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """X b - y per run: X (n, d) shared or (R, n, d); y (n,) or (R, n); returns (R, n)."""
    if X.dim() == 2:
        return b @ X.T - y
    return torch.einsum("rnd,rd->rn", X, b) - y


def residual_stop(X: torch.Tensor, y: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor]):
    """``stop(theta)`` for verify.train.flow.integrate: ||X b - y|| / ||y|| per run, b = predictor(theta)."""
    ynorm = torch.linalg.vector_norm(y, dim=-1).clamp_min(1e-300)
    return lambda theta: torch.linalg.vector_norm(residual(X, y, predictor(theta)), dim=-1) / ynorm


def grad_b(X: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """g = X^T (X b - y) / n, the loss gradient in b (R, d)."""
    r = residual(X, y, b)
    n = X.shape[-2]
    if X.dim() == 2:
        return r @ X / n
    return torch.einsum("rnd,rn->rd", X, r) / n


def _grad_b_batched(X: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """grad_b for per-run X (R, n, d) as row-vector bmm's: the layouts MKL serves fastest (3-5x over the einsum
    form on CPU, same arithmetic up to the summation order of X b; measured in python -m verify.bench)."""
    r = torch.bmm(b.unsqueeze(1), X.transpose(1, 2)).squeeze(1) - y
    return torch.bmm(r.unsqueeze(1), X).squeeze(1) / X.shape[-2]


def param_grad(kind: str, params: torch.Tensor, g: torch.Tensor, depth: int = 2) -> torch.Tensor:
    """dL/dparams by the chain rule, closed form (tests check it against autograd)."""
    p, m = params[:, 0], params[:, 1]
    if kind == "uv":
        return torch.stack([m * g, p * g], dim=1)
    return torch.stack([depth * p ** (depth - 1) * g, -depth * m ** (depth - 1) * g], dim=1)


def loss(X, y, b) -> torch.Tensor:
    return 0.5 * (residual(X, y, b) ** 2).mean(dim=-1)


@dataclass
class TrainResult(Certified):
    """R trained networks: final parameters (R, 2, d), end-to-end b (R, d), per-run status, steps, loss, residual."""

    params: torch.Tensor
    b: torch.Tensor
    status: list[str]                 # per run: "converged" | "diverged" | "max_steps"
    steps: np.ndarray                 # per run: steps taken (step of divergence for diverged runs)
    loss: np.ndarray
    extra: dict = field(default_factory=dict)
    residual: np.ndarray | None = None   # per run ||X b - y|| / ||y||


def train_gd(kind: str, X, y, params0: torch.Tensor, eta, steps: int, depth: int = 2, tol: float = 1e-24,
             check_every: int = 50, batches: Callable[[int], torch.Tensor] | None = None,
             on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> TrainResult:
    """Full-batch GD (or SGD with ``batches(k) -> row indices``) on R networks at once, eta per run.

    A run stops (is frozen) once its full loss is below ``tol``; a run whose loss turns non-finite or
    above 1e100 is reported ``diverged`` at that step, frozen at its last finite state; others go on.
    ``on_step(k, g, active)`` sees each step's b-gradient (R, d) before the update.
    """
    _check_kind(kind, depth)
    X = torch.as_tensor(X, dtype=params0.dtype, device=params0.device)
    y = torch.as_tensor(y, dtype=params0.dtype, device=params0.device)
    R = params0.shape[0]
    eta = torch.as_tensor(eta, dtype=params0.dtype, device=params0.device).reshape(-1)
    eta = eta.expand(R) if eta.numel() == 1 else eta
    if eta.numel() != R or torch.any(eta <= 0) or not torch.all(torch.isfinite(eta)):
        raise ValueError(f"eta must be finite, > 0 and scalar or one per run ({R}), got {eta.tolist()}")
    params = params0.clone()
    active = torch.ones(R, dtype=torch.bool, device=params.device)
    diverged = torch.zeros(R, dtype=torch.bool, device=params.device)
    done_at = torch.full((R,), steps, dtype=torch.long)
    last_good = params.clone()
    for k in range(steps):
        b = b_of(kind, params, depth)
        if batches is None:
            g = grad_b(X, y, b) if X.dim() == 2 else _grad_b_batched(X, y, b)
        else:
            idx = batches(k)
            Xb = X[..., idx, :] if X.dim() == 2 else X[:, idx, :]
            yb = y[..., idx]
            g = grad_b(Xb, yb, b)
        if on_step is not None:
            on_step(k, g, active)
        step = eta[:, None, None] * param_grad(kind, params, g, depth)
        params = params - step * active[:, None, None]
        if (k + 1) % check_every == 0 or k == steps - 1:
            L = loss(X, y, b_of(kind, params, depth))
            bad = ~torch.isfinite(L) | (L > 1e100) | ~torch.isfinite(params).all(dim=(1, 2))
            newly_bad = bad & active
            if newly_bad.any():
                params[newly_bad] = last_good[newly_bad]
                diverged |= newly_bad
                done_at[newly_bad.cpu()] = k + 1
            fin = (L <= tol) & active & ~bad
            done_at[fin.cpu()] = k + 1
            active &= ~(fin | bad)
            last_good = params.clone()
            if not active.any():
                break
    b = b_of(kind, params, depth)
    L = loss(X, y, b).detach().cpu().numpy()
    status = ["diverged" if dv else ("max_steps" if ac else "converged")
              for dv, ac in zip(diverged.tolist(), active.tolist())]
    return TrainResult(params, b, status, done_at.numpy(), L, residual=_relative_residual(X, y, b))


def _relative_residual(X, y, b) -> np.ndarray:
    """||X b - y|| / ||y|| per run as numpy."""
    with torch.no_grad():
        return residual_stop(X, y, lambda v: v)(b.to(X.device)).cpu().numpy()


def to_flow_coords(kind: str, params: torch.Tensor) -> torch.Tensor:
    """State for GF: log coordinates for `pm`/depth (R, 2d), raw (u, v) for `uv`."""
    flat = params.reshape(params.shape[0], -1)
    return flat if kind == "uv" else torch.log(flat)


def from_flow_coords(kind: str, theta: torch.Tensor, d: int) -> torch.Tensor:
    p = theta.reshape(theta.shape[0], 2, d)
    return p if kind == "uv" else torch.exp(p)


def flow_rhs(kind: str, X: torch.Tensor, y: torch.Tensor, depth: int = 2) -> Callable[[torch.Tensor], torch.Tensor]:
    """d(theta)/dt of gradient flow in the coordinates of :func:`to_flow_coords` (d ln w / dt = -(1/w) dL/dw)."""
    d = X.shape[-1]

    def rhs(theta):
        params = from_flow_coords(kind, theta, d)
        g = grad_b(X, y, b_of(kind, params, depth))
        pg = param_grad(kind, params, g, depth)
        out = pg if kind == "uv" else pg / params
        return -out.reshape(theta.shape)

    return rhs


def train_gf(kind: str, X, y, params0: torch.Tensor, t_eval, depth: int = 2, rtol: float = 1e-12,
             atol: float = 1e-14, method: str = "Radau", stop_residual: float | None = None,
             t_max: float | None = None, time_scale=None) -> FlowResult:
    """Gradient flow of R networks (one stacked ODE): a FlowResult with b (T, R, d) at the returned times t and the
    relative residual ||X b - y|| / ||y|| per run at the last one.

    ``stop_residual``: stop once every run has ||X b - y|| / ||y|| below it (the limit is reached).
    ``time_scale`` (R,): run r follows d theta/dt = scale_r rhs(theta): the same path and limit, reached at
    times t / scale_r (evens out runs whose natural time scales differ).
    """
    _check_kind(kind, depth)
    X = torch.as_tensor(X, dtype=params0.dtype, device=params0.device)
    y = torch.as_tensor(y, dtype=params0.dtype, device=params0.device)
    d = params0.shape[-1]
    rhs = flow_rhs(kind, X, y, depth)
    if time_scale is not None:
        sc = torch.as_tensor(time_scale, dtype=params0.dtype, device=params0.device)[:, None]
        rhs = (lambda f: lambda th: sc * f(th))(rhs)
    stop = None if stop_residual is None else residual_stop(
        X, y, lambda theta: b_of(kind, from_flow_coords(kind, theta, d), depth))
    res = integrate(rhs, to_flow_coords(kind, params0), t_eval, rtol=rtol, atol=atol, method=method,
                    stop=stop, stop_below=stop_residual or 0.0, t_max=t_max)
    states = torch.as_tensor(res.states, dtype=params0.dtype)
    T, R, _ = states.shape
    bs = b_of(kind, from_flow_coords(kind, states.reshape(T * R, -1), d), depth).reshape(T, R, d)
    return replace(res, b=bs, residual=_relative_residual(X, y, bs[-1]) if T else None)
