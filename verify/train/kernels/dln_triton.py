"""Fused Triton kernel for DLN GD/SGD (`pm`, `uv`): each program holds its runs' X on chip for all steps.

One program trains BLOCK_R runs (several where n d is small; then one warp, so every reduction stays in the warp):
r = X b - y, g = X^T (c r) / |B| (c: the step's row multiplicities, SGD), the exact-GD statistics q+-(x), x = k eta g
(numerics.dln_gd / theory.dln_gd; Even et al. 2023, arXiv 2302.08982, Thm 1), the update, and verify.train.dln.train_gd's
checks every ``check_every`` steps (loss <= tol freezes a run; non-finite or > 1e100 restores its last checked state
and reports it diverged). Shared X (n, d) uses tl.dot over the runs of a program. On CPU tensors it runs in Triton's
interpreter (TRITON_INTERPRET=1 set before triton is imported); see docs/gpu.md.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import triton
import triton.language as tl

from verify.train.dln import TrainResult
from .gd_inputs import ACTIVE, DEGENERATE, DIVERGED, gd_inputs, gd_result
from .q_source import triton_functions
from .step_sums import StepSums

q_plus, q_minus = triton_functions()
FLAG_DIVERGED, FLAG_ACTIVE, FLAG_DEGENERATE = tl.constexpr(DIVERGED), tl.constexpr(ACTIVE), tl.constexpr(DEGENERATE)
INTERPRET = triton.knobs.runtime.interpret
TILE = 1024           # elements of X per warp (32 per lane): packing target
MAX_TILE = 16384      # padded n x d of one run held by one program (128 KB float64: half an SM's registers)


@triton.jit
def _col(v, PACKED: tl.constexpr):
    """Per-run values against (runs, d) state: a column when runs are packed, the scalar itself otherwise."""
    if PACKED:
        return v[:, None]
    else:
        return v


@triton.jit
def _any(v, PACKED: tl.constexpr):
    if PACKED:
        return tl.max(v.to(tl.int32), axis=0) > 0
    else:
        return v


@triton.jit
def dln_gd_kernel(X, Y, P, ETA, CNT, NB, SCAL, QP, QM, DONE, FLAGS,
                  R, n, d, steps, check_every,
                  PM: tl.constexpr, SHARED_X: tl.constexpr, SHARED_Y: tl.constexpr, SGD: tl.constexpr,
                  STATS: tl.constexpr, USE_DOT: tl.constexpr, PACKED: tl.constexpr,
                  BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    ii = tl.arange(0, BLOCK_N)
    jj = tl.arange(0, BLOCK_D)
    im, jm = ii < n, jj < d
    if PACKED:
        rr = pid * BLOCK_R + tl.arange(0, BLOCK_R)
        rm = rr < R
        run = rr.to(tl.int64)
        md = rm[:, None] & jm[None, :]
        sp = run[:, None] * (2 * d) + jj[None, :]
        so = run[:, None] * d + jj[None, :]
        if SHARED_X:
            Xt = tl.load(X + ii[:, None] * d + jj[None, :], mask=im[:, None] & jm[None, :], other=0.0)
        else:
            Xt = tl.load(X + run[:, None, None] * (n * d) + ii[None, :, None] * d + jj[None, None, :],
                         mask=rm[:, None, None] & im[None, :, None] & jm[None, None, :], other=0.0)
        if SHARED_Y:
            yv = tl.load(Y + ii, mask=im, other=0.0)[None, :]
        else:
            yv = tl.load(Y + run[:, None] * n + ii[None, :], mask=rm[:, None] & im[None, :], other=0.0)
    else:
        rr = pid
        rm = pid < R
        run = rr.to(tl.int64)
        md = jm
        sp = run * (2 * d) + jj
        so = run * d + jj
        xrun = 0 if SHARED_X else run
        Xt = tl.load(X + xrun * (n * d) + ii[:, None] * d + jj[None, :], mask=im[:, None] & jm[None, :], other=0.0)
        yrun = 0 if SHARED_Y else run
        yv = tl.load(Y + yrun * n + ii, mask=im, other=0.0)
    p = tl.load(P + sp, mask=md, other=0.0)
    m = tl.load(P + sp + d, mask=md, other=0.0)
    eta = tl.load(ETA + rr, mask=rm, other=0.0)
    tol = tl.load(SCAL)
    xe = tl.load(SCAL + 1) * eta
    pg, mg = p, m
    qp = tl.zeros_like(p)
    qm = tl.zeros_like(p)
    active = rm
    diverged = rr < 0
    degenerate = rr < 0
    done = rr * 0 + steps
    k = 0
    live = _any(active, PACKED)
    while live:
        if PM:
            b = p * p - m * m
        else:
            b = p * m
        if PACKED:
            if SHARED_X:
                if USE_DOT:
                    r = tl.dot(b, tl.trans(Xt)) - yv
                else:
                    r = tl.sum(b[:, None, :] * Xt[None, :, :], axis=2) - yv
            else:
                r = tl.sum(Xt * b[:, None, :], axis=2) - yv
        else:
            r = tl.sum(Xt * b[None, :], axis=1) - yv
        chk = (k > 0) & ((k % check_every == 0) | (k == steps))
        L = 0.5 * (tl.sum(r * r, axis=-1) / n)
        nonfinite = tl.max(tl.where(md & ((p - p != 0) | (m - m != 0)), 1, 0), axis=-1) > 0
        bad = (L - L != 0) | (L > 1e100) | nonfinite
        newly_bad = bad & active & chk
        p = tl.where(_col(newly_bad, PACKED), pg, p)
        m = tl.where(_col(newly_bad, PACKED), mg, m)
        diverged = diverged | newly_bad
        fin = (L <= tol) & active & ~bad & chk
        done = tl.where(newly_bad | fin, k, done)
        active = active & ~((fin | bad) & chk)
        pg = tl.where(chk, p, pg)
        mg = tl.where(chk, m, mg)
        act = _col(active & (k < steps), PACKED)
        if SGD:
            row = tl.maximum(tl.minimum(k, steps - 1), 0)
            c = tl.load(CNT + row * n + ii, mask=im, other=0.0)
            w = r * c
            nb = tl.load(NB + row)
        else:
            w = r
            nb = n
        if PACKED:
            if SHARED_X:
                if USE_DOT:
                    g = tl.dot(w, Xt)
                else:
                    g = tl.sum(w[:, :, None] * Xt[None, :, :], axis=1)
            else:
                g = tl.sum(Xt * w[:, :, None], axis=1)
        else:
            g = tl.sum(Xt * w[:, None], axis=0)
        g = g / nb
        if STATS:
            x = tl.where(act & jm, _col(xe, PACKED) * g, 0.0)
            qp += q_plus(x)
            qm += q_minus(x)
            degenerate = degenerate | (tl.max(tl.where(tl.abs(x) == 1.0, 1, 0), axis=-1) > 0)
        e = _col(eta, PACKED)
        if PM:
            pn = p - e * ((2.0 * p) * g)
            mn = m - e * ((-2.0 * m) * g)
        else:
            pn = p - e * (m * g)
            mn = m - e * (p * g)
        p = tl.where(act, pn, p)
        m = tl.where(act, mn, m)
        k += 1
        live = (k <= steps) & _any(active, PACKED)
    tl.store(P + sp, p, mask=md)
    tl.store(P + sp + d, m, mask=md)
    tl.store(QP + so, qp, mask=md)
    tl.store(QM + so, qm, mask=md)
    tl.store(DONE + rr, done, mask=rm)
    flags = (tl.where(diverged, FLAG_DIVERGED, 0) + tl.where(active, FLAG_ACTIVE, 0)
             + tl.where(degenerate, FLAG_DEGENERATE, 0))
    tl.store(FLAGS + rr, flags, mask=rm)


def launch_config(R: int, n: int, d: int, shared_x: bool, block_r: int | None = None, num_warps: int | None = None,
                  cuda: bool = True) -> dict:
    """Per-run X: runs packed into one warp while their tiles fit TILE (every reduction in the warp), else one run
    per program on up to 8 warps. Shared X: BLOCK_R runs per program, tl.dot on the card (tiles padded to >= 16)."""
    BN, BD = triton.next_power_of_2(n), triton.next_power_of_2(d)
    if shared_x:
        if cuda:
            BN, BD = max(BN, 16), max(BD, 16)
        block_r = block_r or (16 if cuda else min(triton.next_power_of_2(R), 16))
        num_warps = num_warps or max(1, min(8, block_r * BD // 256))
        packed = True
    else:
        block_r = block_r or max(1, min(triton.next_power_of_2(R), TILE // (BN * BD)))
        packed = block_r > 1
        num_warps = num_warps or (1 if packed else max(1, min(8, BN * BD // TILE)))
    use_dot = shared_x and min(block_r, BN, BD) >= 16
    return dict(BLOCK_R=block_r, BLOCK_N=BN, BLOCK_D=BD, USE_DOT=use_dot, PACKED=packed, num_warps=num_warps)


def train_gd(kind: str, X, y, params0: torch.Tensor, eta, steps: int, depth: int = 2, tol: float = 1e-24,
             check_every: int = 50, batches: Callable[[int], object] | None = None, stats: bool = True,
             block_r: int | None = None, num_warps: int | None = None) -> tuple[TrainResult, StepSums | None]:
    """verify.train.dln.train_gd (same arguments, depth 2) as one kernel launch; returns its TrainResult and the per-run
    sums of q+-(x_l) that numerics.dln_gd.GDStats records (None with stats=False). CUDA tensors, or CPU tensors
    under TRITON_INTERPRET=1."""
    inp = gd_inputs(kind, X, y, params0, eta, steps, depth, tol, check_every, batches)
    dev = inp.params.device
    if dev.type == "cpu" and not INTERPRET:
        raise RuntimeError("CPU tensors need Triton's interpreter: set TRITON_INTERPRET=1 before importing triton")
    R, n, d = inp.R, inp.n, inp.d
    if dev.type == "cuda" and triton.next_power_of_2(n) * triton.next_power_of_2(d) > MAX_TILE:
        raise ValueError(f"n = {n}, d = {d}: X of one run does not fit on chip (padded > {MAX_TILE}); "
                         "use verify.train.dln.train_gd")
    P = inp.params
    qp, qm = torch.zeros(R, d, dtype=P.dtype, device=dev), torch.zeros(R, d, dtype=P.dtype, device=dev)
    done, flags = torch.zeros(R, dtype=torch.int32, device=dev), torch.zeros(R, dtype=torch.int32, device=dev)
    scal = torch.tensor([inp.tol, inp.xfac], dtype=P.dtype, device=dev)
    cfg = launch_config(R, n, d, inp.X.shape[0] == 1, block_r, num_warps, cuda=dev.type == "cuda")
    if R:
        with np.errstate(all="ignore"):  # the interpreter's numpy warns on the overflow of diverging runs
            dln_gd_kernel[(triton.cdiv(R, cfg["BLOCK_R"]),)](
                inp.X, inp.y, P, inp.eta, inp.counts, inp.nb, scal, qp, qm, done, flags, R, n, d, inp.steps,
                inp.check_every, PM=inp.kind == "pm", SHARED_X=inp.X.shape[0] == 1, SHARED_Y=inp.y.shape[0] == 1,
                SGD=inp.sgd, STATS=bool(stats), enable_fp_fusion=True, **cfg)
    res, sums = gd_result(inp, P, done, flags, qp, qm)
    return res, sums if stats else None
