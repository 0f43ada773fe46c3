"""Saddle-to-saddle dynamics of a `uv` DLN at vanishing init: rescaled-time dual dynamics (Pesme & Flammarion 2023).

Convention (THEORY §0): L(b) = ||Xb - y||^2/(2n), g = X^T(Xb - y)/n, `uv` init u = sqrt2 alpha, v = 0.
Rescaling: ell = ln(1/alpha), tau = t/ell, s = -G/ell with G(t) = int_0^t g. Then ds/dtau = -g(b) and
b = alpha^2 sinh(2 ell s), so |s| <= 1 in the limit and b_i can be nonzero only where |s_i| = 1.
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation
from .dln import pm, uv_general


@derivation
def rescaled_dual() -> Derivation:
    """Rescaled-time dual dynamics ds/dtau = -g, b = alpha^2 sinh(2 ell s) (Pesme & Flammarion 2023, Sec. 3, Thm 1)."""
    d = Derivation("dln.saddles", "Pesme & Flammarion 2023, arXiv 2304.00488, Sec. 3, Alg. 1, Thm 1")
    ell = sp.Symbol("ell", positive=True)            # ln(1/alpha)
    tau, t = sp.symbols("tau t", nonnegative=True)
    s, g, G = sp.symbols("s g G", real=True)
    c1 = sp.Symbol("c_1", real=True, nonzero=True)
    n = sp.Symbol("n", positive=True)
    alpha = uv_general().symbols["alpha"]
    d.symbols.update(ell=ell, tau=tau, t=t, s=s, g=g, G=G, c1=c1, n=n, alpha=alpha)

    uv = uv_general()
    link_uv = uv["link"].subs({uv.symbols["b0"]: 0, uv.symbols["c"]: alpha**2})     # b = alpha^2 sinh(s_uv)
    # uv mirror flow: mirror(b(G)) = -2G (theory.dln.uv_general, b(G) = c sinh(theta - 2G), theta = 0 at v0 = 0)
    b_of_G = d.define("b_of_G", link_uv.subs(uv.symbols["s"], -2 * G))
    d.check_equal("uv from (sqrt2 alpha, 0): b(G) = alpha^2 sinh(-2G)", b_of_G, alpha**2 * sp.sinh(-2 * G))

    Gf = sp.Function("G")
    s_of_tau = -Gf(ell * tau) / ell
    ds = sp.diff(s_of_tau, tau).doit()
    ds = ds.replace(lambda e: isinstance(e, sp.Subs), lambda e: g)  # dG/dt = g at t = ell tau
    d.check_equal("s = -G(ell tau)/ell gives ds/dtau = -g", ds, -g)
    d.define("ds_dtau", -g)

    b_of_s = d.define("b_of_s", sp.exp(-2 * ell) * sp.sinh(2 * ell * s))
    d.check_equal("b = alpha^2 sinh(2 ell s) with alpha = e^{-ell}, G = -ell s",
                  b_of_G.subs({G: -ell * s, alpha: sp.exp(-ell)}), b_of_s)

    sp_ = sp.Symbol("s_pos", positive=True)
    rate = sp.limit(sp.log(b_of_s.subs(s, sp_)) / (2 * ell), ell, sp.oo)
    d.check_equal("ln|b| / ln(1/alpha^2) -> |s| - 1 as alpha -> 0 (b -> 0 iff |s| < 1; |s| > 1 impossible)",
                  rate, sp_ - 1)
    d.check_zero("b is odd in s: sign(b) = sign(s) on the boundary |s| = 1",
                 b_of_s.subs(s, -s) + b_of_s)

    # Before the first jump b = 0, so g = -X^T y/n =: -c1 and s = tau c1; |s| reaches 1 at tau = 1/|c1|.
    tau1 = d.define("first_jump", 1 / sp.Abs(c1))
    cp = sp.Symbol("c_p", positive=True)
    d.check_equal("s(tau_1) = +1 for c1 > 0", (tau1 * c1).subs(c1, cp), 1)
    d.check_equal("s(tau_1) = -1 for c1 < 0", (tau1 * c1).subs(c1, -cp), -1)

    # Simulating uv(alpha) with pm(alpha/sqrt2): same b(G) when G_pm = G_uv/2, i.e. t_pm = t_uv/2.
    p = pm()
    d.check_equal("pm(alpha/sqrt2) at G/2 equals uv(alpha) at G",
                  p["b_of_G"].subs({p.symbols["G"]: G / 2, p.symbols["alpha"]: alpha / sp.sqrt(2)}), b_of_G)
    d.define("pm_time_per_uv_time", sp.Rational(1, 2))
    # dG_pm/dt_pm = g(b), so G_pm = G_uv/2 along the same b-path needs dt_pm = dt_uv/2.
    d.define("uv_time_of_tau", ell * tau)
    d.define("pm_time_of_tau", ell * tau / 2)

    # Fixture convention L_fix = ||Xk - y||^2 = 2n L: GF dk/dt = -2n grad L, so t_fix = t/(2n); limits unchanged.
    k = sp.Function("k")
    t_fix = d.define("fixture_time", t / (2 * n))
    kk = k(2 * n * sp.Symbol("u"))
    d.check_equal("k_fix(u) = k(2n u) has dk_fix/du = 2n k'(2n u) (flow on 2n L)",
                  sp.diff(kk, sp.Symbol("u")).doit().replace(lambda e: isinstance(e, sp.Subs), lambda e: sp.Symbol("kp")),
                  2 * n * sp.Symbol("kp"))
    d.check_equal("fixture time maps back: 2n t_fix = t", 2 * n * t_fix, t)
    return d
