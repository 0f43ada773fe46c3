"""Fused CPU trainer for DLN GD/SGD (`pm`, `uv`): one run at a time, all steps with its X in cache, numba-compiled.

Same loop as verify.dln.train_gd (checks every ``check_every`` steps, divergence and convergence freezes) and the
exact-GD statistics of numerics.dln_gd.GDStats (Even et al. 2023, arXiv 2302.08982, Thm 1) accumulated per step.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from ..dln import TrainResult
from .gd_inputs import ACTIVE, DEGENERATE, DIVERGED, gd_inputs, gd_result
from .step_sums import StepSums

DOT = {"reassoc", "contract"}   # lets LLVM vectorize the two matrix-vector products (order changes: rounding only)


@lru_cache(maxsize=None)
def kernel():
    """The compiled loop over runs (built on first use: numba compiles in a few seconds, not cached on disk so that
    a change of theory.dln_gd's q+- is never served stale)."""
    import numba

    from .q_source import numba_functions

    q_plus, q_minus = numba_functions()
    njit = numba.njit(nogil=True)

    @numba.njit(fastmath=DOT, nogil=True)
    def residual(X, b, y, r):
        n, d = X.shape
        i = 0
        while i + 4 <= n:
            s0 = s1 = s2 = s3 = X.dtype.type(0)
            for j in range(d):
                s0 += X[i, j] * b[j]
                s1 += X[i + 1, j] * b[j]
                s2 += X[i + 2, j] * b[j]
                s3 += X[i + 3, j] * b[j]
            r[i], r[i + 1], r[i + 2], r[i + 3] = s0 - y[i], s1 - y[i + 1], s2 - y[i + 2], s3 - y[i + 3]
            i += 4
        for i in range(i, n):
            s = X.dtype.type(0)
            for j in range(d):
                s += X[i, j] * b[j]
            r[i] = s - y[i]

    @numba.njit(fastmath=DOT, nogil=True)
    def grad(X, w, g):
        n, d = X.shape
        g[:] = 0.0
        i = 0
        while i + 4 <= n:
            w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
            for j in range(d):
                g[j] += w0 * X[i, j] + w1 * X[i + 1, j] + w2 * X[i + 2, j] + w3 * X[i + 3, j]
            i += 4
        for i in range(i, n):
            for j in range(d):
                g[j] += w[i] * X[i, j]

    @njit
    def finite(v):
        return v - v == 0.0

    @njit
    def run(X, y, P, eta, counts, nb, steps, check_every, tol, xfac, pm, sgd, stats, qp, qm, done, flags):
        R, n, d = P.shape[0], X.shape[1], X.shape[2]
        b, g, x = np.empty(d, P.dtype), np.empty(d, P.dtype), np.empty(d, P.dtype)
        r, w = np.empty(n, P.dtype), np.empty(n, P.dtype)
        good = np.empty((2, d), P.dtype)
        for q in range(R):
            Xq, yq = X[q if X.shape[0] > 1 else 0], y[q if y.shape[0] > 1 else 0]
            p, m = P[q, 0], P[q, 1]
            good[:] = P[q]
            e, xe = eta[q], xfac * eta[q]
            active, diverged, degenerate = True, False, False
            done[q] = steps
            for k in range(steps + 1):
                if pm:
                    for j in range(d):
                        b[j] = p[j] * p[j] - m[j] * m[j]
                else:
                    for j in range(d):
                        b[j] = p[j] * m[j]
                residual(Xq, b, yq, r)
                if k > 0 and (k % check_every == 0 or k == steps):
                    s = 0.0
                    for i in range(n):
                        s += r[i] * r[i]
                    L = 0.5 * (s / n)
                    bad = not finite(L) or L > 1e100
                    for j in range(d):
                        bad = bad or not (finite(p[j]) and finite(m[j]))
                    if bad:
                        P[q] = good
                        diverged, active = True, False
                        done[q] = k
                    elif L <= tol:
                        active = False
                        done[q] = k
                    else:
                        good[:] = P[q]
                if k == steps or not active:
                    break
                row = k if sgd else 0
                for i in range(n):
                    w[i] = r[i] * counts[row, i]
                grad(Xq, w, g)
                for j in range(d):
                    g[j] = g[j] / nb[row]
                    x[j] = xe * g[j]
                if stats:
                    for j in range(d):
                        qp[q, j] += q_plus(x[j])
                        qm[q, j] += q_minus(x[j])
                        degenerate |= abs(x[j]) == 1.0
                if pm:
                    for j in range(d):
                        p[j], m[j] = p[j] - e * ((2.0 * p[j]) * g[j]), m[j] - e * ((-2.0 * m[j]) * g[j])
                else:
                    for j in range(d):
                        p[j], m[j] = p[j] - e * (m[j] * g[j]), m[j] - e * (p[j] * g[j])
            flags[q] = (DIVERGED if diverged else 0) | (ACTIVE if active else 0) | (DEGENERATE if degenerate else 0)

    return run


def train_gd(kind: str, X, y, params0: torch.Tensor, eta, steps: int, depth: int = 2, tol: float = 1e-24,
             check_every: int = 50, batches: Callable[[int], object] | None = None,
             stats: bool = True) -> tuple[TrainResult, StepSums | None]:
    """verify.dln.train_gd (same arguments, depth 2, CPU tensors) fused into one compiled loop; returns its
    TrainResult and the per-run sums of q+-(x_l) that numerics.dln_gd.GDStats records (None with stats=False: two
    logarithms per coordinate and step, most of the loop's time at n = 40, d = 100)."""
    inp = gd_inputs(kind, X, y, params0, eta, steps, depth, tol, check_every, batches)
    if inp.params.device.type != "cpu":
        raise ValueError(f"the numba trainer runs on CPU tensors, got {inp.params.device}")
    R, d = inp.R, inp.d
    np_ = lambda t: t.detach().numpy()  # noqa: E731
    P = np_(inp.params)
    qp, qm = np.zeros((R, d), P.dtype), np.zeros((R, d), P.dtype)
    done, flags = np.zeros(R, np.int64), np.zeros(R, np.int64)
    kernel()(np_(inp.X), np_(inp.y), P, np_(inp.eta), np_(inp.counts), np_(inp.nb), inp.steps, inp.check_every,
             P.dtype.type(inp.tol), P.dtype.type(inp.xfac), inp.kind == "pm", inp.sgd, bool(stats), qp, qm, done,
             flags)
    res, sums = gd_result(inp, inp.params, torch.from_numpy(done), torch.from_numpy(flags), torch.from_numpy(qp),
                          torch.from_numpy(qm))
    return res, sums if stats else None
