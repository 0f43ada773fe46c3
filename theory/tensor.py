"""CP tensor factorization under gradient flow: component norms, balancedness, unbalanced bounds, init scaling.

Source: Razin, Maman, Cohen 2021 (arXiv 2102.09972), Lemma 1 / Theorem 1 (balanced) and Theorem 2 (unbalanced).
Model: W = sum_r W_r, W_r = w_r^1 (x) ... (x) w_r^N; loss l(W) with gradient tensor Gt = grad l(W) (any loss: every
identity below holds for an arbitrary gradient tensor); GF dw_r^n/dt = -Gt x_{n' != n} w_r^{n'} (contraction with every
other factor). gamma_r = <-Gt, W_r / ||W_r||>.

Derived (every step checked): d/dt ||w_r^n||^2 = -2 <Gt, W_r> for every n (so ||w_r^n||^2 - ||w_r^n'||^2 is conserved);
||W_r|| = prod_n ||w_r^n||; d/dt ||W_r|| = gamma_r ||W_r||^2 sum_n 1/||w_r^n||^2, which is N gamma_r ||W_r||^(2 - 2/N)
when the factors are balanced; with eps = max_n ||w_r^n||^2 - min_n ||w_r^n||^2 (conserved), for gamma_r >= 0
N gamma ||W||^2 / (||W||^(2/N) + eps) <= d||W_r||/dt <= N gamma ||W||^2 / (||W||^(2/N) - eps) (reversed for gamma < 0);
in the slow phase (Gt frozen at its value at W = 0) the factor ODE is homogeneous of degree N - 1, so the flow from
c w_0 is c w(c^(N-2) t): jump times scale exactly as (init scale)^-(N-2) until W stops being negligible.
"""
from __future__ import annotations

from itertools import product as iproduct

import sympy as sp

from .cache import derivation
from .derivation import Derivation

t = sp.Symbol("t", real=True)
rho, gamma, eps_b = sp.symbols("rho gamma epsilon", positive=True)
gam = sp.Symbol("gamma_r", real=True)
Nsym = sp.Symbol("N", positive=True, integer=True)
SOURCE = "Razin, Maman, Cohen 2021, arXiv 2102.09972, Lemma 1, Thm 1 and Thm 2"


def _factors(N: int, dim: int = 2, name: str = "w"):
    return [sp.Matrix(dim, 1, lambda i, _j, n=n: sp.Symbol(f"{name}{n}_{i}", real=True)) for n in range(N)]


def _outer(vs):
    """Entries of v_1 (x) ... (x) v_N as a dict index-tuple -> expression."""
    dim = vs[0].shape[0]
    return {I: sp.Mul(*[vs[n][I[n]] for n in range(len(vs))]) for I in iproduct(range(dim), repeat=len(vs))}


def _contract(Gt, vs, skip):
    """(Gt x_{n != skip} v_n): a vector over mode ``skip``."""
    dim = vs[0].shape[0]
    out = [0] * dim
    for I, g in Gt.items():
        term = g
        for n, v in enumerate(vs):
            if n != skip:
                term *= v[I[n]]
        out[I[skip]] += term
    return sp.Matrix(out)


@derivation
def cp_norms() -> Derivation:
    """Component-norm dynamics of an order-N CP factorization under GF (N = 2, 3, 4 concretely, dims 2)."""
    d = Derivation("tf.cp_norms", SOURCE)
    d.symbols.update(rho=rho, gamma=gam, epsilon=eps_b, N=Nsym)
    for N in (2, 3, 4):
        ws = _factors(N)
        Gt = {I: sp.Symbol("G_" + "".join(map(str, I)), real=True) for I in iproduct(range(2), repeat=N)}
        Wr = _outer(ws)
        inner = sum(Gt[I] * Wr[I] for I in Gt)                    # <Gt, W_r>
        dws = [-_contract(Gt, ws, n) for n in range(N)]           # GF on each factor
        # chain rule: the contraction is the gradient of <Gt, W_r> wrt w^n (so GF on l(W) moves w^n by -it)
        for n in range(N):
            grad_n = sp.Matrix([sp.diff(inner, ws[n][i]) for i in range(2)])
            d.check_zero(f"N={N}: d<Gt, W_r>/dw^{n + 1} = Gt x_(n' != {n + 1}) w^n'",
                         sum(sp.expand(e) ** 2 for e in (grad_n + dws[n])))
            dnorm2 = 2 * (ws[n].T * dws[n])[0]
            d.check_zero(f"N={N}: d/dt ||w^{n + 1}||^2 = -2 <Gt, W_r> (the same for every factor: balancedness "
                         "differences are conserved)", sp.expand(dnorm2 + 2 * inner))
        norms2 = [sum(e**2 for e in w) for w in ws]
        d.check_zero(f"N={N}: ||W_r||^2 = prod_n ||w^n||^2", sp.expand(sum(e**2 for e in Wr.values()) - sp.Mul(*norms2)))
        # d/dt ||W_r|| = sum_n (prod_{n' != n} ||w^n'||) d||w^n||/dt, d||w^n||/dt = (d||w^n||^2/dt) / (2 ||w^n||)
        a = sp.symbols(f"a1:{N + 1}", positive=True)               # a_n = ||w^n||^2
        normW = sp.Mul(*[sp.sqrt(x) for x in a])
        gam_r = -sp.Symbol("I_r", real=True) / normW                # gamma_r = -<Gt, W_r>/||W_r||, I_r = <Gt, W_r>
        dnorm = sum(sp.diff(normW, a[n]) * (-2 * sp.Symbol("I_r", real=True)) for n in range(N))
        d.check_zero(f"N={N}: d||W_r||/dt = gamma_r ||W_r||^2 sum_n 1/||w^n||^2",
                     sp.simplify(dnorm - gam_r * normW**2 * sum(1 / x for x in a)))
        bal = {x: rho ** sp.Rational(2, N) for x in a}              # balanced: ||w^n||^2 = ||W_r||^(2/N)
        d.check_zero(f"N={N}: balanced factors: d||W_r||/dt = N gamma_r ||W_r||^(2 - 2/N)",
                     sp.simplify((gam * normW**2 * sum(1 / x for x in a)).subs(bal) - N * gam * rho ** (2 - sp.Rational(2, N))))
        # slow phase: the factor ODE with Gt frozen is homogeneous of degree N - 1 in the factors jointly
        c = sp.Symbol("c", positive=True)
        scaled = [c * w for w in ws]
        d.check_zero(f"N={N}: Gt x_(n' != n) (c w^n') = c^(N-1) Gt x_(n' != n) w^n' (homogeneity: the flow from c w0 is "
                     "c w(c^(N-2) t))", sum(sp.expand(e) ** 2 for e in (_contract(Gt, scaled, 0) - c ** (N - 1) * _contract(Gt, ws, 0))))
    d.define("dnorm_balanced", Nsym * gam * rho ** (2 - 2 / Nsym))
    # unbalanced bounds (gamma >= 0): a_n in [a_min, a_min + eps] and rho^2 = prod a_n give
    # rho^(2/N) - eps <= a_min <= rho^(2/N) and a_max <= rho^(2/N) + eps; sum 1/a_n is between N/a_max and N/a_min.
    d.define("dnorm_lower", Nsym * gam * rho**2 / (rho ** (2 / Nsym) + eps_b))
    d.define("dnorm_upper", Nsym * gam * rho**2 / (rho ** (2 / Nsym) - eps_b))
    d.check_zero("eps -> 0: both bounds reduce to the balanced rate",
                 sp.simplify(d["dnorm_lower"].subs(eps_b, 0) - d["dnorm_balanced"])
                 + sp.simplify(d["dnorm_upper"].subs(eps_b, 0) - d["dnorm_balanced"]))
    import random
    rnd = random.Random(20210219)
    ok = True
    for _ in range(200):
        N = rnd.choice((2, 3, 4))
        amin = sp.Rational(rnd.randint(1, 400), 100)
        e = sp.Rational(rnd.randint(0, 300), 100)
        a = [amin] + [amin + e * sp.Rational(rnd.randint(0, 100), 100) for _ in range(N - 2)] + [amin + e]
        r2 = sp.Mul(*a)
        s_inv = sum(1 / x for x in a)
        r2N = r2 ** sp.Rational(1, N)
        ok &= bool(s_inv >= N / (r2N + e))
        ok &= bool(r2N - e <= 0 or s_inv <= N / (r2N - e))
    d.check_true("N/(||W||^(2/N) + eps) <= sum_n 1/a_n <= N/(||W||^(2/N) - eps) (exact rationals, 200 sampled "
                 "unbalanced a_n with spread eps)", ok)
    # blow-up of one balanced component with gamma frozen: the first-jump time for init norm rho_0
    x = sp.Symbol("x", positive=True)
    for N in (3, 4):
        sig_x = x ** (-sp.Rational(N, N - 2))
        d.check_zero(f"N={N}: rho = (rho_0^(-(N-2)/N) - (N-2) gamma t)^(-N/(N-2)) solves d rho/dt = N gamma rho^(2-2/N)",
                     sp.simplify(sp.diff(sig_x, x) * (-(N - 2) * gamma) - N * gamma * sig_x ** (2 - sp.Rational(2, N))))
    rho0 = sp.Symbol("rho_0", positive=True)
    d.symbols["rho_0"] = rho0
    d.define("blowup_time", rho0 ** (-(Nsym - 2) / Nsym) / ((Nsym - 2) * gam))
    d.define("init_time_exponent", -(Nsym - 2))   # jump times ~ sigma^-(N-2) for init sigma * Z (homogeneity)
    return d
