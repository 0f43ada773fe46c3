"""Saddle-to-saddle limit of a `uv` DLN as alpha -> 0: jump times and saddles (Pesme & Flammarion 2023, Alg. 1).

Package convention (theory.saddles): L = ||Xb - y||^2/(2n), `uv` init (sqrt2 alpha, 0), rescaled time
tau = t / ln(1/alpha); the dual s(tau) = -G(tau ln(1/alpha)) / ln(1/alpha) moves as ds/dtau = -g(b) with
g = X^T(Xb - y)/n. For a `pm` net at alpha' = alpha/sqrt2 the same path is reached at t_pm = tau ln(1/alpha)/2.

Algorithm. Start at b = 0, s = 0, tau = 0. Repeat: with g = g(b) fixed, s moves linearly until a coordinate
reaches +-1 (the next jump time); then b becomes the sign-constrained least squares on the boundary set
I = {i: |s_i| = 1}: min ||X_I diag(s_I) beta - y||, beta >= 0 (NNLS on signed columns), b_I = s_I beta.
Stop when g(b) = 0 (or no coordinate can reach the boundary any more). In float mode, rounding at condition numbers
~1e8 can push s past the boundary (a negative jump time) or make a saddle's loss exceed the previous one (the losses
decrease in exact arithmetic): the path then ends with status "stalled"; exact=True does not stall.

Determinism (documented bad input):
- tied jump times: every coordinate whose hitting time equals the minimum (exactly, in exact mode; within a
  relative 1e-11 in float mode) joins the boundary at the same jump; ``ties`` records how many did.
- degenerate (non-unique) constrained least squares, when the boundary columns are linearly dependent:
  Lawson-Hanson NNLS with entering ties broken by the lowest index picks one minimizer deterministically;
  ``degenerate`` flags those jumps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
import warnings

import numpy as np

from theory import saddles as th

from .compile import compiled
from .result import Certified
from .validate import as_matrix, as_vector, finite_result, finite_scalar, integer


@dataclass
class SaddlePath(Certified):
    """Jump times tau_k (tau_0 = 0) and saddles b^k occupied on [tau_k, tau_{k+1}); duals s and nu at tau_k.

    ``b``: the alpha -> 0 limit, the last saddle (rationals in exact mode); ``residual``: its ||X b - y|| / ||y||.
    """

    times: np.ndarray          # (K+1,)
    saddles: np.ndarray        # (K+1, d)
    duals: np.ndarray          # (K+1, d): s(tau_k) = X^T nu(tau_k)
    nus: np.ndarray            # (K+1, n)
    losses: np.ndarray         # (K+1,) L(b^k) = ||X b^k - y||^2/(2n)
    boundary: list[tuple[int, ...]] = field(default_factory=list)   # signed 1-based indices with |s_i| = 1
    ties: list[int] = field(default_factory=list)
    degenerate: list[bool] = field(default_factory=list)
    status: str = "converged"      # "converged" | "max_jumps" | "stalled"
    exact: bool = False
    residual: float = float("nan")

    @property
    def b(self) -> np.ndarray:
        return self.saddles[-1]

    def at(self, tau) -> np.ndarray:
        """The limiting b at rescaled times tau (piecewise constant): shape (len(tau), d)."""
        tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        k = np.searchsorted(np.asarray(self.times, dtype=np.float64), tau, side="right") - 1
        return np.asarray(self.saddles, dtype=np.float64)[np.clip(k, 0, None)]

    def fixture_times(self, n: int) -> np.ndarray:
        """Jump times for the loss ||Xk - y||^2 (= 2n L): t_fix = t / (2n) (theory.saddles fixture_time)."""
        f = compiled(th.rescaled_dual, "fixture_time", ("t", "n"), "numpy")   # t/(2n): exact on Fractions
        return np.array([f(t, n) for t in self.times], dtype=object if self.exact else np.float64)


def _solve_exact(M: list[list[Fraction]], v: list[Fraction]) -> list[Fraction]:
    """Gauss-Jordan elimination in exact rationals (M square, nonsingular)."""
    k = len(v)
    A = [row[:] + [v[i]] for i, row in enumerate(M)]
    for c in range(k):
        p = next(r for r in range(c, k) if A[r][c] != 0)
        A[c], A[p] = A[p], A[c]
        piv = A[c][c]
        A[c] = [x / piv for x in A[c]]
        for r in range(k):
            if r != c and A[r][c] != 0:
                f = A[r][c]
                A[r] = [x - f * yv for x, yv in zip(A[r], A[c])]
    return [A[i][k] for i in range(k)]


def _ls(A: np.ndarray, y: np.ndarray, cols: list[int], exact: bool) -> np.ndarray:
    sub = A[:, cols]
    if exact:
        M = (sub.T @ sub).tolist()
        return np.array(_solve_exact(M, (sub.T @ y).tolist()), dtype=object)
    return np.linalg.lstsq(sub.astype(np.float64), y.astype(np.float64), rcond=None)[0]


def _nnls_args(A, y, exact: bool):
    """Validated (A, y): A (n, m) with m >= 0 columns (no column: z is empty), finite; Fractions in exact mode."""
    if exact:
        A, y = _as_exact(A, "A"), _as_exact(y, "y")
    Af = np.asarray(A, dtype=object).astype(np.float64) if exact else np.asarray(A, dtype=np.float64)
    if Af.ndim != 2 or Af.shape[0] == 0:
        raise ValueError(f"A must be a 2-D array with at least one row, got shape {Af.shape}")
    if not np.all(np.isfinite(Af)):
        raise ValueError("A has non-finite entries (NaN or inf)")
    yf = as_vector(np.asarray(y, dtype=object).astype(np.float64) if exact else y, Af.shape[0], "y", "A")
    return (A, y) if exact else (Af, yf)


def nnls(A: np.ndarray, y: np.ndarray, exact: bool = False, tol: float = 0.0) -> np.ndarray:
    """Lawson-Hanson NNLS min ||A z - y||, z >= 0; entering ties broken by the lowest index (deterministic).

    Warns (RuntimeWarning) when it stops at its iteration cap (10 m + 10 passes) with KKT unmet.
    """
    z, done = _nnls(A, y, exact, tol)
    if not done:
        warnings.warn("nnls stopped at its iteration cap before meeting KKT (cycling at tol = "
                      f"{tol!r}?); the returned z is the last iterate", RuntimeWarning, stacklevel=2)
    return z


def _nnls(A, y, exact: bool, tol) -> tuple[np.ndarray, bool]:
    """(z, done): done is False when the outer or inner loop ran out of passes."""
    A, y = _nnls_args(A, y, exact)
    if finite_scalar(tol, "tol") < 0:
        raise ValueError(f"tol must be >= 0 (the positivity threshold of NNLS), got {tol!r}")
    m = A.shape[1]
    zero = Fraction(0) if exact else 0.0
    z = np.array([zero] * m, dtype=object if exact else np.float64)
    P: list[int] = []
    cap = 10 * m + 10
    for _ in range(cap):
        w = A.T @ (y - A @ z)
        cand = [j for j in range(m) if j not in P and w[j] > tol]
        if not cand:
            return z, True
        j = max(cand, key=lambda k: (w[k], -k))
        P.append(j)
        for _ in range(cap):
            zP = _ls(A, y, P, exact)
            if all(v > tol for v in zP):
                for k, i in enumerate(P):
                    z[i] = zP[k]
                break
            step = min(z[i] / (z[i] - zP[k]) for k, i in enumerate(P) if zP[k] <= tol)
            for k, i in enumerate(P):
                z[i] = z[i] + step * (zP[k] - z[i])
            P = [i for i in P if z[i] > tol]
            for i in range(m):
                if i not in P:
                    z[i] = zero
        else:
            return z, False
    return z, False


def _as_exact(a, name: str) -> np.ndarray:
    """Entries as Fractions (ints, Fractions, sympy Rationals, strings like '1/2', floats exactly)."""
    arr = np.asarray(a, dtype=object)
    exact = np.vectorize(lambda x: Fraction(float(x)) if isinstance(x, (float, np.floating)) else Fraction(str(x)),
                         otypes=[object])
    try:
        out = exact(arr)
        out.astype(np.float64)   # a rational beyond the float64 range raises OverflowError here
        return out
    except (ValueError, OverflowError, TypeError, ZeroDivisionError):
        raise ValueError(f"{name} must hold finite rationals within the float64 range in exact mode (ints, "
                         "Fractions, sympy Rationals or strings like '1/2')") from None


def saddle_to_saddle(X, y, exact: bool = False, max_jumps: int | None = None) -> SaddlePath:
    """Run the limiting algorithm; ``exact=True`` works in rationals (entries as ints, Fractions, sympy Rationals, strings)."""
    max_jumps = None if max_jumps is None else integer(max_jumps, "max_jumps", 0)
    if exact:
        X, y = _as_exact(X, "X"), _as_exact(y, "y")
        Xf = as_matrix(X.astype(np.float64))   # shape checks
        as_vector(y.astype(np.float64), Xf.shape[0])
        zero, one, tol, tie = Fraction(0), Fraction(1), 0, 0
    else:
        X = as_matrix(X)
        y = as_vector(y, X.shape[0])
        zero, one = 0.0, 1.0
        scale = max(float(np.max(np.abs(X.T @ y))) / X.shape[0], 1e-300)
        tol, tie = 1e-13 * scale, 1e-11
    n, d = X.shape
    dt = object if exact else np.float64
    b = np.array([zero] * d, dtype=dt)
    s = np.array([zero] * d, dtype=dt)
    nu = np.array([zero] * n, dtype=dt)
    tau = zero
    rec = dict(times=[tau], saddles=[b.copy()], duals=[s.copy()], nus=[nu.copy()], losses=[])
    boundary, ties, degenerate = [()], [0], [False]
    status = "max_jumps"
    max_jumps = 4 * d + 10 if max_jumps is None else max_jumps

    def grad(bv):
        r = X @ bv - y
        return X.T @ r / n, r

    g, r = grad(b)
    rec["losses"].append((r @ r) / (2 * n))
    for _ in range(max_jumps):
        if max(abs(v) for v in g) <= tol:
            status = "converged"
            break
        hit_t = [None] * d
        for i in range(d):
            if abs(g[i]) <= tol:
                continue
            target = one if g[i] < 0 else -one
            if s[i] == target:
                continue                      # on the boundary, KKT holds up to rounding: it stays
            hit_t[i] = (target - s[i]) / (-g[i])
        valid = [v for v in hit_t if v is not None]
        if not valid:
            status = "converged"
            break
        delta = min(valid)
        if delta < 0:
            status = "stalled"
            break
        hits = [i for i, v in enumerate(hit_t) if v is not None and v <= delta * (1 + tie)]
        tau = tau + delta
        nu = nu - delta * r / n
        s = s - delta * g
        for i in hits:
            s[i] = one if g[i] < 0 else -one
        if not exact:
            s = X.T @ nu
            for i in range(d):                # remove the float drift of boundary coordinates
                if abs(abs(s[i]) - 1) <= 1e-11:
                    s[i] = np.sign(s[i])
        I = [i for i in range(d) if abs(s[i]) == one]
        sig = np.array([s[i] for i in I], dtype=dt)
        A = X[:, I] * sig[None, :]
        beta, done = _nnls(A, y, exact, tol)
        if not done:
            status = "stalled"
            break
        b = np.array([zero] * d, dtype=dt)
        for k, i in enumerate(I):
            b[i] = sig[k] * beta[k]
        if exact:
            rank = np.linalg.matrix_rank(A.astype(np.float64)) if len(I) else 0
        else:
            rank = np.linalg.matrix_rank(A) if len(I) else 0
        g, r = grad(b)
        loss = (r @ r) / (2 * n)
        if not exact and loss > rec["losses"][-1] + 1e-9 * rec["losses"][0]:
            status = "stalled"
            break
        for key, val in (("times", tau), ("saddles", b.copy()), ("duals", s.copy()), ("nus", nu.copy()),
                         ("losses", loss)):
            rec[key].append(val)
        boundary.append(tuple(int((i + 1) * (1 if s[i] > 0 else -1)) for i in I))
        ties.append(len(hits))
        degenerate.append(bool(rank < len(I)))
    if not exact:
        finite_result(np.concatenate([np.ravel(rec[k]) for k in ("times", "saddles", "duals", "nus", "losses")]),
                      "the saddle path",
                      "rescale X or y (the loss ||X b - y||^2 overflows)")
    r = np.asarray(grad(rec["saddles"][-1])[1], dtype=np.float64)
    residual = float(np.linalg.norm(r) / max(np.linalg.norm(np.asarray(y, dtype=np.float64)), 1e-300))
    return SaddlePath(times=np.array(rec["times"], dtype=dt), saddles=np.array(rec["saddles"], dtype=dt),
                      duals=np.array(rec["duals"], dtype=dt), nus=np.array(rec["nus"], dtype=dt),
                      losses=np.array(rec["losses"], dtype=dt), boundary=boundary, ties=ties,
                      degenerate=degenerate, status=status, exact=exact, residual=residual)


def l1_kkt_residual(X, y, b, s) -> float:
    """Violation of min-l1 KKT: ||Xb - y||, max(0, ||s||_inf - 1), |s_i - sign b_i| on supp b (s = X^T nu assumed)."""
    X = np.asarray(X, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    supp = np.abs(b) > 0
    parts = [np.linalg.norm(X @ b - np.asarray(y, dtype=np.float64)) / max(np.linalg.norm(y), 1e-300),
             max(0.0, float(np.max(np.abs(s))) - 1.0),
             float(np.max(np.abs(s[supp] - np.sign(b[supp])), initial=0.0))]
    return float(max(parts))
