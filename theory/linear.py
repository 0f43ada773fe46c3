"""Underdetermined linear systems: the solution gradient flow picks from a given init (Gruber & Avron 2024).

Convention (THEORY §0): L(w) = ||Xw - y||^2/(2n), g = X^T(Xw - y)/n lies in range(X^T). X (n x d) has full row
rank, X^+ = X^T (X X^T)^{-1}, P_perp = I - X^+ X projects on null(X).
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation

# A generic full-row-rank design (2 x 3, integer entries) for the matrix identities; w0, y stay symbolic.
_X = sp.Matrix([[2, -1, 3], [1, 4, -2]])


def _pinv(X: sp.Matrix) -> sp.Matrix:
    return X.T * (X * X.T).inv()


@derivation
def one_layer() -> Derivation:
    """One layer from w0: w_inf = w0 + X^+(y - X w0) = X^+ y + P_perp w0 (Gruber & Avron 2024, Sec. 3)."""
    d = Derivation("linear.one_layer", "Gruber & Avron 2024, arXiv 2402.02454, Sec. 3 (one layer)")
    X = _X
    n, dim = X.shape
    w0 = sp.Matrix(sp.symbols(f"w0_0:{dim}", real=True))
    y = sp.Matrix(sp.symbols(f"y_0:{n}", real=True))
    r = sp.Matrix(sp.symbols(f"r_0:{n}", real=True))
    Xp = _pinv(X)
    P = sp.eye(dim) - Xp * X
    d.symbols.update({str(v): v for v in list(w0) + list(y)})
    d.check_zero("P_perp g = 0 for g = X^T r / n: GF keeps P_perp w = P_perp w0", (P * X.T * r).norm() ** 2)
    winf = w0 + Xp * (y - X * w0)
    d.check_zero("w0 + X^+(y - X w0) = X^+ y + P_perp w0", ((winf - Xp * y - P * w0).applyfunc(sp.expand)).norm() ** 2)
    d.check_zero("X w_inf = y (full row rank: X X^+ = I)", ((X * winf - y).applyfunc(sp.simplify)).norm() ** 2)
    d.check_zero("w_inf - w0 in range(X^T): P_perp (w_inf - w0) = 0",
                 ((P * (winf - w0)).applyfunc(sp.simplify)).norm() ** 2)
    d.check_zero("P_perp is a projector", ((P * P - P).applyfunc(sp.simplify)).norm() ** 2)
    return d


@derivation
def deep(N: int) -> Derivation:
    """Depth-N linear net, scalar output, balanced rank-one init: end-to-end flow and kappa (Gruber & Avron 2024; Arora et al. 2018)."""
    if int(N) != N or N < 2:
        raise ValueError(f"depth N must be an integer >= 2, got {N!r}")
    N = int(N)
    d = Derivation(f"linear.deep{N}", "Gruber & Avron 2024, arXiv 2402.02454, Sec. 4; Arora, Cohen, Hazan 2018, "
                   "arXiv 1802.06509, Thm 1")
    # Balanced scalar-output init is rank one: W_1 = a_2 m^T, W_j = sigma_j a_{j+1} a_j^T (unit a_j), w = (prod sigma) m.
    # dL/dW_j (j >= 2) is proportional to a_{j+1} a_j^T, so only m and the sigma_j move (checked here in d = 2).
    m = sp.Matrix(sp.symbols("m_0:2", real=True))
    gv = sp.Matrix(sp.symbols("g_0:2", real=True))
    sig = sp.symbols(f"sigma_2:{N + 1}", positive=True)
    prod = sp.Mul(*sig)
    mg = (m.T * gv)[0]
    flow = {**{m[i]: -prod * gv[i] for i in range(2)}, **{sj: -(prod / sj) * mg for sj in sig}}

    def ddt(expr):
        return sum(sp.diff(expr, p) * rhs for p, rhs in flow.items())

    rm = sp.sqrt(m[0] ** 2 + m[1] ** 2)
    for sj in sig:
        d.check_zero(f"d/dt (sigma_{sig.index(sj) + 2}^2 - |m|^2) = 0 (balancedness conserved)", ddt(sj**2 - rm**2))
    wvec = prod * m
    dw = sp.Matrix([ddt(wi) for wi in wvec]).subs({sj: rm for sj in sig})
    wb = rm ** (N - 1) * m
    wn = sp.sqrt((wb.T * wb)[0])
    arora = -wn ** (2 - sp.Rational(2, N)) * (gv + (N - 1) * wb * (wb.T * gv)[0] / wn**2)
    d.check_zero("balanced: dw/dt = -||w||^(2-2/N) (g + (N-1) w w^T g / ||w||^2) (Arora 2018)",
                 sum(sp.simplify(sp.powsimp(sp.expand_power_base(e, force=True), force=True)) ** 2
                     for e in (dw - arora)))
    d.check_zero("balanced: dm/dt = -|m|^(N-1) g, hence P_perp m is conserved",
                 sum(e**2 for e in (sp.Matrix([flow[m[0]], flow[m[1]]]).subs({sj: rm for sj in sig}) + rm ** (N - 1) * gv)))

    # kappa: m_inf = m0 + range(X^T) part, m0 = w0 / ||w0||^((N-1)/N), w = |m|^(N-1) m.
    rho, a = sp.symbols("rho a", positive=True)   # rho = |m_inf|, a = ||w0||
    A, B, C, q, kappa = sp.symbols("A B C q kappa", positive=True)
    d.symbols.update(A=A, B=B, C=C, q=q, kappa=kappa, a=a, rho=rho)
    kap = d.define("kappa_of_rho", rho ** (N - 1) * a ** (-sp.Rational(N - 1, N)))   # P_perp w_inf / P_perp w0
    d.check_equal("kappa^(2N/(N-1)) ||w0||^2 = ||w_inf||^2 (= rho^(2N))",
                  sp.powsimp(sp.expand_power_base(kap ** sp.Rational(2 * N, N - 1) * a**2, force=True), force=True),
                  rho ** (2 * N))
    # w_inf = X^+ y + kappa P_perp w0 with X^+ y in range(X^T), orthogonal to null(X): Pythagoras gives
    # ||w_inf||^2 = C + kappa^2 B (C = ||X^+ y||^2, B = ||P_perp w0||^2), and ||w_inf||^2 = kappa^(2N/(N-1)) A.
    Xp, dim = _pinv(_X), _X.shape[1]
    P = sp.eye(dim) - Xp * _X
    w0v, yv = sp.Matrix(sp.symbols(f"w0_0:{dim}", real=True)), sp.Matrix(sp.symbols(f"y_0:{_X.shape[0]}", real=True))
    sq = lambda v: (v.T * v)[0]  # noqa: E731
    d.check_zero("||X^+ y + kappa P_perp w0||^2 = ||X^+ y||^2 + kappa^2 ||P_perp w0||^2",
                 sp.expand(sq(Xp * yv + kappa * P * w0v) - sq(Xp * yv) - kappa**2 * sq(P * w0v)))
    eq = d.define("kappa_equation", kappa ** sp.Rational(2 * N, N - 1) * A - C - kappa**2 * B)
    poly = d.define("q_poly", A * q**N - B * q ** (N - 1) - C)           # q = kappa^(2/(N-1))
    d.define("dq_poly", sp.diff(poly, q))
    d.define("kappa_of_q", q ** sp.Rational(N - 1, 2))
    d.check_zero("kappa equation in q = kappa^(2/(N-1)) is A q^N - B q^(N-1) - C",
                 sp.powsimp(sp.expand_power_base(eq.subs(kappa, q ** sp.Rational(N - 1, 2)), force=True), force=True) - poly)
    coeffs = sp.Poly(poly, q).all_coeffs()
    signs = [sp.sign(cf.subs({A: 1, B: sp.Rational(1, 2), C: 1})) for cf in coeffs if cf != 0]
    d.check_true("one sign change in (A, -B, -C): exactly one positive root (Descartes), for A >= B >= 0, C > 0",
                 sum(1 for u, v in zip(signs, signs[1:]) if u != v) == 1)
    if N == 2:
        qs = d.define("q_closed_form", (B + sp.sqrt(B**2 + 4 * A * C)) / (2 * A))
        d.check_zero("N = 2: q = (B + sqrt(B^2 + 4AC))/(2A) solves the equation", sp.expand(poly.subs(q, qs)))
    d.define("coefficients", sp.Matrix(coeffs))
    return d
