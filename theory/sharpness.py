"""Sharpness of diagonal linear networks: parameter-space Hessian, its interpolator form J^T H J, stability of GD.

Sources: Even et al. 2023 (arXiv 2302.08982) Sec. 5 for `uv`; Fojtik et al. 2025 (arXiv 2505.21423) for the
shared `b = w * w` toy; Nacson et al. 2022 for non-centered data; Cohen et al. 2021 for S <= 2/eta.
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation

p, m = sp.symbols("p m", real=True)        # the two parameters of one coordinate (w+, w-) or (u, v)
g, eta, lam = sp.symbols("g eta lambda", real=True)
alpha = sp.Symbol("alpha", positive=True)
b = sp.Symbol("b", real=True)
KINDS = ("pm", "uv", "shared")


def _coord(kind: str, D: int = 2):
    if kind == "pm":
        return p**D - m**D, (p, m)
    if kind == "uv":
        return p * m, (p, m)
    if kind == "shared":
        return p**2, (p,)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _general_hessian_check(d: Derivation, bexpr, params) -> None:
    """Check grad^2 L = J^T H J + sum_i g_i grad^2 b_i on two coordinates with a symbolic data matrix."""
    n_s = 2
    Xs = sp.Matrix(n_s, 2, sp.symbols("x0:4", real=True))
    ys = sp.Matrix(sp.symbols("y0:2", real=True))
    th = [[sp.Symbol(f"{q}{i}", real=True) for q in map(str, params)] for i in range(2)]
    bs = sp.Matrix([bexpr.subs(dict(zip(params, th[i]))) for i in range(2)])
    flat = [t for row in th for t in row]
    r = Xs * bs - ys
    L = (r.T * r)[0] / (2 * n_s)
    Hess = sp.hessian(L, flat)
    J = bs.jacobian(flat)
    Hb = Xs.T * Xs / n_s
    gvec = Xs.T * r / n_s
    formula = J.T * Hb * J + sum((gvec[i] * sp.hessian(bs[i], flat) for i in range(2)), sp.zeros(len(flat)))
    d.check_true("Hessian = J^T H J + sum_i g_i grad^2 b_i (two coordinates, symbolic X, y; polynomial identity)",
                 all(sp.expand(e) == 0 for e in (Hess - formula)))


@derivation
def hessian(kind: str, D: int = 2) -> Derivation:
    """Per-coordinate pieces of the loss Hessian in parameter space for `pm` (depth D), `uv`, shared b = w^2."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if int(D) != D or D < 2 or (kind != "pm" and D != 2):
        raise ValueError(f"depth must be 2 (or an integer >= 2 for 'pm'), got {D!r}")
    d = Derivation(f"sharpness.{kind}{'' if D == 2 else D}", "Even et al. 2023, arXiv 2302.08982, Sec. 5; Fojtik et al. 2025, arXiv 2505.21423")
    bexpr, params = _coord(kind, D)
    d.symbols.update(p=p, m=m, g=g, eta=eta, alpha=alpha, b=b)
    d.define("b", bexpr)
    _general_hessian_check(d, bexpr, params)
    names = ("p", "m")
    for i, a in enumerate(params):
        d.define(f"J_{names[i]}", sp.diff(bexpr, a))
        for j, c in enumerate(params):
            if j >= i:
                d.define(f"B_{names[i]}{names[j]}", sp.diff(bexpr, a, c))
    # At an interpolator (g = 0): J^T H J has the nonzero spectrum of H^{1/2} diag(sum_a J_a^2) H^{1/2}
    weight = d.define("weight", sp.expand(sum(sp.diff(bexpr, a) ** 2 for a in params)))
    if kind == "pm" and D == 2:
        d.check_equal("pm: sum J^2 = 4 (w+^2 + w-^2)", weight, 4 * (p**2 + m**2))
        d.check_equal("pm: 4 (w+^2 + w-^2) - 4 |b| >= 0 (= 8 w-^2 if b >= 0)", weight - 4 * bexpr, 8 * m**2)
        d.define("min_factor", sp.Integer(4))
        a4 = sp.Symbol("alpha_k", positive=True)
        wp, wm = a4 * sp.exp(sp.Symbol("G")), a4 * sp.exp(-sp.Symbol("G"))
        d.check_zero("GF (w+ w- = alpha^2): (w+^2 + w-^2)^2 = b^2 + 4 alpha^4",
                     ((wp**2 + wm**2) ** 2 - ((wp**2 - wm**2) ** 2 + 4 * a4**4)))
        d.define("weight_gf", 4 * sp.sqrt(b**2 + 4 * alpha**4))
    elif kind == "uv":
        d.check_equal("uv: sum J^2 = u^2 + v^2", weight, p**2 + m**2)
        d.check_equal("uv: u^2 + v^2 - 2 u v = (u - v)^2 >= 0: min over factorizations is 2|b|",
                      weight - 2 * bexpr, (p - m) ** 2)
        d.define("min_factor", sp.Integer(2))
        d.define("weight_gf", 2 * sp.sqrt(b**2 + alpha**4))      # u^2 - v^2 = 2 alpha^2 conserved (theory.dln)
        d.define("weight_gd", 2 * sp.sqrt(b**2 + sp.Symbol("alpha_k", positive=True) ** 4))  # theory.dln_gd
    elif kind == "shared":
        d.check_equal("shared: sum J^2 = 4 w^2 = 4 b", weight, 4 * bexpr)
        d.define("min_factor", sp.Integer(4))
    else:
        d.check_equal(f"depth {D}: sum J^2 = D^2 (w+^(2D-2) + w-^(2D-2))", weight,
                      D**2 * (p ** (2 * D - 2) + m ** (2 * D - 2)))

    # Linear stability of GD at a minimum along the top eigendirection: e -> (1 - eta S) e
    S = sp.Symbol("S", positive=True)
    e_pos = sp.Symbol("eta_pos", positive=True)
    d.check_true("|1 - eta S| <= 1 <=> S <= 2/eta (eta > 0)",
                 sp.simplify(sp.solve_univariate_inequality(sp.Abs(1 - e_pos * S) <= 1, S, relational=False)
                             - sp.Interval(0, 2 / e_pos)) == sp.EmptySet)
    d.define("stability_bound", 2 / eta)
    return d


@derivation
def noncentered() -> Derivation:
    """S >= v^T (J^T H J) v with v = 1/sqrt(n) gives sum_i mu_i^2 J_i^2 <= 2/eta: `uv` 1/eta, `pm` 1/(2 eta) (Nacson 2022)."""
    d = Derivation("sharpness.noncentered", "Nacson et al. 2022 (ICML), large-step stability with non-centered data")
    n = 3
    Xs = sp.Matrix(n, 2, sp.symbols("x0:6", real=True))
    wts = sp.symbols("c0:2", nonnegative=True)
    e = sp.ones(n, 1) / sp.sqrt(n)
    rq = (e.T * Xs * sp.diag(*wts) * Xs.T * e)[0] / n
    mu = [sum(Xs[:, i]) / n for i in range(2)]
    d.check_zero("e^T X diag(c) X^T e / n = sum_i mu_i^2 c_i (e = 1/sqrt n, n = 3, d = 2)",
                 sp.expand(rq - sum(mu[i] ** 2 * wts[i] for i in range(2))))
    d.symbols.update(eta=eta)
    # lambda_max >= Rayleigh quotient; weight >= min_factor |b|; S <= 2/eta
    d.define("bound_uv", 2 / (eta * hessian("uv")["min_factor"]))
    d.define("bound_pm", 2 / (eta * hessian("pm")["min_factor"]))
    d.check_equal("uv: sum mu^2 |b| <= 1/eta", d["bound_uv"], 1 / eta)
    d.check_equal("pm: sum mu^2 |b| <= 1/(2 eta)", d["bound_pm"], 1 / (2 * eta))
    return d


@derivation
def min_sharpness_n1() -> Derivation:
    """n = 1: min_{x.b = y} sum x_i^2 |b_i| = |y| min_i |x_i| (LP; primal at argmin |x_i|, dual nu = sign(y) min|x_i|)."""
    d = Derivation("sharpness.min_n1", "Fojtik et al. 2025, arXiv 2505.21423 (one data point)")
    xj, yv = sp.Symbol("x_j", positive=True), sp.Symbol("y", real=True)  # |x_j| (sign goes into b_j)
    d.symbols.update(x_j=xj, y=yv)
    bj = yv / xj
    primal = d.define("value", xj**2 * sp.Abs(bj))
    d.check_equal("primal b_j = y/x_j has value |x_j| |y|", primal, sp.Abs(xj) * sp.Abs(yv))
    nu = sp.sign(yv) * sp.Abs(xj)
    d.check_equal("dual value y nu = |y| |x_j|", sp.Abs(yv) * sp.Abs(xj), yv * nu)
    a, t = sp.Symbol("a", positive=True), sp.Symbol("t", nonnegative=True)
    slack = d.define("dual_slack", (a + t) ** 2 - (a + t) * a)
    d.check_equal("dual feasibility x_i^2 - |x_i nu| = (|x_j| + t) t >= 0 for |x_i| = |x_j| + t: j = argmin |x_i|",
                  slack, (a + t) * t)
    return d
