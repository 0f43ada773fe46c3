"""Greedy low-rank learning (Li, Luo, Lyu 2021, arXiv 2012.09839) for symmetric sensing/completion, W = U U^T.

Convention (THEORY.md §0): f(W) = sum_i (<A_i, W> - y_i)^2 / (2m), G = grad f(W) = sum_i r_i A_i / m, GF on U is
dU/dt = -2 G U (theory.glrl). GLRL: W_0 = 0; at W_{r-1} take the top eigenpair (lambda, v) of -G(W_{r-1}); stop when
lambda <= tol * lambda_1(-G(0)); else run GF inside rank r from [U_{r-1}, eps v] (DOP853 until the gradient is small,
then Newton on U with the rotation null space handled by least squares) to W_r. The eps -> 0 limit is approached at
eps = 1e-10 (the offset from the unstable manifold is O(eps^2)); ``eps_check`` reruns each rank at eps * 1e-3 and
reports the difference as the iterate's eps error.

Derived rates (theory.glrl, compiled): e_0 = 2, e_{r+1} = e_r (1 - lambda_2/lambda_1) at W_r; GF from alpha I passes
W_r at distance ~ alpha^{kappa_r}, kappa_r = e_r mu_r / (mu_r + 4 lambda_1^(r)), mu_r the slowest contraction rate of
GF inside rank r (smallest Hessian eigenvalue of F(U) = f(U U^T) off the rotation directions U Omega); GF's limit is
~ alpha^{e_K} from W_K when G(W_K) = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

from theory.glrl import glrl as glrl_theory

from .compile import compiled
from .mf_commuting import sensing_stack
from .result import Certified
from .validate import as_vector, finite_result, integer, positive_scalar


def symmetric_sensing(As, y, name: str = "As"):
    """(A (m, d, d) float64, y (m,)) with every A_i symmetric; ValueError naming the problem otherwise."""
    A = sensing_stack(As, name)
    scale = np.abs(A).max()
    asym = np.abs(A - A.transpose(0, 2, 1)).max() / max(scale, 1e-300)
    if asym > 1e-12:
        raise ValueError(f"sensing matrices must be symmetric for the symmetric factorization W = U U^T (max |A_i - "
                         f"A_i^T| / max|A| = {asym:.2g}); pass (A_i + A_i^T)/2, which measures the same <A_i, W>")
    if not scale > 0:
        raise ValueError(f"{name} are all zero: no measurement constrains W")
    y = as_vector(y, A.shape[0], "y", name)
    return (A + A.transpose(0, 2, 1)) / 2, y


def completion_sensing(mask, M):
    """Symmetric completion as sensing: one A = (e_a e_b^T + e_b e_a^T)/2 per observed pair a <= b, y = M_ab."""
    M = np.asarray(M, dtype=np.float64) if not isinstance(M, np.ndarray) else M.astype(np.float64)
    mask = np.asarray(mask)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.size == 0:
        raise ValueError(f"M must be a square matrix, got shape {M.shape}")
    if mask.shape != M.shape:
        raise ValueError(f"shape mismatch: mask has shape {mask.shape} but M has {M.shape}")
    if mask.dtype != bool and not (mask.dtype.kind in "iuf" and np.all((mask == 0) | (mask == 1))):
        raise ValueError("mask must be boolean (or 0/1) marking the observed entries of M")
    mask = mask.astype(bool)
    if not np.array_equal(mask, mask.T):
        raise ValueError("mask must be symmetric for W = U U^T (entry (a, b) observed iff (b, a) is)")
    if not np.all(np.isfinite(M[mask])):
        raise ValueError("M has non-finite observed entries (NaN or inf)")
    if np.abs(M[mask] - M.T[mask]).max(initial=0.0) > 1e-12 * max(np.abs(M[mask]).max(initial=0.0), 1e-300):
        raise ValueError("observed entries of M must be symmetric (M_ab = M_ba) for W = U U^T")
    pairs = [(a, b) for a in range(M.shape[0]) for b in range(a, M.shape[0]) if mask[a, b]]
    if not pairs:
        raise ValueError("mask observes no entry")
    d = M.shape[0]
    A = np.zeros((len(pairs), d, d))
    for i, (a, b) in enumerate(pairs):
        A[i, a, b] += 0.5
        A[i, b, a] += 0.5
    return A, np.array([M[a, b] for a, b in pairs])


def residual(A, y, W) -> np.ndarray:
    return np.einsum("mij,ij->m", A, W) - y


def gradient(A, y, W) -> np.ndarray:
    """G = grad f(W) = sum_i (<A_i, W> - y_i) A_i / m."""
    return np.einsum("m,mij->ij", residual(A, y, W), A) / len(y)


def loss(A, y, W) -> float:
    return float(0.5 * np.mean(residual(A, y, W) ** 2))


def hessian_U(A, y, U) -> np.ndarray:
    """Hessian of F(U) = f(U U^T) on vec(U) (row-major): 2 kron(G, I_r) + (4/m) sum_i vec(A_i U) vec(A_i U)^T."""
    m = len(y)
    G = gradient(A, y, U @ U.T)
    J = np.einsum("mij,jk->mik", A, U).reshape(m, -1)
    return 2 * np.kron(G, np.eye(U.shape[1])) + 4.0 / m * J.T @ J


def rotation_free_basis(U) -> np.ndarray:
    """Orthonormal basis of the complement of the rotation directions {U Omega, Omega skew} in vec(U) (row-major)."""
    d, r = U.shape
    rots = []
    for a in range(r):
        for b in range(a + 1, r):
            Om = np.zeros((r, r))
            Om[a, b], Om[b, a] = 1.0, -1.0
            rots.append((U @ Om).ravel())
    if not rots:
        return np.eye(d * r)
    Q, _ = np.linalg.qr(np.array(rots).T)
    P = np.eye(d * r) - Q @ Q.T
    ev, V = np.linalg.eigh(P)
    return V[:, ev > 0.5]


def contraction_rates(A, y, U) -> np.ndarray:
    """Hessian eigenvalues of F off the rotation directions, ascending: the rates of GF's modes inside rank r at a
    critical point (the W-space linearization on the tangent space of the rank-r manifold; mu = the first)."""
    H = hessian_U(A, y, U)
    Z = rotation_free_basis(U)
    return np.linalg.eigvalsh(Z.T @ H @ Z)


def complement_spectrum(G, W, rank: int) -> np.ndarray:
    """Eigenvalues of -G restricted to range(W)^perp (the top ``rank`` eigenvectors of W span range W), descending."""
    d = W.shape[0]
    if rank == 0:
        return np.sort(np.linalg.eigvalsh(-G))[::-1]
    _, V = np.linalg.eigh(W)
    Pp = V[:, : d - rank]
    return np.sort(np.linalg.eigvalsh(-(Pp.T @ G @ Pp)))[::-1]


@dataclass
class Saddle:
    """One GLRL iterate W_r = U_r U_r^T with its certificates and the derived small-init rates."""

    rank: int
    U: np.ndarray
    W: np.ndarray
    loss: float
    grad_norm: float            # ||grad F(U)|| / lambda_1(-G(0)) at the end (relative)
    status: str                 # "converged" | "max_iter" | "stalled" | "flow failed: ..."
    mu: float                   # slowest contraction rate inside rank r (> 0: strict local min modulo rotations)
    mu_next: float              # the second slowest (inf if there is none)
    lam: np.ndarray             # eigenvalues of -G(W_r) on range(W_r)^perp, descending (lam[0] > tol: a saddle)
    escape: np.ndarray          # the escape direction v (top eigenvector of -G(W_r)), or empty at the limit
    eps_error: float = float("nan")   # ||W_r(eps) - W_r(eps * 1e-3)|| / ||W_r|| (eps_check)
    flow_time: float = 0.0
    newton_iterations: int = 0


@dataclass
class GLRLPrediction(Certified):
    """The GLRL iterates W_1..W_K and the limit W = W_K with its certificate (Li, Luo, Lyu 2021, Alg. 1)."""

    saddles: list[Saddle]       # W_1, ..., W_K (W_K is the limit)
    W: np.ndarray               # the limit W_K
    lam_max_end: float          # lambda_max(-G(W_K)) (<= tol * scale at "converged")
    scale: float                # lambda_1(-G(0)), the unit of rates and of the tolerance
    residual: float             # ||A(W_K) - y|| / ||y||
    status: str                 # "converged" | "max_rank" | "not converged at rank r: ..."
    lam0: np.ndarray = field(default_factory=lambda: np.zeros(0))   # spectrum of -G(0), descending
    exponents: dict = field(default_factory=dict)   # derived: e_r, kappa_r, time slopes (see rates())


def _flow_in_rank(A, y, U0, scale, rtol, gtol, t_max):
    """GF dU/dt = -2 G U inside rank r (DOP853) until ||grad F|| <= gtol * scale; returns (U, t, status)."""
    d, r = U0.shape

    def rhs(_, u):
        U = u.reshape(d, r)
        return (-2.0 * gradient(A, y, U @ U.T) @ U).ravel()

    def small(_, u):
        U = u.reshape(d, r)
        return np.linalg.norm(2.0 * gradient(A, y, U @ U.T) @ U) - gtol * scale
    small.terminal, small.direction = True, -1

    # atol far below eps: the new column starts at eps and its direction must be resolved
    sol = solve_ivp(rhs, (0.0, t_max), U0.ravel(), method="DOP853", rtol=rtol, atol=1e-22, events=[small])
    status = "ok" if sol.status == 1 else ("t_max" if sol.success else f"flow failed: {sol.message}")
    return sol.y[:, -1].reshape(d, r), float(sol.t[-1]), status


def _newton(A, y, U, scale, gtol, max_iter=40):
    """Newton on F(U) with least-squares steps (the rotation directions are a null space of the Hessian)."""
    status, it = "max_iter", 0
    for it in range(1, max_iter + 1):
        g = (2.0 * gradient(A, y, U @ U.T) @ U).ravel()
        gn = np.linalg.norm(g)
        if gn <= gtol * scale:
            return U, it - 1, "converged"
        H = hessian_U(A, y, U)
        step = np.linalg.lstsq(H, -g, rcond=1e-12)[0]
        t = 1.0
        while t > 1e-6:
            Un = U + t * step.reshape(U.shape)
            if np.linalg.norm(2.0 * gradient(A, y, Un @ Un.T) @ Un) < gn:
                break
            t *= 0.5
        else:
            return U, it, "stalled"
        U = Un
    g = np.linalg.norm(2.0 * gradient(A, y, U @ U.T) @ U)
    return U, it, "converged" if g <= gtol * scale else status


def _iterate(A, y, U_prev, v, eps, scale, rtol, flow_gtol, gtol, t_max):
    U0 = np.hstack([U_prev, eps * v[:, None]])
    U, tf, st = _flow_in_rank(A, y, U0, scale, rtol, flow_gtol, t_max)
    if st != "ok":
        return U, tf, st if st.startswith("flow failed") else "flow reached t_max", 0
    U, its, nst = _newton(A, y, U, scale, gtol)
    return U, tf, nst, its


def glrl(As, y, eps: float = 1e-10, tol: float = 1e-9, max_rank: int | None = None, rtol: float = 1e-11,
         gtol: float = 1e-13, eps_check: bool = False, t_max: float | None = None) -> GLRLPrediction:
    """GLRL iterates for symmetric sensing (A_i symmetric, f = sum (<A_i, W> - y_i)^2 / (2m)).

    Stops when lambda_max(-G(W_r)) <= tol * lambda_1(-G(0)) ("converged"), or at ``max_rank`` ("max_rank").
    Each iterate carries: gradient norm (relative to lambda_1(-G(0))), Newton status, mu_r, the complement spectrum,
    and with ``eps_check`` the difference to a rerun at eps * 1e-3.
    """
    A, y = symmetric_sensing(As, y)
    d = A.shape[1]
    max_rank = d if max_rank is None else integer(max_rank, "max_rank", 1)
    if max_rank > d:
        raise ValueError(f"max_rank = {max_rank} exceeds the matrix size d = {d}: W = U U^T has rank <= d")
    eps = positive_scalar(eps, "eps")
    tol = positive_scalar(tol, "tol")
    gtol = positive_scalar(gtol, "gtol")
    lam0 = np.sort(np.linalg.eigvalsh(-gradient(A, y, np.zeros((d, d)))))[::-1]
    scale = float(max(lam0[0], 0.0))
    if not scale > 0:
        # lambda_max(-G(0)) <= 0: W = 0 is already where GLRL stops (no positive escape direction)
        return GLRLPrediction([], np.zeros((d, d)), float(lam0[0]), 1.0, _rel_residual(A, y, np.zeros((d, d))),
                              "converged", lam0, {})
    t_max = float(t_max) if t_max is not None else 1e4 / scale
    U = np.zeros((d, 0))
    saddles: list[Saddle] = []
    lam, v = lam0, np.linalg.eigh(-gradient(A, y, np.zeros((d, d))))[1][:, -1]
    status = "max_rank"
    for r in range(1, max_rank + 1):
        if lam[0] <= tol * scale:
            status = "converged"
            break
        Un, tf, st, its = _iterate(A, y, U, v, eps, scale, rtol, 1e-6, gtol, t_max)
        if st != "converged":
            status = f"not converged at rank {r}: {st}"
            saddles.append(_saddle(A, y, Un, r, st, scale, tf, its))
            U = Un
            break
        sad = _saddle(A, y, Un, r, st, scale, tf, its)
        if eps_check:
            U2, _, st2, _ = _iterate(A, y, U, v, eps * 1e-3, scale, rtol, 1e-6, gtol, t_max)
            sad.eps_error = float(np.linalg.norm(U2 @ U2.T - sad.W) / max(np.linalg.norm(sad.W), 1e-300))
            if st2 != "converged":
                sad.eps_error = float("inf")
        saddles.append(sad)
        U = Un
        lam = sad.lam
        v = sad.escape
    else:
        r = max_rank
        if saddles and saddles[-1].lam.size and saddles[-1].lam[0] <= tol * scale:
            status = "converged"
    W = U @ U.T
    G = gradient(A, y, W)
    lam_end = float(np.linalg.eigvalsh(-G)[-1])
    pred = GLRLPrediction(saddles, W, lam_end, scale, _rel_residual(A, y, W), status, lam0)
    pred.exponents = rates(pred)
    return pred


def _rel_residual(A, y, W) -> float:
    return float(np.linalg.norm(residual(A, y, W)) / max(np.linalg.norm(y), 1e-300))


def _saddle(A, y, U, r, status, scale, tf, its) -> Saddle:
    W = U @ U.T
    finite_result(W, "the GLRL iterate", "rescale y")
    G = gradient(A, y, W)
    lam = complement_spectrum(G, W, r)
    if lam.size:
        d = W.shape[0]
        _, V = np.linalg.eigh(W)
        Pp = V[:, : d - r]
        ev, Q = np.linalg.eigh(-(Pp.T @ G @ Pp))
        v = Pp @ Q[:, -1]
    else:
        v = np.zeros(0)
    rates_ = contraction_rates(A, y, U)
    return Saddle(rank=r, U=U, W=W, loss=loss(A, y, W), grad_norm=float(np.linalg.norm(2 * G @ U) / scale),
                  status=status, mu=float(rates_[0]), mu_next=float(rates_[1]) if rates_.size > 1 else float("inf"),
                  lam=lam, escape=v, flow_time=tf, newton_iterations=its)


def rates(pred: GLRLPrediction) -> dict:
    """Derived small-init rates along the GLRL path (theory.glrl, compiled), per iterate r = 1..K:

    ``eps``: exponents of the small part's eigenvalues at arrival (alpha^{eps_j}; eps = 2 at W_0, then
    eps_j - (lambda_j / lambda_1) eps_1 at each departure, sorted); ``kappa``: closest approach of GF from alpha I to
    the saddle W_r ~ alpha^{kappa_r}, kappa_r = eps_1 mu_r / (mu_r + 4 lambda_1^(r)) (NaN for the limit W_K);
    ``closest_time_slope``: dt / d ln(1/alpha) of that closest approach; ``departure_time_slope``: of the departure.
    """
    nxt = compiled(glrl_theory, "next_exponents", ("e_j", "e_1", "lambda_j", "lambda_1"))
    app = compiled(glrl_theory, "approach_exponent", ("e_r", "mu", "lambda_1"))
    dep = compiled(glrl_theory, "departure_time_slope", ("e_r", "lambda_1"))
    clo = compiled(glrl_theory, "closest_time_slope", ("e_r", "mu", "lambda_1"))
    eps = np.full(len(pred.lam0), float(glrl_theory()["initial_exponent"]))
    spectra = [pred.lam0] + [s.lam for s in pred.saddles]
    out = {"eps": [], "e": [], "kappa": [], "closest_time_slope": [], "departure_time_slope": []}
    elapsed = 0.0
    for r, sad in enumerate(pred.saddles, start=1):
        prev = spectra[r - 1]
        elapsed += float(dep(eps[0], prev[0]))
        eps = np.sort(np.array([float(nxt(eps[j], eps[0], prev[j], prev[0])) for j in range(1, len(prev))]))
        out["eps"].append(eps)
        out["e"].append(float(eps[0]) if eps.size else float("inf"))
        lam = sad.lam
        if r < len(pred.saddles) and lam.size and lam[0] > 0:
            out["kappa"].append(float(app(eps[0], sad.mu, lam[0])))
            out["closest_time_slope"].append(elapsed + float(clo(eps[0], sad.mu, lam[0])))
            out["departure_time_slope"].append(elapsed + float(dep(eps[0], lam[0])))
        else:
            out["departure_time_slope"].append(float("nan"))
            out["kappa"].append(float("nan"))
            out["closest_time_slope"].append(float("nan"))
    return out
