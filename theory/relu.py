"""Two-layer ReLU networks at random init along a segment, from the arc-cosine kernels (Cho & Saul 2009).

Network f(x) = m^{-1/2} sum_j a_j relu(w_j . x), a_j ~ N(0, sa^2), w_j ~ N(0, sw^2 I_d); segment
x(t) = x0 + t (x1 - x0), u = (x1 - x0)/||x1 - x0||. Geometry in the plane of x0, x1:
x0 = (r0, 0), x1 = r1 (cos theta, sin theta), 0 < theta < pi (THEORY.md §5, Kubo et al. 2019, arXiv 1903.01997).
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation

theta = sp.Symbol("theta", positive=True)
t = sp.Symbol("t", positive=True)
r0, r1, sa, sw, d = sp.symbols("r0 r1 sa sw d", positive=True)
x1_, x2_, y1_, y2_ = sp.symbols("x_1 x_2 y_1 y_2", real=True)


def _k1_plane(cross, dot):
    """Cho & Saul degree-1 kernel E[relu(w.x) relu(w.y)] for w ~ N(0, sw^2 I), given cross >= 0.

    The angle is atan2(cross, dot), not acos(dot / (|x| |y|)): acos of a rounded argument above 1 is NaN.
    """
    return sw**2 / (2 * sp.pi) * (cross + (sp.pi - sp.atan2(cross, dot)) * dot)


@derivation
def arccos_kernels() -> Derivation:
    """Cho & Saul 2009 (NIPS, Eq. 6) kernels k0 = E[step step], k1 = E[relu relu] and their input derivatives."""
    d_ = Derivation("relu.arccos", "Cho & Saul 2009, 'Kernel methods for deep learning', Eq. (6)-(7)")
    d_.symbols.update(theta=theta, sw=sw, r0=r0, r1=r1)
    k0 = d_.define("k0", (sp.pi - theta) / (2 * sp.pi))
    k1 = d_.define("k1", sw**2 * r0 * r1 / (2 * sp.pi) * (sp.sin(theta) + (sp.pi - theta) * sp.cos(theta)))
    d_.check_equal("k0(0) = P(w.x > 0) = 1/2", k0.subs(theta, 0), sp.Rational(1, 2))
    d_.check_equal("k1(theta=0) = E relu(z)^2 = sw^2 r^2 / 2", k1.subs(theta, 0), sw**2 * r0 * r1 / 2)
    d_.check_zero("k1(theta=pi) = 0 (relu(z) relu(-z) = 0)", k1.subs(theta, sp.pi))
    # dk1/d(cos theta) = sw^2 r0 r1 (pi - theta)/(2 pi) = sw^2 r0 r1 k0: the step kernel is the relu kernel's derivative
    c = sp.Symbol("c")
    k1c = k1.subs(theta, sp.acos(c)).subs(sp.sin(sp.acos(c)), sp.sqrt(1 - c**2))
    d_.check_zero("dk1/dcos(theta) = sw^2 r0 r1 k0",
                  (sp.diff(k1c, c) - sw**2 * r0 * r1 * k0.subs(theta, sp.acos(c))).subs(c, sp.cos(theta))
                  .subs(sp.acos(sp.cos(theta)), theta))

    # Planar Cartesian form: cross = x1 y2 - x2 y1 > 0 and theta = pi/2 - atan(dot/cross) for 0 < theta < pi.
    dot = x1_ * y1_ + x2_ * y2_
    cross = x1_ * y2_ - x2_ * y1_
    k1xy = sw**2 / (2 * sp.pi) * (cross + (sp.pi / 2 + sp.atan(dot / cross)) * dot)
    at = {x1_: r0, x2_: 0, y1_: r1 * sp.cos(theta), y2_: r1 * sp.sin(theta)}

    def at_geometry(e):
        e = e.subs(at)
        return sp.simplify(e.replace(sp.atan, lambda arg: sp.pi / 2 - theta))  # atan(cot theta) on (0, pi)

    d_.check_equal("planar Cartesian k1 = k1(theta)", at_geometry(k1xy), k1)
    # E[s(w.x) s(w.y) w w^T] = d^2 k1 / dx dy (differentiate under the expectation); planar block:
    M = sp.Matrix(2, 2, lambda i, j: at_geometry(sp.diff(k1xy, (x1_, x2_)[i], (y1_, y2_)[j])))
    M = M.applyfunc(sp.simplify)
    d_.check_zero("trace of planar E[s s w w^T] = 2 sw^2 k0 (|w|^2 independent of direction)",
                  M.trace() - 2 * sw**2 * k0)
    d_.check_zero("planar E[s s w w^T] is symmetric", M[0, 1] - M[1, 0])
    d_.define("M00", M[0, 0]); d_.define("M01", M[0, 1]); d_.define("M11", M[1, 1])
    return d_


@derivation
def segment_init() -> Derivation:
    """Kinks, gradient gap and chord deviation of a random two-layer ReLU net on a segment (THEORY.md §5)."""
    K = arccos_kernels()
    d_ = Derivation("relu.segment_init", "Kubo et al. 2019, arXiv 1903.01997; derived from Cho & Saul 2009 kernels")
    d_.symbols.update(theta=theta, t=t, r0=r0, r1=r1, sa=sa, sw=sw, d=d)
    k0, M = K["k0"], sp.Matrix([[K["M00"], K["M01"]], [K["M01"], K["M11"]]])

    # A unit kinks on the open segment iff sign(w.x0) != sign(w.x1): P = 1 - P(both>0) - P(both<0) = 1 - 2 k0.
    p_kink = d_.define("p_kink", sp.simplify(1 - 2 * k0))
    d_.check_equal("P(unit kinks on segment) = theta/pi", p_kink, theta / sp.pi)
    d_.define("kinks_per_unit", p_kink)  # E[#kinks] = m theta/pi: per unit it does not depend on m

    # gap = grad f(x1) - grad f(x0) = m^{-1/2} sum_j a_j (s1_j - s0_j) w_j, independent units, E a^2 = sa^2:
    # E[gap gap^T] = sa^2 E[(s1 - s0)^2 w w^T] = sa^2 (E[s1 ww^T] + E[s0 ww^T] - 2 E[s0 s1 ww^T]),
    # E[s ww^T] = sw^2 I / 2 (w -> -w symmetry). Out of the plane: w_e independent of the signs.
    C_plane = (sa**2 * (sw**2 * sp.eye(2) - 2 * M)).applyfunc(sp.simplify)
    c_out = d_.define("gap_var_out_of_plane", sa**2 * sw**2 * p_kink)
    d_.check_equal("theta = pi (every unit flips): planar per-direction variance = out-of-plane variance",
                   (C_plane.trace() / 2).subs(theta, sp.pi), c_out.subs(theta, sp.pi))
    gap_sq = d_.define("gap_sq", sp.simplify(C_plane.trace() + (d - 2) * c_out))
    d_.check_equal("E||grad f(x1) - grad f(x0)||^2 = sa^2 sw^2 d theta / pi", gap_sq, sa**2 * sw**2 * d * theta / sp.pi)

    dx = sp.Matrix([r1 * sp.cos(theta) - r0, r1 * sp.sin(theta)])
    L2 = sp.simplify(dx.dot(dx))
    along = d_.define("gap_along_var", sp.simplify((dx.T * C_plane * dx)[0, 0] / L2))
    across = d_.define("gap_across_sq", sp.simplify(gap_sq - along))
    d_.check_equal("equal norms: Var(u . gap) = sa^2 sw^2 (theta + sin theta)/pi",
                   along.subs(r1, r0), sa**2 * sw**2 * (theta + sp.sin(theta)) / sp.pi)
    d_.check_zero("E[gap] = 0 so Var = second moment; along + across = E||gap||^2", along + across - gap_sq)
    # in-plane unit normal to u: its own variance (across = this + (d - 2) out-of-plane variances)
    nrm = sp.Matrix([-dx[1], dx[0]])
    d_.define("gap_normal_var", sp.simplify((nrm.T * C_plane * nrm)[0, 0] / L2))
    d_.check_zero("across = in-plane normal variance + (d-2) out-of-plane",
                  across - d_["gap_normal_var"] - (d - 2) * c_out)

    # Chord deviation c(t) = f(x_t) - (1-t) f(x0) - t f(x1); E c = 0, Var = sa^2 * quadratic form in k1.
    xt = ((1 - t) * r0 + t * r1 * sp.cos(theta), t * r1 * sp.sin(theta))
    pts = {"0": (r0, sp.Integer(0)), "t": xt, "1": (r1 * sp.cos(theta), r1 * sp.sin(theta))}
    coef = {"t": 1, "0": -(1 - t), "1": -t}

    def kern(a, b):
        (p1, p2), (q1, q2) = pts[a], pts[b]
        if a == b:
            return sw**2 * (p1**2 + p2**2) / 2
        order = ["0", "t", "1"]  # counter-clockwise: cross of (earlier, later) >= 0 on 0 <= t <= 1
        if order.index(a) > order.index(b):
            (p1, p2), (q1, q2) = (q1, q2), (p1, p2)
        return _k1_plane(p1 * q2 - p2 * q1, p1 * q1 + p2 * q2)

    var_c = sum(coef[a] * coef[b] * kern(a, b) for a in coef for b in coef)
    var_c = d_.define("chord_var", sa**2 * var_c)
    d_.check_zero("Var c(0) = 0", sp.simplify(var_c.subs(t, 0)))
    d_.check_zero("Var c(1) = 0", sp.simplify(var_c.subs(t, 1)))
    d_.check_numeric("theta -> 0: relu linear on a ray, Var c(t) = 0",
                     var_c.subs(theta, sp.Rational(1, 10**30)),
                     [{t: sp.Rational(1, 3), r0: 1, r1: 2, sa: 1, sw: 1}, {t: sp.Rational(3, 4), r0: 3, r1: 1, sa: 2, sw: 1}],
                     tol=1e-20)
    d_.check_numeric("theta = pi, r0 = r1 = r, t < 1/2: c(t) = -t (f(x0) + f(x1)), Var = t^2 sa^2 sw^2 r^2",
                     (var_c - t**2 * sa**2 * sw**2 * r0**2).subs(r1, r0).subs(theta, sp.pi),
                     [{t: sp.Rational(1, 5), r0: 1, sa: 1, sw: 1}, {t: sp.Rational(2, 5), r0: 2, sa: 3, sw: 2}])
    return d_
