"""Dual Newton for many DLN limit problems at once (shared n, d) and warm-started sweeps in alpha.

Same dual as numerics.newton (Woodworth et al. 2020 Thm 1): b = c sinh(X^T nu), nu minimizes
sum c cosh(X^T nu) - y^T nu; here P problems advance together ((P, n, n) Newton systems), each frozen once
its relative residual is below tol. Along a decreasing alpha sweep each solve starts from the previous
dual points extrapolated linearly in log c (the continuation of numerics.dln.sinh_limit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .newton import SinhFamily
from .result import Certified
from .validate import positive


@dataclass
class BatchPrediction(Certified):
    """P predicted interpolators b = c sinh(X^T nu) with their duals and per-problem certificates."""

    b: np.ndarray              # (P, d)
    nu: np.ndarray             # (P, n)
    residual: np.ndarray       # (P,) ||X b - y|| / ||y||
    iterations: np.ndarray     # (P,)
    status: list[str]          # "converged" | "max_iter" | "stalled"


def _check(X, y, log_c):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 3 or y.ndim != 2 or y.shape != X.shape[:2]:
        raise ValueError(f"X must be (P, n, d) and y (P, n); got X {X.shape}, y {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite")
    log_c = np.broadcast_to(np.asarray(log_c, dtype=np.float64), (X.shape[0], X.shape[2]))
    return X, y, log_c


def _mul(X, v):
    """X (P, n, d) times v (P, d) -> (P, n), as batched BLAS (einsum does not call BLAS here)."""
    return np.matmul(X, v[..., None])[..., 0]


def _rmul(u, X):
    """u (P, n) times X (P, n, d) -> (P, d), i.e. X^T u per problem."""
    return np.matmul(u[:, None, :], X)[:, 0, :]


RIDGE = 1e-14


def _directions(X, w, r):
    """Newton directions dnu = -(X diag(w) X^T + mu I)^-1 r for a stack of duals, and a mask of unusable ones.

    mu = RIDGE * max diag: at small alpha the off-support curvature w_i ~ alpha^(2(1 - |s_i|/L)) falls below the
    float64 resolution of the on-support one. The residual cannot see those directions (their b_i are below 1e-16
    of ||y||), so an unregularized solve moves nu along them by rounding noise / tiny curvature and the iterates drift
    until the link overflows. The ridge leaves them where the continuation put them; every direction the residual
    sees keeps Newton's step (relative change 1e-14).
    """
    bad = ~np.isfinite(w).all(axis=1) | ~np.isfinite(r).all(axis=1)
    w = np.where(bad[:, None], 1.0, w)
    Hm = np.matmul(X * w[:, None, :], X.transpose(0, 2, 1))
    n = Hm.shape[1]
    diag = np.einsum("pnn->pn", Hm)
    Hm[:, np.arange(n), np.arange(n)] += RIDGE * diag.max(axis=1, keepdims=True)
    bad |= ~np.isfinite(Hm).all(axis=(1, 2))
    Hm[bad] = np.eye(n)
    dnu = -np.linalg.solve(Hm, r[..., None])[..., 0]
    bad |= ~np.isfinite(dnu).all(axis=1)
    return np.where(bad[:, None], 0.0, dnu), bad


def batched_sinh_newton(X, y, log_c, nu0=None, tol: float = 1e-13, maxiter: int = 200,
                        trust: float = 4.0) -> BatchPrediction:
    """Damped Newton on P duals together: X (P, n, d), y (P, n), log c (P, d) or broadcastable."""
    X, y, log_c = _check(X, y, log_c)
    P, n, _ = X.shape
    nu = np.zeros((P, n)) if nu0 is None else np.array(nu0, dtype=np.float64).reshape(P, n)
    ynorm = np.maximum(np.linalg.norm(y, axis=1), 1e-300)
    its = np.zeros(P, dtype=int)
    status = np.array(["max_iter"] * P, dtype=object)
    active = np.ones(P, dtype=bool)
    res = np.full(P, np.inf)
    radius = np.full(P, float(trust))   # per problem, as numerics.newton.dual_newton: doubles while steps hit it
    for it in range(maxiter + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Xa, lc, nua = X[idx], log_c[idx], nu[idx]
        s = _rmul(nua, Xa)
        fam = SinhFamily(lc, 0.0)
        b, w = fam.link(s), fam.curvature(s)
        r = _mul(Xa, b) - y[idx]
        res[idx] = np.linalg.norm(r, axis=1) / ynorm[idx]
        done = res[idx] <= tol
        status[idx[done]] = "converged"
        if it == maxiter:
            break
        keep = ~done
        idx, Xa, lc, s, r, w, nua = idx[keep], Xa[keep], lc[keep], s[keep], r[keep], w[keep], nua[keep]
        active[:] = False
        active[idx] = True
        if idx.size == 0:
            break
        dnu, bad = _directions(Xa, w, r)
        if bad.any():   # non-finite dual Hessian (the link overflowed at this iterate): stop those problems
            status[idx[bad]] = "singular"
            active[idx[bad]] = False
            keep = ~bad
            idx, Xa, lc, s, r, nua, dnu = idx[keep], Xa[keep], lc[keep], s[keep], r[keep], nua[keep], dnu[keep]
            if idx.size == 0:
                break
        ds = _rmul(dnu, Xa)
        big = np.abs(ds).max(axis=1)
        step = np.where(big > 0, np.minimum(1.0, radius[idx] / np.where(big > 0, big, 1.0)), 1.0)
        slope = np.einsum("pn,pn->p", r, dnu)
        y_dnu = np.einsum("pn,pn->p", y[idx], dnu)
        ok = np.zeros(idx.size, dtype=bool)
        for _ in range(60):
            todo = ~ok
            if not todo.any():
                break
            st = step[todo]
            sub = SinhFamily(lc[todo], 0.0)
            inc = sub.increase(s[todo], st[:, None] * ds[todo], axis=-1) - st * y_dnu[todo]
            b_new = sub.link(s[todo] + st[:, None] * ds[todo])
            r_new = np.linalg.norm(_mul(Xa[todo], b_new) - y[idx[todo]], axis=1) / ynorm[idx[todo]]
            good = (np.isfinite(inc) & (inc <= 0.25 * st * slope[todo])) | (r_new < res[idx[todo]] * (1 - 1e-12))
            ok[np.flatnonzero(todo)[good]] = True
            step[np.flatnonzero(todo)[~good]] *= 0.5
        stalled = ~ok | (slope >= 0)
        status[idx[stalled]] = "stalled"
        active[idx[stalled]] = False
        mv = ~stalled
        hit = step * big >= 0.99 * radius[idx]
        radius[idx[mv & hit]] *= 2
        nu[idx[mv]] = nua[mv] + step[mv, None] * dnu[mv]
        its[idx[mv]] += 1
    b = SinhFamily(log_c, 0.0).link(_rmul(nu, X))
    res = np.linalg.norm(_mul(X, b) - y, axis=1) / ynorm
    return BatchPrediction(b=b, nu=nu, residual=res, iterations=its, status=list(status))


def sweep_flow_limits(X, y, alphas, parametrization: str = "pm", tol: float = 1e-13,
                      stage: float = 3.0) -> list[BatchPrediction]:
    """GF limits argmin_{Xb=y} Q_alpha for every alpha and every problem: X (n, d) or (P, n, d).

    Returns one BatchPrediction per alpha (in the order given). Alphas are solved from large to small, each
    warm-started from the previous dual points extrapolated in log c, with extra stages where log c jumps
    by more than ``stage`` (Newton from nu = 0 is reliable only for log c >= -2).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim == 2:
        X, y = X[None], y[None]
    alphas = np.atleast_1d(positive(np.asarray(alphas, dtype=np.float64), "alphas"))
    if parametrization not in ("pm", "uv"):
        raise ValueError(f"parametrization must be 'pm' or 'uv', got {parametrization!r}")
    # link pm: 2 alpha^2 sinh(s); uv: alpha^2 sinh(s)  (theory.dln.pm, uv_general)
    offset = np.log(2.0) if parametrization == "pm" else 0.0
    targets = offset + 2 * np.log(alphas)
    order = np.argsort(-targets)
    path = [max(-2.0, float(targets[order[0]]))]
    for lc in targets[order]:
        while path[-1] - lc > stage:
            path.append(path[-1] - stage)
        if lc < path[-1]:
            path.append(float(lc))
    out: dict[float, BatchPrediction] = {}
    wanted = {float(t) for t in targets}
    hist: list[tuple[float, np.ndarray]] = []
    for lc in path:
        if len(hist) >= 2:
            (l1, n1), (l2, n2) = hist[-2], hist[-1]
            guess = n2 + (n2 - n1) * (lc - l2) / (l2 - l1)
        else:
            guess = hist[-1][1] if hist else None
        final = lc in wanted
        pred = batched_sinh_newton(X, y, lc, nu0=guess, tol=tol if final else 1e-10)
        hist.append((lc, pred.nu))   # path is strictly decreasing and holds every target exactly
        if final:
            out[lc] = pred
    return [out[float(t)] for t in targets]
