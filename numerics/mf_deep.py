"""Deep factorization W = W_N...W_1: end-to-end ODE on W alone, singular values, balanced factors (Arora 2019).

dW/dt = -sum_j (W W^T)^((N-j)/N) G (W^T W)^((j-1)/N); d sigma_r/dt = -N sigma_r^(2-2/N) <G, u_r v_r^T>.
Fractional powers via eigendecompositions of W W^T and W^T W; DOP853 (adaptive, error-controlled).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp

from theory.matrix import deep

from .compile import compiled
from .result import Certified
from .validate import (as_matrix, depth_value, finite_result, finite_scalar, positive_scalar, pow2_scale, square,
                       symmetric, times)


def _psd_powers(S: np.ndarray, ps) -> list[np.ndarray]:
    """S^p for each p from one eigendecomposition (eigenvalues clipped at 0); p = 0 gives the identity."""
    ev, Q = np.linalg.eigh((S + S.T) / 2)
    ev = np.clip(ev, 0.0, None)
    return [np.eye(S.shape[0]) if p == 0 else (Q * ev**p) @ Q.T for p in ps]


def psd_power(S, p: float) -> np.ndarray:
    """S^p for symmetric PSD S via eigh (eigenvalues clipped at 0, rounding); p = 0 gives the identity."""
    S = symmetric(S, "S")
    p = finite_scalar(p, "p")
    ev = np.linalg.eigvalsh(S)
    scale = max(np.abs(ev).max(), 1e-300)
    if ev[0] < -1e-8 * scale:
        raise ValueError(f"S must be positive semidefinite (smallest eigenvalue {ev[0]:.3g}, largest |eigenvalue| "
                         f"{scale:.3g}); fractional powers of an indefinite S are not real")
    if p < 0 and ev[0] <= 1e-14 * scale:
        raise ValueError(f"S is singular (smallest eigenvalue {ev[0]:.3g}): a negative power p = {p} needs S > 0")
    out = _psd_powers(S, [p])[0]
    finite_result(out, "S^p", "rescale S")
    return out


def end_to_end_rhs(W: np.ndarray, G: np.ndarray, N: int) -> np.ndarray:
    """-sum_{j=1}^N (W W^T)^((N-j)/N) G (W^T W)^((j-1)/N) (Arora et al. 2019, Thm 1)."""
    N = depth_value(N)
    WWt, WtW = W @ W.T, W.T @ W
    left = _psd_powers(WWt, [k / N for k in range(N)])
    right = _psd_powers(WtW, [k / N for k in range(N)])
    return -sum(left[N - j] @ G @ right[j - 1] for j in range(1, N + 1))


def singular_value_rhs(W: np.ndarray, G: np.ndarray, N: int):
    """(sigma, d sigma/dt) with d sigma_r/dt = -N sigma_r^(2-2/N) <G, u_r v_r^T> (compiled from theory.deep)."""
    N = depth_value(N)
    U, sig, Vt = np.linalg.svd(W)
    h = np.einsum("ir,ij,rj->r", U, G, Vt)
    f = compiled(deep, "dsigma", ("sigma", "h"), deriv_args=(N,))
    return sig, f(sig, h)


def balanced_factors(W0, N: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Balanced W_1..W_N with product W0: W_j = V_{j+1} Sigma^(1/N) V_j^T (V_1 = right, V_{N+1} = left vectors)."""
    W0 = square(W0, "W0 (balanced_factors builds square factors)")
    N = depth_value(N, "N")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)) or None, "
                         f"got {type(rng).__name__}")
    U, sig, Vt = np.linalg.svd(W0)
    d = W0.shape[0]
    Vs = [Vt.T]
    for _ in range(N - 1):
        Vs.append(np.eye(d) if rng is None else np.linalg.qr(rng.standard_normal((d, d)))[0])
    Vs.append(U)
    root = np.diag(sig ** (1.0 / N))
    return [Vs[j + 1] @ root @ Vs[j].T for j in range(N)]


def balance_gap(factors) -> float:
    """max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F relative to max_j ||W_j||_F^2 (factors normalized: no overflow)."""
    c = pow2_scale(max(np.abs(F).max() for F in factors))
    factors = [F / c for F in factors]
    scale = max(np.linalg.norm(F) ** 2 for F in factors)
    gaps = [np.linalg.norm(factors[j + 1].T @ factors[j + 1] - factors[j] @ factors[j].T)
            for j in range(len(factors) - 1)]
    return float(max(gaps) / max(scale, 1e-300))


def require_balanced(factors, tol: float = 1e-10) -> np.ndarray:
    """Product of balanced factors; ValueError when the init is not balanced (the end-to-end ODE needs it)."""
    factors = [as_matrix(F, f"factors[{j}]") for j, F in enumerate(factors)]
    if len(factors) < 2:
        raise ValueError("pass at least two factors W_1..W_N (N >= 2)")
    for j in range(len(factors) - 1):
        if factors[j + 1].shape[1] != factors[j].shape[0]:
            raise ValueError(f"factors[{j + 1}] has shape {factors[j + 1].shape} but factors[{j}] has "
                             f"{factors[j].shape[0]} rows: the product W_N...W_1 needs matching inner sizes")
    tol = positive_scalar(tol, "tol")
    gap = balance_gap(factors)
    if gap > tol:
        raise ValueError(f"unbalanced init: max_j ||W_(j+1)^T W_(j+1) - W_j W_j^T|| / max ||W_j||^2 = {gap:.3g} > "
                         f"{tol:g}; the end-to-end ODE holds only for balanced factors (use balanced_factors)")
    W = factors[0]
    for F in factors[1:]:
        W = F @ W
    finite_result(W, "the product W_N...W_1", "rescale the factors")
    return W


def _grad_at(grad, W) -> np.ndarray:
    G = np.asarray(grad(W), dtype=np.float64)
    if G.shape != W.shape or not np.all(np.isfinite(G)):
        raise ValueError(f"grad(W) must return a finite array of W's shape {W.shape} at finite W; got shape "
                         f"{G.shape}{'' if np.all(np.isfinite(G)) else ' with non-finite entries'}")
    return G


@dataclass
class EndToEnd(Certified):
    """The end-to-end W(t) and its singular values integrated by their own ODE (Arora et al. 2019, Thm 1)."""

    t: np.ndarray
    W: np.ndarray        # (T, d, d)
    sigma: np.ndarray    # (T, d), integrated by the singular-value ODE
    status: str          # "ok" | "failed: ..." (solve_ivp)
    nfev: int
    residual: float      # max |svd(W) - sorted |sigma|| / max svd(W): the two integrated quantities agree

    OK = ("ok",)


def _sigma_residual(W: np.ndarray, sigma: np.ndarray) -> float:
    if W.shape[0] == 0:
        return float("inf")
    svd = np.linalg.svd(W, compute_uv=False)
    sig = np.sort(np.abs(sigma), axis=1)[:, ::-1]
    return float(np.abs(svd - sig).max() / max(svd.max(), 1e-300))


def integrate_end_to_end(factors, grad: Callable[[np.ndarray], np.ndarray], t_eval, rtol: float = 1e-12,
                         atol: float = 1e-14) -> EndToEnd:
    """Integrate the end-to-end ODE on W alone together with the singular-value ODE (DOP853)."""
    W0 = require_balanced(factors)
    N = len(factors)
    t_eval = times(t_eval)
    if not callable(grad):
        raise ValueError("grad must be a callable W -> dL/dW")
    shape, P = W0.shape, W0.size
    sig0 = np.linalg.svd(W0, compute_uv=False)

    def rhs(_, y):
        W = y[:P].reshape(shape)
        if not np.all(np.isfinite(W)):
            return np.full(y.shape, np.nan)    # a trial state left float64: the integrator rejects the step
        G = _grad_at(grad, W)
        _, ds = singular_value_rhs(W, G, N)
        return np.concatenate([end_to_end_rhs(W, G, N).ravel(), ds])

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), np.concatenate([W0.ravel(), sig0]), method="DOP853",
                    t_eval=t_eval, rtol=rtol, atol=atol)
    Y = np.reshape(sol.y, (P + sig0.size, -1)).T
    W, sigma = Y[:, :P].reshape(-1, *shape), Y[:, P:]
    return EndToEnd(t=sol.t, W=W, sigma=sigma, status="ok" if sol.success else f"failed: {sol.message}",
                    nfev=sol.nfev, residual=_sigma_residual(W, sigma))


def effective_rank(W) -> float:
    """Roy & Vetterli 2007: exp of the entropy of the normalized singular values (W != 0)."""
    W = as_matrix(W, "W")
    sig = np.linalg.svd(W / pow2_scale(np.abs(W).max()), compute_uv=False)
    if not sig.sum() > 0:
        raise ValueError("W = 0 has no effective rank (its singular values sum to 0); pass a nonzero W")
    p = sig / max(sig.sum(), 1e-300)
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))
