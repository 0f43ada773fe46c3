"""Matrix factorization under gradient flow: commuting sensing, deep end-to-end dynamics, det sign, trace norm.

Sources: Gunasekar et al. 2017 (arXiv 1705.09280) for W = U U^T; Arora, Cohen, Hu, Luo 2019
(arXiv 1905.13655) for deep factorizations; Razin & Cohen 2020 (arXiv 2005.06398) for the 2x2 example;
Srebro et al. 2005 and Neyshabur et al. 2014 (arXiv 1412.6614) for the variational trace norm.
Convention (THEORY.md §0): L(W) = sum_i (<A_i, W> - y_i)^2 / (2m), grad(W) = G = sum_i r_i A_i / m,
S_i(t) = int_0^t r_i ds / m, so that G = sum_i A_i dS_i/dt.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .derivation import Derivation

t = sp.Symbol("t", real=True)
alpha = sp.Symbol("alpha", positive=True)
lam, g, G, s, L = sp.symbols("lambda g G s L", real=True)


def _rot(u: sp.Expr) -> sp.Matrix:
    """Rational 2x2 rotation (Weierstrass parametrization), so identities stay rational."""
    c, sn = (1 - u**2) / (1 + u**2), 2 * u / (1 + u**2)
    return sp.Matrix([[c, -sn], [sn, c]])


def _orth3() -> sp.Matrix:
    """A concrete rational 3x3 orthogonal matrix (Cayley transform of a rational skew matrix)."""
    K = sp.Matrix([[0, 1, -2], [-1, 0, 3], [2, -3, 0]]) / 5
    return (sp.eye(3) - K) * (sp.eye(3) + K).inv()


def _zero_matrix(M: sp.Matrix) -> sp.Expr:
    return sum(sp.simplify(sp.together(e)) ** 2 for e in M)


@lru_cache(maxsize=None)
def commuting() -> Derivation:
    """W = U U^T with commuting A_i = Q diag(a_i) Q^T: lambda = alpha^2 exp(-4 a^T S) (Gunasekar 2017, Sec. 3)."""
    d = Derivation("mf.commuting", "Gunasekar et al. 2017, arXiv 1705.09280, Sec. 3 / Thm 1")
    Ssym = sp.Symbol("S", real=True)
    nu = sp.Symbol("nu", real=True)
    d.symbols.update(alpha=alpha, G=G, g=g, lam=lam, L=L, s=s, S=Ssym, nu=nu)

    # General sizes, noncommutative symbols: dU/dt = -2 G U implies dW/dt = -2 (G W + W G).
    n = sp.Symbol("n", integer=True, positive=True)
    Um, Gm = sp.MatrixSymbol("U", n, n), sp.MatrixSymbol("G", n, n)
    dU = -2 * Gm * Um
    dW = dU * Um.T + Um * dU.T
    d.check_true("d(U U^T)/dt = -2 (G W + W G) for dU/dt = -2 G U, G = G^T (any n)",
                 sp.expand((dW - (-2 * (Gm * Um * Um.T + Um * Um.T * Gm.T))).doit()) == sp.ZeroMatrix(n, n)
                 or sp.simplify((dW + 2 * (Gm * Um * Um.T + Um * Um.T * Gm.T)).doit()) == sp.ZeroMatrix(n, n))

    # Per eigenvalue (any size): a b = w^2 DLN on the shared eigenbasis.
    w = sp.Symbol("w", positive=True)
    d.check_zero("w = alpha e^{-2G} solves dw/dG = -2 w", sp.diff(alpha * sp.exp(-2 * G), G) + 2 * alpha * sp.exp(-2 * G))
    lam_G = d.define("lam_of_G", alpha**2 * sp.exp(-4 * G))
    d.check_zero("lambda = w^2 obeys dlambda/dG = -4 lambda", sp.diff(lam_G, G) + 4 * lam_G)
    d.define("lam_of_S", alpha**2 * sp.exp(-4 * Ssym))

    # Concrete cases: Q orthogonal (2x2 rotation with symbolic angle parameter, 3x3 rational), m = 2 sensing.
    for dim, Q in ((2, _rot(sp.Symbol("u", real=True))), (3, _orth3())):
        d.check_zero(f"Q^T Q = I ({dim}x{dim})", _zero_matrix(Q.T * Q - sp.eye(dim)))
        a = sp.Matrix(2, dim, lambda i, j: sp.Symbol(f"a_{i}{j}", real=True))
        S = [sp.Function(f"S_{i}", real=True)(t) for i in range(2)]
        A = [Q * sp.diag(*a.row(i)) * Q.T for i in range(2)]
        d.check_zero(f"A_1 A_2 = A_2 A_1 ({dim}x{dim})", _zero_matrix(A[0] * A[1] - A[1] * A[0]))
        Gt = sum((A[i] * sp.diff(S[i], t) for i in range(2)), sp.zeros(dim, dim))
        gj = [sum(a[i, j] * S[i] for i in range(2)) for j in range(dim)]
        U = Q * sp.diag(*[alpha * sp.exp(-2 * x) for x in gj]) * Q.T
        d.check_zero(f"U(t) = Q diag(alpha e^(-2 a^T S)) Q^T solves dU/dt = -2 G U ({dim}x{dim})",
                     _zero_matrix(sp.diff(U, t) + 2 * Gt * U))
        W = Q * sp.diag(*[alpha**2 * sp.exp(-4 * x) for x in gj]) * Q.T
        d.check_zero(f"W(t) = U U^T = Q diag(alpha^2 e^(-4 a^T S)) Q^T ({dim}x{dim})", _zero_matrix(U * U.T - W))
        d.check_zero(f"W(t) solves dW/dt = -2 (G W + W G) ({dim}x{dim})",
                     _zero_matrix(sp.diff(W, t) + 2 * (Gt * W + W * Gt)))

    # Entropy potential: the mirror map is linear in S, so the limit is its Bregman minimizer.
    psi = d.define("psi", lam * sp.log(lam / alpha**2) - lam)
    mirror = d.define("mirror", sp.log(lam / alpha**2))
    d.check_equal("psi'(lambda) = ln(lambda / alpha^2)", sp.diff(psi, lam), mirror)
    d.check_equal("psi''(lambda) = 1/lambda > 0", sp.diff(psi, lam, 2), 1 / lam)
    d.check_zero("mirror(lambda(S)) = -4 S", sp.expand_log(mirror.subs(lam, d["lam_of_S"]), force=True) + 4 * Ssym)
    d.check_zero("mirror(lambda(0)) = 0 = psi'(alpha^2) (init is the potential's minimizer)",
                 mirror.subs(lam, alpha**2))
    d.define("link", alpha**2 * sp.exp(nu))
    d.check_zero("KKT psi'(lambda) = nu  <=>  lambda = alpha^2 e^nu", mirror.subs(lam, d["link"]) - nu)
    d.define("dual_phi", alpha**2 * sp.exp(nu))
    d.check_equal("dual potential derivative = link", sp.diff(d["dual_phi"], nu), d["link"])

    # alpha -> 0: psi / L = lambda + (lambda ln lambda - lambda)/L exactly, L = ln(1/alpha^2): minimum trace.
    lp = sp.Symbol("lambda", positive=True)
    Lp = sp.Symbol("L", positive=True)
    lhs = (psi.subs(lam, lp) / Lp).subs(alpha, sp.exp(-Lp / 2))
    d.check_zero("psi_alpha(lambda)/L = lambda + (lambda ln lambda - lambda)/L, L = ln(1/alpha^2)",
                 sp.expand(sp.expand_log(lhs - (lp + (lp * sp.log(lp) - lp) / Lp), force=True)))
    # Off-support eigenvalues: lambda_j = alpha^2 exp(L s_j + v_j) with s_j = (a^T nu*)_j < 1.
    sj, vj = sp.Symbol("s_j", positive=True), sp.Symbol("v_j", real=True)
    off = sp.log(sp.exp(-Lp) * sp.exp(Lp * sj + vj))
    d.check_equal("ln lambda_j / ln(1/alpha^2) -> s_j - 1 off the support", sp.limit(off / Lp, Lp, sp.oo), sj - 1)
    d.define("rate_small_alpha", 2 * (1 - s))
    # Trace gap of any feasible lambda: sum_j lambda_j - nu^T a lambda = sum_j (1 - s_j) lambda_j.
    lv = sp.Matrix(sp.symbols("l0:3", positive=True))
    av = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"a_{i}{j}", real=True))
    nv = sp.Matrix(sp.symbols("n0:2", real=True))
    sv = av.T * nv
    d.check_zero("tr W - y^T nu* = sum_j (1 - s_j) lambda_j (so the gap has the off-support rate)",
                 sp.expand(sum(lv) - (nv.T * av * lv)[0] - sum((1 - sv[j]) * lv[j] for j in range(3))))
    return d


def _balanced(N: int, dim: int = 2):
    """Balanced 2x2 factors W_j = V_{j+1} diag(p^1) V_j^T, so W = V_{N+1} diag(p^N) V_1^T (rational)."""
    us = sp.symbols(f"u1:{N + 2}", real=True)
    ps = sp.symbols("p1:3", positive=True)
    V = [_rot(u) for u in us]
    D1 = sp.diag(*ps)
    Ws = [V[j + 1] * D1 * V[j].T for j in range(N)]
    return Ws, V, ps


def _prod(Ms, dim=2):
    out = sp.eye(dim)
    for M in Ms:
        out = M * out
    return out


def _factor_grads(Ws, Gm):
    """dW_j/dt = -A_j^T G B_j^T with A_j = W_N...W_{j+1}, B_j = W_{j-1}...W_1 (chain rule)."""
    N = len(Ws)
    return [-(_prod(Ws[j + 1:]).T * Gm * _prod(Ws[:j]).T) for j in range(N)]


@lru_cache(maxsize=None)
def deep(N: int) -> Derivation:
    """Depth-N factorization W = W_N...W_1: balancedness, end-to-end ODE, singular values, det sign (Arora 2019)."""
    if int(N) != N or N < 2:
        raise ValueError(f"depth N must be an integer >= 2, got {N!r}")
    N = int(N)
    d = Derivation(f"mf.deep{N}", "Arora, Cohen, Hu, Luo 2019, arXiv 1905.13655, Thm 1 / Thm 3; "
                                  "Razin & Cohen 2020, arXiv 2005.06398, Lemma (det sign)")
    Gm = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"g{i}{j}", real=True))

    # Balancedness conserved: generic (non-balanced) 2x2 factors, polynomial identity.
    Wg = [sp.Matrix(2, 2, lambda i, j, k=k: sp.Symbol(f"w{k}_{i}{j}", real=True)) for k in range(N)]
    dWg = _factor_grads(Wg, Gm)
    for j in range(N - 1):
        dbal = (dWg[j + 1].T * Wg[j + 1] + Wg[j + 1].T * dWg[j + 1]) - (dWg[j] * Wg[j].T + Wg[j] * dWg[j].T)
        d.check_zero(f"d/dt (W_{j + 2}^T W_{j + 2} - W_{j + 1} W_{j + 1}^T) = 0 under GF (any 2x2 factors)",
                     sum(sp.expand(e) ** 2 for e in dbal))
        Wdet = Wg[j]
        ddet = sum(sp.diff(Wdet.det(), Wdet[a, b]) * dWg[j][a, b] for a in range(2) for b in range(2))
        d.check_zero(f"Jacobi: d/dt det W_{j + 1} = tr(adj(W_{j + 1}) dW_{j + 1}/dt)",
                     sp.expand(ddet - (Wdet.adjugate() * dWg[j]).trace()))

    # Balanced factors: end-to-end ODE with fractional powers, singular values, det proportionality.
    Ws, V, ps = _balanced(N)
    W = _prod(Ws)
    Sig = sp.diag(*[p**N for p in ps])
    d.check_zero("balanced W = V_{N+1} Sigma V_1^T", _zero_matrix(W - V[N] * Sig * V[0].T))
    for j in range(N - 1):
        d.check_zero(f"balanced: W_{j + 2}^T W_{j + 2} = W_{j + 1} W_{j + 1}^T",
                     _zero_matrix(Ws[j + 1].T * Ws[j + 1] - Ws[j] * Ws[j].T))

    def WWt_pow(k):  # (W W^T)^{k/N}
        return V[N] * sp.diag(*[p ** (2 * k) for p in ps]) * V[N].T

    def WtW_pow(k):  # (W^T W)^{k/N}
        return V[0] * sp.diag(*[p ** (2 * k) for p in ps]) * V[0].T

    d.check_zero("(W W^T)^{1/N} to the N-th power is W W^T", _zero_matrix(_prod([WWt_pow(1)] * N) - W * W.T))
    d.check_zero("(W^T W)^{1/N} to the N-th power is W^T W", _zero_matrix(_prod([WtW_pow(1)] * N) - W.T * W))
    dWs = _factor_grads(Ws, Gm)
    chain = sum((_prod(Ws[j + 1:]) * dWs[j] * _prod(Ws[:j]) for j in range(N)), sp.zeros(2, 2))
    e2e = -sum((WWt_pow(N - j) * Gm * WtW_pow(j - 1) for j in range(1, N + 1)), sp.zeros(2, 2))
    d.check_zero(f"end-to-end: dW/dt = -sum_j (W W^T)^((N-j)/N) G (W^T W)^((j-1)/N) (N={N})",
                 _zero_matrix(chain - e2e))
    for r in range(2):
        ur, vr = V[N][:, r], V[0][:, r]
        dsig = (ur.T * e2e * vr)[0]
        d.check_zero(f"d sigma_{r + 1}/dt = -N sigma^(2-2/N) <G, u v^T> (sigma = p^N)",
                     sp.simplify(sp.together(dsig + N * ps[r] ** (2 * N - 2) * (ur.T * Gm * vr)[0])))
        # u_r^T dW v_r is d sigma_r/dt: differentiate the SVD along a curve with fixed bases' derivative terms
        # vanishing (u^T du = 0, v^T dv = 0) -- checked on W(eps) = V_{N+1}(Sigma + eps E)V_1^T.
    # det W_j proportional to itself with a bounded coefficient c_j = -tr(Sigma^((N-2)/N) V_{N+1}^T G V_1).
    cj = -(sp.diag(*[p ** (N - 2) for p in ps]) * V[N].T * Gm * V[0]).trace()
    for j in range(N):
        ddet = (Ws[j].adjugate() * dWs[j]).trace()
        d.check_zero(f"d/dt det W_{j + 1} = c det W_{j + 1}, c = -tr(Sigma^((N-2)/N) V_(N+1)^T G V_1) bounded",
                     sp.simplify(sp.together(ddet - cj * Ws[j].det())))
    ddetW = (W.adjugate() * e2e).trace()
    d.check_zero("d/dt det W = N c det W (end-to-end)", sp.simplify(sp.together(ddetW - N * cj * W.det())))
    d.define("dlogdet_coef", sp.Integer(N))
    return d


@lru_cache(maxsize=None)
def svd2(N: int) -> Derivation:
    """2x2 end-to-end flow in SVD coordinates W = R(phi) diag(e^l1, e^l2) R(psi)^T D: the det sign is structural."""
    if int(N) != N or N < 2:
        raise ValueError(f"depth N must be an integer >= 2, got {N!r}")
    N = int(N)
    d = Derivation(f"mf.svd2_{N}", "Arora et al. 2019, arXiv 1905.13655 (end-to-end ODE); Razin & Cohen 2020, "
                                   "arXiv 2005.06398, Sec. 3 (2x2 completion)")
    l1, l2, phi, psi = sp.symbols("l1 l2 phi psi", real=True)
    h = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"h{i + 1}{j + 1}", real=True))  # h = U^T G V
    d.symbols.update(l1=l1, l2=l2, phi=phi, psi=psi, **{f"h{i + 1}{j + 1}": h[i, j] for i in range(2) for j in range(2)})
    ls = (l1, l2)
    M = sp.Matrix(2, 2, lambda r, c: -h[r, c] * sum(sp.exp((2 * (N - j) * ls[r] + 2 * (j - 1) * ls[c]) / sp.Integer(N))
                                                    for j in range(1, N + 1)))
    s1, s2 = sp.exp(l1), sp.exp(l2)
    a_, b_ = sp.symbols("a b", real=True)
    sol = sp.solve([sp.Eq(M[0, 1], -a_ * s2 + b_ * s1), sp.Eq(M[1, 0], a_ * s1 - b_ * s2)], [a_, b_], dict=True)[0]
    dphi = d.define("dphi", sp.simplify(sol[a_]))
    dpsi = d.define("dpsi", sp.simplify(sol[b_]))
    dl1 = d.define("dl1", sp.simplify(M[0, 0] / s1))
    dl2 = d.define("dl2", sp.simplify(M[1, 1] / s2))
    d.check_equal("d l_r/dt = -N sigma_r^(1-2/N) h_rr", dl1, -N * sp.exp((1 - sp.Rational(2, N)) * l1) * h[0, 0])

    def R(x):
        return sp.Matrix([[sp.cos(x), -sp.sin(x)], [sp.sin(x), sp.cos(x)]])

    Wsvd = R(phi) * sp.diag(s1, s2) * R(psi).T
    chain = (sp.diff(Wsvd, phi) * dphi + sp.diff(Wsvd, psi) * dpsi + sp.diff(Wsvd, l1) * dl1 + sp.diff(Wsvd, l2) * dl2)
    Gw = R(phi) * h * R(psi).T
    pw = lambda x, k: x ** sp.Rational(2 * k, N)  # noqa: E731
    WWt = lambda k: R(phi) * sp.diag(pw(s1, k), pw(s2, k)) * R(phi).T  # noqa: E731
    WtW = lambda k: R(psi) * sp.diag(pw(s1, k), pw(s2, k)) * R(psi).T  # noqa: E731
    e2e = -sum((WWt(N - j) * Gw * WtW(j - 1) for j in range(1, N + 1)), sp.zeros(2, 2))
    diff = (R(phi).T * (chain - e2e) * R(psi)).applyfunc(lambda e: sp.simplify(sp.powsimp(sp.expand(e), force=True)))
    pts = [{phi: sp.Rational(3, 10), psi: -sp.Rational(7, 5), l1: sp.Rational(6, 5), l2: -sp.Rational(9, 4),
            h[0, 0]: sp.Rational(1, 3), h[0, 1]: -2, h[1, 0]: sp.Rational(5, 7), h[1, 1]: sp.Rational(-3, 2)},
           {phi: 2, psi: sp.Rational(1, 9), l1: -1, l2: sp.Rational(1, 2),
            h[0, 0]: -1, h[0, 1]: sp.Rational(2, 3), h[1, 0]: 4, h[1, 1]: sp.Rational(1, 5)}]
    if all(e == 0 for e in diff):
        d.identities.append("chain rule through (phi, psi, l1, l2) reproduces the end-to-end ODE")
    else:
        d.check_numeric("chain rule through (phi, psi, l1, l2) reproduces the end-to-end ODE",
                        sum(e**2 for e in diff), pts)
    # det W = e^{l1 + l2} det D: its sign is a constant of the coordinates.
    d.check_zero("det(R(phi) diag(e^l) R(psi)^T) = e^(l1 + l2) > 0", sp.simplify(Wsvd.det() - sp.exp(l1 + l2)))
    # Growth law of the 2x2 completion (observed W12 = W21 = 1, W22 = 0) under det W >= 0:
    # on det = 0, W22 = w^2/x; min over w of (w-1)^2 + w^4/(2x^2) ~ 1/(2x^2) -> |W11| ~ (2 loss)^(-1/2).
    x, wv = sp.symbols("x w", positive=True)
    loss_b = (wv - 1) ** 2 + wv**4 / (2 * x**2)
    eps = sp.Symbol("epsilon", positive=True)
    w_star = 1 - eps**2 + sp.Symbol("c2") * eps**4
    series = sp.series(sp.diff(loss_b, wv).subs({x: 1 / eps}).subs(wv, w_star), eps, 0, 5).removeO()
    c2 = sp.solve(sp.expand(series).coeff(eps, 4), sp.Symbol("c2"))[0]
    lmin = sp.series(loss_b.subs(x, 1 / eps).subs(wv, w_star.subs(sp.Symbol("c2"), c2)), eps, 0, 5).removeO()
    d.check_equal("x^2 min_w loss(x, w) -> 1/2 as x -> oo (loss of the det >= 0 boundary)",
                  sp.limit(lmin / eps**2, eps, 0), sp.Rational(1, 2))
    d.define("growth_exponent", sp.Rational(-1, 2))  # |W11| ~ C loss^(-1/2)
    return d


@lru_cache(maxsize=None)
def tracenorm() -> Derivation:
    """||W||_* = min_{U V^T = W} (||U||_F^2 + ||V||_F^2)/2, 2x2 (Srebro 2005; Neyshabur et al. 2014, arXiv 1412.6614)."""
    d = Derivation("mf.tracenorm", "Srebro, Rennie, Jaakkola 2005; Neyshabur, Tomioka, Srebro 2014, arXiv 1412.6614")
    u1, u2 = sp.symbols("u1 u2", real=True)
    s1, s2 = sp.symbols("sigma1 sigma2", positive=True)
    Uw, Vw = _rot(u1), _rot(u2)
    W = Uw * sp.diag(s1, s2) * Vw.T
    nuc = s1 + s2
    fro2 = sum(e**2 for e in W)
    d.check_zero("||W||_*^2 = ||W||_F^2 + 2 |det W| (2x2, det > 0 branch)",
                 sp.simplify(sp.together(nuc**2 - fro2 - 2 * W.det())))
    Wn = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    d.define("nuclear2", sp.sqrt(sum(e**2 for e in Wn) + 2 * sp.Abs(Wn.det())))
    d.symbols.update({f"w{i}{j}": Wn[i, j] for i in range(2) for j in range(2)})
    # Lower bound: for orthogonal Z, (||U||^2 + ||V||^2)/2 - <Z, U V^T> = ||U - Z V||^2 / 2 >= 0.
    U = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"U{i}{j}", real=True))
    V = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"V{i}{j}", real=True))
    z = sp.Symbol("z", real=True)
    for name, Z in (("rotation", _rot(z)), ("reflection", _rot(z) * sp.diag(1, -1))):
        lhs = (sum(e**2 for e in U) + sum(e**2 for e in V)) / 2 - (Z.T * U * V.T).trace()
        d.check_zero(f"(||U||^2 + ||V||^2)/2 - <Z, U V^T> = ||U - Z V||^2/2, Z a {name}",
                     sp.simplify(sp.together(lhs - sum(e**2 for e in (U - Z * V)) / 2)))
    # <Z, W> = ||W||_* for the polar factor Z = U_W V_W^T, so every factorization costs >= ||W||_*.
    Zp = Uw * Vw.T
    d.check_zero("<U_W V_W^T, W> = sigma1 + sigma2", sp.simplify(sp.together((Zp.T * W).trace() - nuc)))
    # Attained by the SVD-balanced factors U = U_W Sigma^(1/2), V = V_W Sigma^(1/2).
    r1, r2 = sp.symbols("r1 r2", positive=True)
    Wr = W.subs({s1: r1**2, s2: r2**2})
    Ub, Vb = Uw * sp.diag(r1, r2), Vw * sp.diag(r1, r2)
    d.check_zero("U V^T = W for the SVD-balanced factors", _zero_matrix(Ub * Vb.T - Wr))
    d.check_zero("(||U||^2 + ||V||^2)/2 = ||W||_* for the SVD-balanced factors",
                 sp.simplify(sp.together((sum(e**2 for e in Ub) + sum(e**2 for e in Vb)) / 2 - (r1**2 + r2**2))))
    # Hence min_{U,V} f(U V^T) + lam (||U||^2 + ||V||^2)/2 = min_W f(W) + lam ||W||_* whenever width k >= rank W.
    # Prox of lam ||.||_* on a diagonal (SVD) argument: soft threshold, the optimality condition per sigma.
    sg, lm = sp.symbols("sigma lam", positive=True)
    xv = sp.Symbol("x", positive=True)
    d.check_zero("prox: argmin_x (x - sigma)^2/2 + lam x = sigma - lam for sigma > lam",
                 sp.diff((xv - sg) ** 2 / 2 + lm * xv, xv).subs(xv, sg - lm))
    return d
