"""The l1 phase transition: statistical dimension of the l1 descent cone (Amelunxen, Lotz, McCoy, Tropp 2014).

Exact recovery of an s-sparse b* in R^d from n Gaussian measurements y = X b* by min ||b||_1 s.t. Xb = y fails
exactly when null(X) meets the descent cone D of ||.||_1 at b*. Conic kinematics (ALMT 2014, arXiv 1303.6672,
Thm I / Prop 4.5 / Sec. 5) give, with V the intrinsic-volume random variable of D (P(V = k) = v_k(D)):

- statistical dimension delta(D) = E V = E dist^2(g, cone d||b*||_1), g ~ N(0, I_d);
- Crofton: P(failure at n measurements) = 2 (v_{n+1} + v_{n+3} + ...);
- the inf formula  psi(s, d) = inf_{tau >= 0} F(tau),  F = s (1 + tau^2) + (d - s) sqrt(2/pi) J(tau),
  J(tau) = int_tau^oo (u - tau)^2 e^{-u^2/2} du, is E dist^2(g, tau d||b*||_1) minimized outside the expectation,
  so psi >= delta(D) (Jensen), and ALMT Prop 4.5 bounds the gap by 2 sqrt(d/s);
- Thm II: success probability <= eta below n = delta - a_eta sqrt(d) and >= 1 - eta above delta + a_eta sqrt(d),
  a_eta = sqrt(8 ln(4/eta)): the transition has width O(sqrt(d)).

This module derives J in closed form, the objective's derivatives and convexity, the Gaussian expectations behind
each term, and the Crofton bookkeeping E[recovery threshold] = delta(D) + 1/2 used by verify.claims.phase.
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation

tau = sp.Symbol("tau", positive=True)
u, g = sp.symbols("u g", real=True)
s, d = sp.symbols("s d", nonnegative=True)
eta = sp.Symbol("eta", positive=True)

SOURCE = "Amelunxen, Lotz, McCoy, Tropp 2014, arXiv 1303.6672, Thm I-II, Prop 4.5, Sec. 5 (Crofton formula)"


def _erf_form(expr: sp.Expr) -> sp.Expr:
    return sp.expand(sp.sympify(expr).rewrite(sp.erf))


@derivation
def l1_descent() -> Derivation:
    """Closed form of the ALMT integrand, the objective F(tau; s, d), its derivatives, convexity and edge values."""
    D = Derivation("phase.l1_descent", SOURCE)
    D.symbols.update(tau=tau, s=s, d=d, u=u, g=g, eta=eta)
    # J(tau) = int_tau^oo (u - tau)^2 e^{-u^2/2} du: sympy integrates, the closed form is checked against it.
    J_int = sp.integrate((u - tau) ** 2 * sp.exp(-u**2 / 2), (u, tau, sp.oo))
    J = D.define("J", sp.sqrt(sp.pi / 2) * (1 + tau**2) * sp.erfc(tau / sp.sqrt(2)) - tau * sp.exp(-tau**2 / 2))
    D.check_zero("J(tau) = sqrt(pi/2)(1 + tau^2) erfc(tau/sqrt2) - tau e^{-tau^2/2} (sympy's integral)",
                 _erf_form(J_int - J))
    D.check_equal("J(0) = int_0^oo u^2 e^{-u^2/2} du = sqrt(pi/2)",
                  sp.limit(J, tau, 0, "+"), sp.integrate(u**2 * sp.exp(-u**2 / 2), (u, 0, sp.oo)))
    K_int = sp.integrate((u - tau) * sp.exp(-u**2 / 2), (u, tau, sp.oo))
    K = D.define("K", sp.exp(-tau**2 / 2) - tau * sp.sqrt(sp.pi / 2) * sp.erfc(tau / sp.sqrt(2)))
    D.check_zero("K(tau) = int_tau^oo (u - tau) e^{-u^2/2} du = e^{-tau^2/2} - tau sqrt(pi/2) erfc(tau/sqrt2)",
                 _erf_form(K_int - K))
    D.check_zero("J'(tau) = -2 K(tau)", _erf_form(sp.diff(J, tau) + 2 * K))
    D.check_zero("J''(tau) = 2 sqrt(pi/2) erfc(tau/sqrt2) > 0",
                 _erf_form(sp.diff(J, tau, 2) - 2 * sp.sqrt(sp.pi / 2) * sp.erfc(tau / sp.sqrt(2))))
    D.check_equal("J(tau) ~ 2 e^{-tau^2/2} / tau^3 as tau -> oo (the off-support term vanishes)",
                  sp.limit(tau**3 * sp.exp(tau**2 / 2) * J, tau, sp.oo), 2)

    # Each term of F is a Gaussian expectation at fixed tau (the distance to tau * subdifferential, coordinatewise).
    phi = sp.exp(-g**2 / 2) / sp.sqrt(2 * sp.pi)
    D.check_equal("on the support: E (g - tau)^2 = 1 + tau^2",
                  sp.integrate((g - tau) ** 2 * phi, (g, -sp.oo, sp.oo)), 1 + tau**2)
    D.check_zero("off the support: E (|g| - tau)_+^2 = sqrt(2/pi) J(tau)",
                 _erf_form(2 * sp.integrate((g - tau) ** 2 * phi, (g, tau, sp.oo)) - sp.sqrt(2 / sp.pi) * J))

    F = D.define("F", s * (1 + tau**2) + (d - s) * sp.sqrt(2 / sp.pi) * J)
    dF = D.define("dF", 2 * s * tau - 2 * (d - s) * sp.sqrt(2 / sp.pi) * K)
    D.check_zero("F'(tau) = 2 s tau - 2 (d - s) sqrt(2/pi) K(tau)", _erf_form(sp.diff(F, tau) - dF))
    d2F = D.define("d2F", 2 * s + 2 * (d - s) * sp.erfc(tau / sp.sqrt(2)))
    D.check_zero("F''(tau) = 2 s + 2 (d - s) erfc(tau/sqrt2): > 0 for d > 0, 0 <= s <= d (F strictly convex)",
                 _erf_form(sp.diff(F, tau, 2) - d2F))
    D.check_equal("F'(0) = -2 (d - s) sqrt(2/pi) < 0 for s < d: the minimizer is tau* > 0",
                  sp.limit(dF, tau, 0, "+"), -2 * (d - s) * sp.sqrt(2 / sp.pi))
    D.check_equal("F(0) = d (tau = 0 charges every coordinate its full variance)", sp.limit(F, tau, 0, "+"), d)
    D.check_equal("s = d: F = d (1 + tau^2), minimum d at tau = 0", F.subs(s, d), d * (1 + tau**2))
    D.check_equal("s = 0: F -> 0 as tau -> oo (b* = 0: the descent cone is {0}, delta = 0)",
                  sp.limit(F.subs(s, 0), tau, sp.oo), 0)
    D.define("almt_a", sp.sqrt(8 * sp.log(4 / eta)))
    return D


@derivation
def crofton(dim: int = 9) -> Derivation:
    """Mean recovery threshold from the Crofton formula: sum_{n >= 0} P(fail at n) = delta(D) + 1/2.

    With P(fail at n) = 2 h_{n+1}, h_k = v_k + v_{k+2} + ..., the sum counts v_j with weight 2 ceil(j/2) = j + [j odd];
    the Gauss-Bonnet relation sum_{j odd} v_j = 1/2 (D not a subspace) gives delta + 1/2. Checked with symbolic
    intrinsic volumes v_0..v_dim (the bookkeeping does not depend on dim).
    """
    if int(dim) != dim or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    dim = int(dim)
    D = Derivation(f"phase.crofton{dim}", SOURCE)
    v = sp.symbols(f"v_0:{dim + 1}", nonnegative=True)
    h = {k: sum(v[j] for j in range(k, dim + 1, 2)) for k in range(dim + 2)}
    fail = [2 * h[n + 1] for n in range(dim + 1)]
    mean = sp.expand(sum(fail))
    delta = sum(j * v[j] for j in range(dim + 1))
    odd = sum(v[j] for j in range(1, dim + 1, 2))
    D.check_equal("sum_n 2 h_{n+1} = sum_j j v_j + sum_{j odd} v_j", mean, delta + odd)
    D.check_equal("P(fail at n = 0) = 2 sum_{j odd} v_j (= 1 by Gauss-Bonnet)", fail[0], 2 * odd)
    D.check_zero("P(fail at n = dim) = 0", fail[dim])
    half = sp.Symbol("half")
    D.check_equal("E[threshold] = delta + 1/2 once sum_{j odd} v_j = 1/2",
                  (mean - odd + half).subs(half, sp.Rational(1, 2)), delta + sp.Rational(1, 2))
    D.define("mean_threshold_offset", sp.Rational(1, 2))
    return D
