"""Diagonal linear networks under gradient flow: conserved quantities, mirror maps, potentials, limits.

Sources: Woodworth et al. 2020 (arXiv 2002.09277) for `pm` and depth D; Azulay et al. 2021
(arXiv 2102.09769) for general init shapes; Even et al. 2023 (arXiv 2302.08982) for `uv`.
Convention (THEORY.md §0): g = dL/db = X^T (X b - y) / n, G(t) = int_0^t g ds.
"""
from __future__ import annotations


import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .cache import derivation
from .derivation import Derivation

t, G, g = sp.symbols("t G g", real=True)
alpha = sp.Symbol("alpha", positive=True)
z, s, b, bstar = sp.symbols("z s b b_star", real=True)


def _flow(b_of: sp.Expr, params: tuple[sp.Symbol, ...]) -> dict[sp.Symbol, sp.Expr]:
    """Gradient flow d(theta)/dt = -dL/dtheta = -g * db/dtheta for a coordinate-wise network."""
    return {p: -g * sp.diff(b_of, p) for p in params}


def _ddt(expr: sp.Expr, flow: dict[sp.Symbol, sp.Expr]) -> sp.Expr:
    return sum(sp.diff(expr, p) * rhs for p, rhs in flow.items())


@derivation
def pm() -> Derivation:
    """`pm` DLN b = w+^2 - w-^2 from w+ = w- = alpha: mirror flow and potential Q_alpha (Woodworth 2020, Thm 1)."""
    d = Derivation("dln.pm", "Woodworth et al. 2020, arXiv 2002.09277, Sec. 4 / Thm 1")
    wp, wm = sp.symbols("w_p w_m", positive=True)
    d.symbols.update(w_p=wp, w_m=wm, alpha=alpha, g=g, G=G, z=z, s=s, b=b)
    b_of = d.define("b", wp**2 - wm**2)
    flow = _flow(b_of, (wp, wm))
    d.check_zero("d/dt (w+ w-) = 0 under GF", _ddt(wp * wm, flow))
    d.check_zero("db/dt = -4 (w+^2 + w-^2) g", _ddt(b_of, flow) + 4 * (wp**2 + wm**2) * g)

    wpG, wmG = alpha * sp.exp(-2 * G), alpha * sp.exp(2 * G)
    d.check_zero("w+(G) = alpha e^{-2G} solves dw+/dG = -2 w+", sp.diff(wpG, G) - (flow[wp] / g).subs(wp, wpG))
    d.check_zero("w-(G) = alpha e^{2G} solves dw-/dG = 2 w-", sp.diff(wmG, G) - (flow[wm] / g).subs(wm, wmG))
    bG = d.define("b_of_G", b_of.subs({wp: wpG, wm: wmG}))
    d.check_equal("b(G) = 2 alpha^2 sinh(-4G)", bG, d.define("b_of_G_sinh", 2 * alpha**2 * sp.sinh(-4 * G)))
    d.check_zero("(w+^2 + w-^2)^2 = b^2 + 4 alpha^4 along GF",
                 ((wpG**2 + wmG**2) ** 2 - (bG**2 + 4 * alpha**4)))
    d.define("weight_sum", sp.sqrt(b**2 + 4 * alpha**4))

    mirror = d.define("mirror", sp.asinh(b / (2 * alpha**2)))
    d.check_zero("d/dG mirror(b(G)) = -4", sp.diff(mirror.subs(b, bG), G) + 4)
    d.check_zero("mirror(b(0)) = 0", mirror.subs(b, bG.subs(G, 0)))

    q = d.define("q", 2 - sp.sqrt(4 + z**2) + z * sp.asinh(z / 2))
    d.check_equal("q'(z) = asinh(z/2)", sp.diff(q, z), sp.asinh(z / 2))
    d.check_zero("q(0) = 0", q.subs(z, 0))
    d.check_equal("q''(z) = 1/sqrt(4 + z^2) > 0", sp.diff(q, z, 2), 1 / sp.sqrt(4 + z**2))
    Q = d.define("Q", alpha**2 * q.subs(z, b / alpha**2))
    d.check_equal("dQ_alpha/db = mirror map", sp.diff(Q, b), mirror)

    link = d.define("link", 2 * alpha**2 * sp.sinh(s))
    d.check_zero("mirror(link(s)) = s", sp.diff(mirror.subs(b, link), s) - 1)
    conj = d.define("conjugate", 2 * alpha**2 * (sp.cosh(s) - 1))
    d.check_zero("Q*(s) = s link(s) - Q(link(s))", s * link - Q.subs(b, link) - conj)
    d.check_equal("dQ*/ds = link", sp.diff(conj, s), link)
    d.define("dual_phi", 2 * alpha**2 * sp.cosh(s))
    return d


@derivation
def uv_general() -> Derivation:
    """`uv` DLN b = u v from any (u0, v0): Bregman potential phi_c, c = |u0^2 - v0^2|/2 (Azulay 2021, Thm 4.1)."""
    d = Derivation("dln.uv", "Azulay et al. 2021, arXiv 2102.09769, Thm 4.1; Even et al. 2023, arXiv 2302.08982")
    u, v, u0, v0 = sp.symbols("u v u_0 v_0", real=True)
    c = sp.Symbol("c", positive=True)
    b0 = sp.Symbol("b_0", real=True)
    d.symbols.update(u=u, v=v, u0=u0, v0=v0, c=c, b0=b0, b=b, s=s, g=g, G=G, alpha=alpha)
    b_of = d.define("b", u * v)
    flow = _flow(b_of, (u, v))
    d.check_zero("d/dt (u^2 - v^2) = 0 under GF", _ddt(u**2 - v**2, flow))
    d.check_zero("db/dt = -(u^2 + v^2) g", _ddt(b_of, flow) + (u**2 + v**2) * g)
    d.check_zero("d/dt (u+v) = -(u+v) g", _ddt(u + v, flow) + (u + v) * g)
    d.check_zero("d/dt (u-v) = (u-v) g", _ddt(u - v, flow) - (u - v) * g)

    p0, m0 = u0 + v0, u0 - v0
    bG = ((p0 * sp.exp(-G)) ** 2 - (m0 * sp.exp(G)) ** 2) / 4
    cval = d.define("c_of_init", sp.Abs(u0**2 - v0**2) / 2)
    d.define("b0_of_init", u0 * v0)
    theta = sp.log(sp.Abs(p0 / m0))
    th0 = d.symbols.setdefault("theta", sp.Symbol("theta", real=True))
    bs = d.define("b_of_G_sinh", c * sp.sinh(th0 - 2 * G))
    at_init = bs.subs({c: cval, th0: theta})
    d.check_zero("b(G) = c sinh(theta - 2G), theta = ln|p0/m0|",
                 (bG - at_init).subs({u0: sp.Rational(3, 2), v0: sp.Rational(1, 3)}).rewrite(sp.exp))
    d.check_zero("b(G) = c sinh(theta - 2G) (u0^2 < v0^2)",
                 (bG - at_init).subs({u0: sp.Rational(-1, 5), v0: sp.Rational(7, 4)}).rewrite(sp.exp))
    d.check_zero("c sinh(theta) = u0 v0", sp.simplify((cval * sp.sinh(theta)).rewrite(sp.exp).subs(
        {u0: sp.Rational(5, 3), v0: sp.Rational(-2, 7)}) - sp.Rational(5, 3) * sp.Rational(-2, 7)))

    phi = d.define("phi", b * sp.asinh(b / c) - sp.sqrt(b**2 + c**2) + c)
    mirror = d.define("mirror", sp.asinh(b / c))
    d.check_equal("phi_c'(b) = asinh(b/c)", sp.diff(phi, b), mirror)
    d.check_zero("phi_c(0) = 0", phi.subs(b, 0))
    d.check_equal("phi_c''(b) = 1/sqrt(b^2 + c^2) > 0", sp.diff(phi, b, 2), 1 / sp.sqrt(b**2 + c**2))
    bregman = d.define("bregman", phi - phi.subs(b, b0) - mirror.subs(b, b0) * (b - b0))
    d.check_zero("d/db D_phi(b, b0) = mirror(b) - mirror(b0)", sp.diff(bregman, b) - (mirror - mirror.subs(b, b0)))

    link = d.define("link", c * sp.sinh(sp.asinh(b0 / c) + s))
    d.check_zero("KKT: mirror(link(s)) - mirror(b0) = s", sp.diff(sp.asinh(link / c), s) - 1)
    d.define("dual_phi", c * sp.cosh(sp.asinh(b0 / c) + s))
    d.check_equal("dual_phi' = link", sp.diff(d["dual_phi"], s), link)
    d.check_equal("standard init u0 = sqrt2 alpha, v0 = 0 gives c = alpha^2",
                  cval.subs({u0: sp.sqrt(2) * alpha, v0: 0}), alpha**2)
    d.check_equal("uv(alpha) and pm(alpha/sqrt2) share the mirror map",
                  mirror.subs(c, alpha**2), pm()["mirror"].subs(alpha, alpha / sp.sqrt(2)))
    return d


def _depth_h(D):
    return (1 - s) ** (-sp.Rational(D) / (D - 2)) - (1 + s) ** (-sp.Rational(D) / (D - 2))


@derivation
def depth(D: int) -> Derivation:
    """Depth-D DLN b = w+^D - w-^D: w^{2-D} linear in G, link h_D and dual potential H_D (Woodworth 2020, Thm 3)."""
    if int(D) != D or D < 3:
        raise ValueError(f"depth D must be an integer >= 3 for this derivation, got {D!r}")
    D = int(D)
    d = Derivation(f"dln.depth{D}", "Woodworth et al. 2020, arXiv 2002.09277, Sec. 5 / Thm 3")
    wp, wm = sp.symbols("w_p w_m", positive=True)
    d.symbols.update(w_p=wp, w_m=wm, alpha=alpha, g=g, G=G, s=s, b=b, z=z)
    b_of = d.define("b", wp**D - wm**D)
    flow = _flow(b_of, (wp, wm))
    d.check_zero(f"d/dt w+^(2-D) = D (D-2) g (D={D})", _ddt(wp ** (2 - D), flow) - D * (D - 2) * g)
    d.check_zero(f"d/dt w-^(2-D) = -D (D-2) g (D={D})", _ddt(wm ** (2 - D), flow) + D * (D - 2) * g)

    sG = -D * (D - 2) * alpha ** (D - 2) * G
    wpG = alpha * (1 - sG) ** sp.Rational(-1, D - 2)
    d.check_zero("w+(G) solves dw+/dG = -D w+^(D-1)", sp.diff(wpG, G) - (flow[wp] / g).subs(wp, wpG))
    h = d.define("h", _depth_h(D))
    d.check_zero("b(G) = alpha^D h_D(s(G)), s = -D(D-2) alpha^(D-2) G",
                 (wpG**D - (alpha * (1 + sG) ** sp.Rational(-1, D - 2)) ** D) - alpha**D * h.subs(s, sG))
    d.define("link", alpha**D * h)
    p = sp.Rational(D, D - 2)
    h_stable = d.define("h_stable", expm1(-p * log1p(-s)) - expm1(-p * log1p(s)))
    d.check_equal("h_D = expm1(-p log1p(-s)) - expm1(-p log1p(s)) (no cancellation at small s)",
                  sp.expand_func(h_stable), h)
    H = d.define("H", sp.Rational(D - 2, 2) * ((1 - s) ** sp.Rational(-2, D - 2) + (1 + s) ** sp.Rational(-2, D - 2)))
    d.check_equal("H_D'(s) = h_D(s)", sp.diff(H, s), h)
    dh = d.define("dh", sp.diff(h, s))
    d.check_true("h_D'(s) > 0 on (-1, 1) (strictly convex dual)", all(dh.subs(s, x) > 0 for x in
                 (sp.Rational(-9, 10), 0, sp.Rational(1, 2), sp.Rational(99, 100))))
    d.check_zero("h_D(0) = 0", h.subs(s, 0))
    d.define("dual_phi", alpha**D * H)

    # Potential q_D = int h^{-1}: parametrized by s, z = h(s), q_D = z s - H(s) + H(0) (Legendre).
    qd_param = d.define("q_of_s", h * s - H + H.subs(s, 0))
    d.check_zero("dq_D/dz = h^{-1}(z): (dq/ds)/(dz/ds) = s", sp.diff(qd_param, s) - s * dh)
    eps = sp.Symbol("epsilon", positive=True)
    ratio = ((qd_param - h) / h ** sp.Rational(2, D)).subs(s, 1 - eps)
    lim = sp.limit(ratio, eps, 0, "+")
    d.check_equal("q_D(z) = z - (D/2) z^(2/D) + o(z^(2/D)) as z -> oo", lim, -sp.Rational(D, 2))
    d.define("l1_correction", -sp.Rational(D, 2) * alpha ** (D - 2) * sp.Abs(b) ** sp.Rational(2, D))
    d.define("rate_potential", sp.Integer(D - 2))
    # Off-support coordinates stay O(alpha^D): h_D is bounded on |s| <= s_max < 1.
    d.define("rate_solution", sp.Integer(D))
    return d


@derivation
def limits() -> Derivation:
    """Series of Q_alpha: alpha -> inf gives ||b||^2/(4 alpha^2) (min-l2), alpha -> 0 gives ln(1/alpha^2) ||b||_1."""
    d = Derivation("dln.limits", "Woodworth et al. 2020, arXiv 2002.09277, Thm 2")
    q = pm()["q"]
    L = sp.Symbol("L", positive=True)
    bp = sp.Symbol("b", positive=True)
    d.symbols.update(L=L, z=z, alpha=alpha)
    ser = sp.series(q, z, 0, 7).removeO()
    d.check_equal("q(z) = z^2/4 - z^4/192 + z^6/2560 + O(z^8)", ser, z**2 / 4 - z**4 / 192 + z**6 / 2560)
    d.define("small_z", ser)
    QL = sp.exp(-L) * q.subs(z, bp * sp.exp(L))
    coef = sp.limit(L * (QL / L - bp), L, sp.oo)
    d.check_equal("Q_alpha(b)/L = |b| + (|b| ln|b| - |b|)/L + o(1/L), L = ln(1/alpha^2)", coef, bp * sp.log(bp) - bp)
    d.define("l1_correction", (sp.Abs(b) * sp.log(sp.Abs(b)) - sp.Abs(b)))

    # Solution rates. Small alpha: b_i = 2 alpha^2 sinh(L s_i + v_i); off support |s_i| < 1.
    si = sp.Symbol("s_i", positive=True)
    vi = sp.Symbol("v_i", real=True)
    off = sp.log(2 * sp.exp(-L) * sp.sinh(L * si + vi))
    lim = sp.limit(off / L, L, sp.oo)
    d.check_equal("ln|b_i| / ln(1/alpha^2) -> |s_i| - 1 off the support", lim, si - 1)
    d.define("rate_small_alpha", 2 * (1 - sp.Abs(s)))
    # Large alpha: b = 2 alpha^2 sinh(u1/alpha^2 + u3/alpha^6), leading correction alpha^-4.
    u1, u3 = sp.symbols("u1 u3", real=True)
    x = sp.Symbol("x", positive=True)  # x = 1/alpha^2
    expansion = sp.series((2 / x) * sp.sinh(u1 * x + u3 * x**3), x, 0, 3).removeO()
    d.check_equal("2 alpha^2 sinh(u) = 2 u1 + (u1^3/3 + 2 u3) alpha^-4 + O(alpha^-8)",
                  sp.expand(expansion), 2 * u1 + (u1**3 / 3 + 2 * u3) * x**2)
    d.define("rate_large_alpha", sp.Integer(4))
    return d


@derivation
def isotropic() -> Derivation:
    """Isotropic design H = I (`pm`): db/dt = -4 sqrt(b^2 + 4 alpha^4)(b - b*) solved in closed form (Riccati in z = e^phi)."""
    d = Derivation("dln.isotropic", "Woodworth et al. 2020, arXiv 2002.09277 (GF of a pm DLN with H = I)")
    c = sp.Symbol("c", positive=True)  # c = 2 alpha^2
    zz, T = sp.symbols("z T", positive=True)
    d.symbols.update(b=b, b_star=bstar, alpha=alpha, t=t, c=c)
    rhs_b = -4 * pm()["weight_sum"] * (b - bstar)
    d.check_equal("db/dt along H = I equals -4 (w+^2 + w-^2) g with g = b - b*",
                  rhs_b, -4 * sp.sqrt(b**2 + 4 * alpha**4) * (b - bstar))
    # phi = asinh(b/c), z = e^phi: dz/dt = -2c (z - z+)(z - z-)
    phi = sp.asinh(b / c)
    dphi = sp.simplify(sp.diff(phi, b) * rhs_b.subs(alpha, sp.sqrt(c / 2)))
    d.check_equal("d(phi)/dt = 4 (b* - b)", dphi, 4 * (bstar - b))
    b_of_z = c * (zz - 1 / zz) / 2
    d.check_zero("b = c sinh(ln z)", b_of_z - c * sp.sinh(sp.log(zz)))
    dz = sp.expand(zz * 4 * (bstar - b_of_z))
    r = sp.asinh(bstar / c)
    zp, zm = sp.exp(r), -sp.exp(-r)
    d.check_zero("dz/dt = -2c (z - z+)(z - z-), z+ = e^{asinh(b*/c)}, z- = -1/z+",
                 (dz + 2 * c * (zz - zp) * (zz - zm)).rewrite(sp.exp).subs(bstar, c * sp.sinh(sp.Symbol("r"))).rewrite(sp.exp).simplify())
    zp_s, zm_s = sp.symbols("z_p z_m", real=True)
    integral = sp.integrate(sp.apart(1 / (-2 * c * (zz - zp_s) * (zz - zm_s)), zz), zz)
    t_of_z = sp.simplify(integral - integral.subs(zz, 1))
    d.check_zero("dt/dz = 1/(dz/dt)", sp.simplify(sp.diff(t_of_z, zz) * (-2 * c * (zz - zp_s) * (zz - zm_s)) - 1))
    lam = 2 * c * (zp_s - zm_s)
    K = (1 - zp_s) / (1 - zm_s)
    E = sp.exp(-lam * T)
    z_of_t = (zp_s - zm_s * K * E) / (1 - K * E)
    d.check_zero("z(t) solves the Riccati ODE", sp.simplify(sp.diff(z_of_t, T) + 2 * c * (z_of_t - zp_s) * (z_of_t - zm_s)))
    d.check_zero("z(0) = 1", sp.simplify(z_of_t.subs(T, 0) - 1))
    d.check_zero("t(z(t)) = t", sp.simplify(sp.expand_log(t_of_z.subs(zz, z_of_t).subs({zp_s: 3, zm_s: -sp.Rational(1, 3), c: 2}), force=True) - T))
    subs = {zp_s: zp, zm_s: zm}
    d.define("z_of_t", z_of_t.subs(subs).subs(T, t))
    d.define("t_of_b", t_of_z.subs(subs).subs(zz, sp.exp(phi)))
    d.define("rate", sp.simplify((lam.subs(subs)).rewrite(sp.exp)))
    b_t = d.define("b_of_t", (c * (z_of_t - 1 / z_of_t) / 2).subs(subs).subs(T, t))
    d.check_zero("b(0) = 0", sp.simplify(b_t.subs(t, 0)))
    return d
