"""Fused CPU trainer for DLN GD/SGD (`pm`, `uv`): one run at a time, all steps with its X in cache, numba-compiled.

Same loop as verify.train.dln.train_gd (checks every ``check_every`` steps, divergence and convergence freezes) and the
exact-GD statistics of numerics.dln_gd.GDStats (Even et al. 2023, arXiv 2302.08982, Thm 1) accumulated per step.

The statistics: ``q_split`` splits theory.dln_gd's q+-(x) into poly+-(x) + c ln|A+-(x)| (-+2x - 2 ln|x -+ 1|). Each
coordinate sums the poly parts over a block of up to ``BLOCK`` = K steps and multiplies the factors a_l = |A(x_l)|,
rounded as GDStats rounds them. It takes one log1p per block, not two logs per step. A step with some |x| above
``XMAX`` = 1/K, or some x not finite, adds q+-(x) per step as before, so the product stays in [(1 - 1/K)^K, e]
(> 0.35 at K = 16) and needs no exponent tracking.

Rounding (u = 2^-53, eps = 2u; per block, S = sum_l |x_l| <= 1):
- the product is carried as s = P - 1: d = a - 1 is exact (Sterbenz: a in [1/2, 2]), s <- s + (d + s d) rounds by
  <= u (|s d| + |d| |1 + s| + |s'|). With |s| <= e^S - 1 <= 1.72 S and |1 + s| <= e, the block accumulates
  <= u S (4.5 + 1.72 K), times <= e for the later factors. ln P then errs by that / P (P > 0.356) plus log1p's
  u |ln P|. With |c| = 2 and the poly sum's K u 2S, a block errs by <= ~(1.65 K + 5) eps of its rounding yardstick
  8 S (StepScale: the tests' unit). That is <= 32 eps (7e-15) at K = 16.
- summing K per-step logs errs by ~u |ln a_l| ~ u |x_l| each, ~1 eps of the same yardstick.
- a plain running product P <- P a_l has relative error <= K u: an absolute K u in ln P, however small the x_l.
  That exceeds the yardstick once |x_l| << u. Both GDStats and the per-step form keep fl(1 -+ x) and take its log
  exactly to ~u |ln a|. Hence the s = P - 1 form.
Measured: the block sums differ from the per-step sums by <= 0.9 eps of the yardstick on drawn problems, and by 9 eps
on a 20000-step run whose |x| stays below u on 91% of its steps. The parameters are unchanged, bit for bit: the same
IEEE operations in the same order.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from verify.train.dln import TrainResult
from .gd_inputs import ACTIVE, DEGENERATE, DIVERGED, gd_inputs, gd_result
from .step_sums import StepSums

DOT = {"reassoc", "contract"}   # lets LLVM vectorize the two matrix-vector products (order changes: rounding only)
BLOCK = 16                      # steps per block of the statistics' products (one log1p per block and coordinate)
XMAX = 1.0 / BLOCK              # steps with some |x| above this take the per-step logs


def q_split(name: str):
    """theory.dln_gd[name] = poly(x) + c ln|A(x)| with A linear, A(0) = +-1, |A'| <= 1 (so ||A(x)| - 1| <= |x| for
    |x| < 1): returns (poly, c, A, A(0)) as sympy expressions of x and floats; anything else raises."""
    import sympy as sp

    from theory import dln_gd as th

    d = th.gd()
    x, expr = d.symbols["x"], d[name]
    logs = [t for t in sp.Add.make_args(expr) if t.has(sp.log)]
    if len(logs) != 1:
        raise ValueError(f"theory.dln_gd[{name}] = {expr}: expected one log term")
    c, lg = logs[0].as_coeff_Mul()
    poly = expr - logs[0]
    A = lg.args[0].args[0] if lg.func == sp.log and lg.args[0].func == sp.Abs else None
    if A is None or not (c.is_Number and poly.is_polynomial(x) and A.is_polynomial(x)):
        raise ValueError(f"theory.dln_gd[{name}] = {expr}: expected poly(x) + c*log(Abs(A(x)))")
    pa = sp.Poly(A, x)
    if pa.degree() != 1 or abs(A.subs(x, 0)) != 1 or abs(pa.coeff_monomial(x)) > 1:
        raise ValueError(f"theory.dln_gd[{name}]: log argument {A} is not +-1 + k x with |k| <= 1")
    if sp.simplify(poly + c * sp.log(sp.Abs(A)) - expr) != 0:
        raise ValueError(f"theory.dln_gd[{name}]: split does not add up")
    return poly, float(c), A, float(A.subs(x, 0))


@lru_cache(maxsize=None)
def split_functions():
    """(poly+, c+, A+, A+(0), poly-, c-, A-, A-(0)): ``q_split`` of q_plus, q_minus, numba-compiled. |A(x)| is
    evaluated as A(0) A(x) (exact: a sign), the |A(x)| the generated q functions take the log of while |x| < 1."""
    import numba

    from numerics.compile import lambdify
    from theory import dln_gd as th

    x = th.gd().symbols["x"]
    out = []
    for name in ("q_plus", "q_minus"):
        poly, c, A, sign = q_split(name)
        out += [numba.njit(lambdify(poly, (x,), "numpy")), c, numba.njit(lambdify(A, (x,), "numpy")), sign]
    return tuple(out)


@lru_cache(maxsize=None)
def stats_functions():
    """(step, flush), numba-compiled. ``step(x, small, qp, qm, blk, nblk) -> (nblk, degenerate)`` adds one step's
    q+-(x) (x: (d,), ``small``: how many |x_j| <= XMAX) to the sums qp, qm (d,): into the block ``blk`` (4, d):
    poly+ sum, poly- sum, s+, s- (s = product of |A(x_l)| minus 1) when small == d, else per step.
    ``flush(qp, qm, blk)`` adds the block to the sums and clears it; call it after a run's last step."""
    import numba

    from .q_source import numba_functions

    q_plus, q_minus = numba_functions()
    poly_p, c_p, arg_p, sgn_p, poly_m, c_m, arg_m, sgn_m = split_functions()
    K = BLOCK

    @numba.njit(nogil=True)
    def flush(qp, qm, blk):
        for j in range(qp.shape[0]):
            qp[j] += blk[0, j] + c_p * math.log1p(blk[2, j])
            qm[j] += blk[1, j] + c_m * math.log1p(blk[3, j])
            blk[0, j], blk[1, j], blk[2, j], blk[3, j] = 0.0, 0.0, 0.0, 0.0

    @numba.njit(nogil=True, inline="always")
    def step(x, small, qp, qm, blk, nblk):
        d = x.shape[0]
        degenerate = False
        if small == d:
            bp, bm, sp_, sm = blk[0], blk[1], blk[2], blk[3]
            for j in range(d):
                xj = x[j]
                bp[j] += poly_p(xj)
                bm[j] += poly_m(xj)
                dp, dm = sgn_p * arg_p(xj) - 1.0, sgn_m * arg_m(xj) - 1.0   # exact (Sterbenz)
                s, t = sp_[j], sm[j]
                sp_[j], sm[j] = s + (dp + s * dp), t + (dm + t * dm)        # (1 + s)(1 + d) - 1
            nblk += 1
            if nblk == K:
                flush(qp, qm, blk)
                nblk = 0
        else:
            for j in range(d):
                qp[j] += q_plus(x[j])
                qm[j] += q_minus(x[j])
                degenerate |= abs(x[j]) == 1.0
        return nblk, degenerate

    return step, flush


def sums_of_steps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """sum_l q+(x_l), sum_l q-(x_l) (d,) and "some |x| == 1" for the steps x (L, d), as the kernel accumulates them."""
    step, flush = stats_functions()
    x = np.ascontiguousarray(x, dtype=np.float64)
    d = x.shape[1]
    qp, qm, blk = np.zeros(d), np.zeros(d), np.zeros((4, d))
    nblk, degenerate = 0, False
    for xl in x:
        nblk, deg = step(xl, int(np.sum(np.abs(xl) <= XMAX)), qp, qm, blk, nblk)
        degenerate |= deg
    flush(qp, qm, blk)
    return qp, qm, degenerate


@lru_cache(maxsize=None)
def kernel():
    """The compiled loop over runs (built on first use: numba compiles in a few seconds, not cached on disk so that
    a change of theory.dln_gd's q+- is never served stale)."""
    import numba

    stats_step, flush = stats_functions()
    njit = numba.njit(nogil=True)
    xmax = XMAX

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
        if n >= 4:   # the first block of rows sets g (0 + v = v: the same sums as from g = 0)
            for j in range(d):
                g[j] = w[0] * X[0, j] + w[1] * X[1, j] + w[2] * X[2, j] + w[3] * X[3, j]
        else:
            g[:] = 0.0
        i = 4 if n >= 4 else 0
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
        blk = np.zeros((4, d), P.dtype)    # the statistics' block (stats_functions)
        for q in range(R):
            Xq, yq = X[q if X.shape[0] > 1 else 0], y[q if y.shape[0] > 1 else 0]
            p, m = P[q, 0], P[q, 1]
            good[:] = P[q]
            e, xe = eta[q], xfac * eta[q]
            active, diverged, degenerate = True, False, False
            done[q] = steps
            nblk = 0
            for j in range(d):
                b[j] = p[j] * p[j] - m[j] * m[j] if pm else p[j] * m[j]
            for k in range(steps + 1):
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
                small, nbr = 0, nb[row]
                if pm:   # one pass: g, x, the update and the next step's b
                    for j in range(d):
                        gj = g[j] / nbr
                        x[j] = xe * gj
                        small += abs(x[j]) <= xmax
                        pj, mj = p[j] - e * ((2.0 * p[j]) * gj), m[j] - e * ((-2.0 * m[j]) * gj)
                        p[j], m[j], b[j] = pj, mj, pj * pj - mj * mj
                else:
                    for j in range(d):
                        gj = g[j] / nbr
                        x[j] = xe * gj
                        small += abs(x[j]) <= xmax
                        pj, mj = p[j] - e * (m[j] * gj), m[j] - e * (p[j] * gj)
                        p[j], m[j], b[j] = pj, mj, pj * mj
                if stats:
                    nblk, deg = stats_step(x, small, qp[q], qm[q], blk, nblk)
                    degenerate |= deg
            if nblk:
                flush(qp[q], qm[q], blk)
            flags[q] = (DIVERGED if diverged else 0) | (ACTIVE if active else 0) | (DEGENERATE if degenerate else 0)

    return run


def train_gd(kind: str, X, y, params0: torch.Tensor, eta, steps: int, depth: int = 2, tol: float = 1e-24,
             check_every: int = 50, batches: Callable[[int], object] | None = None,
             stats: bool = True) -> tuple[TrainResult, StepSums | None]:
    """verify.train.dln.train_gd (same arguments, depth 2, CPU tensors) fused into one compiled loop; returns its
    TrainResult and the per-run sums of q+-(x_l) that numerics.dln_gd.GDStats records (None with stats=False: one
    log1p per coordinate and block of BLOCK steps and the block's products, ~20% of the loop's time at n = 40,
    d = 100)."""
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
