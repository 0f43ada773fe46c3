"""High-accuracy gradient-flow integration, batched over runs (scipy solve_ivp on the stacked state).

``rhs(theta)`` maps a batch of states (R, P) to their time derivatives (R, P) in torch; the integrator
stacks all runs into one ODE. For stiff flows (small init, slow modes) use ``method="Radau"``: the
Jacobian is block-diagonal, one (P, P) block per run from ``torch.func.jacrev``, passed as a sparse matrix.
The claims' tolerances rest on ``rtol``/``atol`` here: global error is measured by re-running at 10x rtol.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sps
import torch
from scipy.integrate import solve_ivp

from numerics.result import Certified


@dataclass
class FlowResult(Certified):
    """R runs of gradient flow: states at times t; trainers of networks add the end-to-end predictor b."""

    t: np.ndarray            # (T,) times returned
    states: np.ndarray       # (T, R, P)
    status: str              # "ok" | "event" (stopped by the residual event) | "failed: ..."
    nfev: int
    njev: int
    t_final: float
    residual: np.ndarray | None = None   # (R,) stop(theta) at the last state (network trainers: ||X b - y|| / ||y||)
    b: torch.Tensor | None = None        # (T, R, d) end-to-end predictor at each time (verify.train.dln, verify.train.linear)

    OK = ("ok", "event")      # the integration finished: at the last time or at the stop event


def _block_jacobian(rhs: Callable, R: int, P: int, dtype, device):
    # runs are independent: d rhs[r, i] / d theta[r', j] vanishes for r != r', so the Jacobian of the
    # run-summed rhs, (P, R, P), holds every diagonal block.
    jac_sum = torch.func.jacrev(lambda th: rhs(th).sum(0))
    rows = (np.arange(R)[:, None, None] * P + np.arange(P)[None, :, None]).repeat(P, axis=2).ravel()
    cols = (np.arange(R)[:, None, None] * P + np.arange(P)[None, None, :]).repeat(P, axis=1).ravel()

    def jac(t, y):
        th = torch.as_tensor(y, dtype=dtype, device=device).reshape(R, P)
        blocks = jac_sum(th).permute(1, 0, 2).detach().cpu().numpy()
        return sps.csc_matrix((blocks.ravel(), (rows, cols)), shape=(R * P, R * P))

    return jac


def integrate(rhs: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, t_eval,
              rtol: float = 1e-12, atol: float = 1e-14, method: str = "DOP853",
              stop: Callable[[torch.Tensor], torch.Tensor] | None = None, stop_below: float = 0.0,
              t_max: float | None = None) -> FlowResult:
    """Integrate d(theta)/dt = rhs(theta) for a batch (R, P) and return states at ``t_eval``.

    ``stop(theta) -> (R,)`` with ``stop_below`` ends the integration once every run's value is below it
    (e.g. the relative residual ||Xb - y|| / ||y||); the last state is then appended at the stop time.
    """
    theta0 = torch.as_tensor(theta0)
    R, P = theta0.shape
    dtype, device = theta0.dtype, theta0.device
    t_eval = np.asarray(t_eval, dtype=np.float64)
    t_end = float(t_max if t_max is not None else t_eval[-1])

    def f(t, y):
        th = torch.as_tensor(y, dtype=dtype, device=device).reshape(R, P)
        with torch.no_grad():
            return rhs(th).reshape(-1).cpu().numpy()

    kwargs = {}
    if method in ("Radau", "BDF"):
        kwargs["jac"] = _block_jacobian(rhs, R, P, dtype, device)
    events = None
    if stop is not None:
        def event(t, y):
            th = torch.as_tensor(y, dtype=dtype, device=device).reshape(R, P)
            with torch.no_grad():
                return float(stop(th).max()) - stop_below
        event.terminal = True
        event.direction = -1
        events = [event]
    sol = solve_ivp(f, (0.0, t_end), theta0.reshape(-1).cpu().numpy(), method=method, t_eval=t_eval[t_eval <= t_end],
                    rtol=rtol, atol=atol, events=events, **kwargs)
    ts = np.asarray(sol.t)
    ys = np.asarray(sol.y).T if len(ts) else np.zeros((0, R * P))
    status = "ok" if sol.success else f"failed: {sol.message}"
    if sol.status == 1 and sol.y_events and len(sol.y_events[0]):
        status = "event"
        ts = np.append(ts, sol.t_events[0][-1])
        ys = np.vstack([ys, sol.y_events[0][-1][None, :]])
    states = ys.reshape(len(ts), R, P)
    residual = None
    if stop is not None and len(ts):
        with torch.no_grad():
            residual = stop(torch.as_tensor(states[-1], dtype=dtype, device=device)).cpu().numpy()
    return FlowResult(t=ts, states=states, status=status, nfev=sol.nfev, njev=getattr(sol, "njev", 0),
                      t_final=float(ts[-1]) if len(ts) else 0.0, residual=residual)
