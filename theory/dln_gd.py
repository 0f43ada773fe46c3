"""Diagonal linear networks under gradient descent / SGD with finite steps: the exact multiplicative update.

Source: Even, Pesme, Gunasekar, Flammarion 2023 (arXiv 2302.08982), Thm 1 and Prop. 1 (effective init alpha_k
and offset b~0); convention THEORY.md §2: x = eta g for `uv`, x = 2 eta g for `pm` and the shared `b = w^2`.
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation
from .dln import uv_general

x, g, eta, S = sp.symbols("x g eta S", real=True)
alpha = sp.Symbol("alpha", positive=True)
P, M = sp.symbols("P M", real=True)
Ap, Am = sp.symbols("A_p A_m", positive=True)  # alpha+^2, alpha-^2
b, s = sp.symbols("b s", real=True)


@derivation
def gd() -> Derivation:
    """Exact GD/SGD update of `uv`, `pm`, `b = w^2`: products of (1 -+ x), alpha_k, b~0 (Even et al. 2023, Thm 1)."""
    d = Derivation("dln.gd", "Even et al. 2023, arXiv 2302.08982, Thm 1 / Prop. 1")
    u, v, wp, wm, w = sp.symbols("u v w_p w_m w", real=True)
    a = sp.Symbol("a", positive=True)
    d.symbols.update(x=x, g=g, eta=eta, S=S, alpha=alpha, A_p=Ap, A_m=Am, b=b, s=s, a=a, P=P, M=M)

    # one step of GD on L(b(theta)): theta+ = theta - eta g db/dtheta (g = dL/db, per coordinate)
    u1, v1 = u - eta * g * sp.diff(u * v, u), v - eta * g * sp.diff(u * v, v)
    d.check_zero("uv: (u+v)+ = (u+v)(1 - eta g)", (u1 + v1) - (u + v) * (1 - eta * g))
    d.check_zero("uv: (u-v)+ = (u-v)(1 + eta g)", (u1 - v1) - (u - v) * (1 + eta * g))
    wp1, wm1 = wp - eta * g * sp.diff(wp**2 - wm**2, wp), wm - eta * g * sp.diff(wp**2 - wm**2, wm)
    d.check_zero("pm: w+ -> w+(1 - 2 eta g)", wp1 - wp * (1 - 2 * eta * g))
    d.check_zero("pm: w- -> w-(1 + 2 eta g)", wm1 - wm * (1 + 2 * eta * g))
    d.check_zero("shared b = w^2: w -> w(1 - 2 eta g)", (w - eta * g * sp.diff(w**2, w)) - w * (1 - 2 * eta * g))
    d.define("x_uv", eta * g)
    d.define("x_pm", 2 * eta * g)

    # products after k steps: u+v = sqrt2 alpha P, u-v = sqrt2 alpha M (uv); b from them
    b_uv = d.define("b_uv_of_PM", ((sp.sqrt(2) * alpha * P) ** 2 - (sp.sqrt(2) * alpha * M) ** 2) / 4)
    d.check_equal("uv init u = sqrt2 alpha, v = 0 gives P = M = 1", (sp.sqrt(2) * alpha + 0) / (sp.sqrt(2) * alpha), 1)
    d.check_equal("b = u v = ((u+v)^2 - (u-v)^2)/4", ((u + v) ** 2 - (u - v) ** 2) / 4, u * v)
    d.check_zero("u^2 + v^2 = ((u+v)^2 + (u-v)^2)/2", u**2 + v**2 - ((u + v) ** 2 + (u - v) ** 2) / 2)

    q = d.define("q", -sp.log(sp.Abs(1 - x**2)))
    qp = d.define("q_plus", -2 * x - 2 * sp.log(sp.Abs(1 - x)))
    qm = d.define("q_minus", 2 * x - 2 * sp.log(sp.Abs(1 + x)))
    pts = [{x: sp.Rational(k, 7)} for k in (-20, -9, -3, 1, 5, 6, 8, 30)]
    d.check_numeric("q+(x) = -2x - ln((1-x)^2) (THEORY §2)", qp - (-2 * x - sp.log((1 - x) ** 2)), pts)
    d.check_numeric("q-(x) = 2x - ln((1+x)^2) (THEORY §2)", qm - (2 * x - sp.log((1 + x) ** 2)), pts)
    d.check_numeric("q+(x) + q-(x) = 2 q(x) (x != +-1)", qp + qm - 2 * q,
                    pts)
    d.check_equal("q(x) = x^2 + O(x^4), q+-(x) = x^2 +- (2/3) x^3 + O(x^4)",
                  sp.series(-2 * x - 2 * sp.log(1 - x), x, 0, 4).removeO(), x**2 + sp.Rational(2, 3) * x**3)
    d.check_equal("q(x) series", sp.series(-sp.log(1 - x**2), x, 0, 4).removeO(), x**2)
    # one step of the statistics: alpha+^2 = alpha^2 P^2 e^{2S}, alpha-^2 = alpha^2 M^2 e^{-2S}, S = sum x
    xr = sp.Symbol("x_r", real=True)
    d.check_zero("step: P^2 e^{2S} -> P^2 e^{2S} exp(-q+(x))  (x < 1)",
                 ((P * (1 - xr)) ** 2 * sp.exp(2 * (S + xr)) - P**2 * sp.exp(2 * S) * sp.exp(-(-2 * xr - sp.log((1 - xr) ** 2)))))
    d.check_zero("step: M^2 e^{-2S} -> M^2 e^{-2S} exp(-q-(x))",
                 ((M * (1 + xr)) ** 2 * sp.exp(-2 * (S + xr)) - M**2 * sp.exp(-2 * S) * sp.exp(-(2 * xr - sp.log((1 + xr) ** 2)))))

    # representation in (alpha+^2, alpha-^2, S): P^2 = A+ e^{-2S}/alpha^2, M^2 = A- e^{2S}/alpha^2
    subsPM = {P: sp.sqrt(Ap) * sp.exp(-S) / alpha, M: sp.sqrt(Am) * sp.exp(S) / alpha}
    b_k = sp.expand(b_uv.subs(subsPM))
    d.check_equal("b_k = (A+ e^{-2S} - A- e^{2S}) / 2", b_k, (Ap * sp.exp(-2 * S) - Am * sp.exp(2 * S)) / 2)
    c_k = d.define("alpha_k_sq", sp.sqrt(Ap * Am))
    d.check_equal("alpha_k^2 = alpha^2 |P M|", c_k, (alpha**2 * sp.Abs(P * M)).subs(subsPM))
    b0t = d.define("b0_tilde", (Ap - Am) / 2)
    theta = d.define("theta", sp.log(Ap / Am) / 2)
    d.check_zero("asinh(b~0 / alpha_k^2) = ln(A+/A-)/2", sp.simplify((sp.asinh(b0t / c_k) - theta).subs({Ap: 5, Am: sp.Rational(2, 7)})))
    d.check_equal("c sinh(theta) = b~0", sp.expand((c_k * sp.sinh(theta)).rewrite(sp.exp)), b0t)
    d.check_equal("b_k = alpha_k^2 sinh(theta - 2S)", sp.expand((c_k * sp.sinh(theta - 2 * S)).rewrite(sp.exp)), b_k)
    d.check_equal("u^2 + v^2 = 2 sqrt(b_k^2 + alpha_k^4) along GD",
                  sp.expand((((sp.sqrt(2) * alpha * P) ** 2 + (sp.sqrt(2) * alpha * M) ** 2) / 2).subs(subsPM)) ** 2,
                  sp.expand(4 * (b_k**2 + c_k**2)))
    # Bregman characterization: b_k is uv_general's link at c = alpha_k^2, b0 = b~0, s = -2S
    U = uv_general()
    link = U["link"].subs({U.symbols["c"]: c_k, U.symbols["b0"]: b0t, U.symbols["s"]: -2 * S})
    d.check_zero("b_k = link_{c=alpha_k^2, b0=b~0}(-2S): KKT of argmin_{Xb=y} D_phi(b, b~0) when S in range(X^T)",
                 (link - b_k).subs({Ap: 3, Am: sp.Rational(1, 5)}).rewrite(sp.exp).simplify())
    psi = d.define("psi", (b * sp.asinh(b / a**2) - sp.sqrt(b**2 + a**4) + a**2) / 2)
    d.check_equal("psi_a = phi_{c=a^2} / 2 (same Bregman minimizer)", psi, U["phi"].subs(U.symbols["c"], a**2) / 2)
    d.define("S_uv", eta * g)        # S = sum_l x_l; with SGD g_l = X_B^T r_B / |B| lies in range(X^T) too
    # pm: w+ = alpha P, w- = alpha M with x = 2 eta g: b = 2 x (uv-form) -> c = 2 alpha_k^2, b0 = 2 b~0
    d.check_equal("pm: b = alpha^2 (P^2 - M^2) = 2 b_uv(P, M)", alpha**2 * (P**2 - M**2), 2 * b_uv)
    d.check_equal("pm: w+^2 + w-^2 = 2 sqrt(b^2/4 + alpha_k^4) = sqrt(b^2 + 4 alpha_k^4)",
                  sp.expand((alpha**2 * (P**2 + M**2)).subs(subsPM)) ** 2, sp.expand((2 * b_k) ** 2 + 4 * c_k**2))
    d.define("pm_scale", sp.Integer(2))
    return d
