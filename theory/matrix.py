"""Matrix factorization under gradient flow: commuting sensing, deep end-to-end dynamics, det sign, trace norm.

Sources: Gunasekar et al. 2017 (arXiv 1705.09280) for W = U U^T; Arora, Cohen, Hu, Luo 2019
(arXiv 1905.13655) for deep factorizations; Razin & Cohen 2020 (arXiv 2005.06398) for the 2x2 example;
Srebro et al. 2005 and Neyshabur et al. 2014 (arXiv 1412.6614) for the variational trace norm.
Convention (THEORY.md §0): L(W) = sum_i (<A_i, W> - y_i)^2 / (2m), grad(W) = G = sum_i r_i A_i / m,
S_i(t) = int_0^t r_i ds / m, so that G = sum_i A_i dS_i/dt.
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
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


def _rot_cs(k) -> tuple[sp.Matrix, tuple[sp.Symbol, sp.Symbol]]:
    """2x2 rotation [[c, -s], [s, c]] with polynomial symbols; identities are reduced modulo c^2 + s^2 = 1."""
    c, sn = sp.symbols(f"c_{k} s_{k}", real=True)
    return sp.Matrix([[c, -sn], [sn, c]]), (c, sn)


def _plain(e: sp.Expr) -> sp.Expr:
    """Replace derivatives and applied functions of t by plain symbols (fast rational arithmetic)."""
    reps = {x: sp.Dummy() for x in e.atoms(sp.Derivative)}
    e = e.xreplace(reps)
    return e.xreplace({x: sp.Dummy() for x in e.atoms(sp.core.function.AppliedUndef)})


def _zero_entry(e: sp.Expr, pairs=()) -> sp.Expr:
    e = _plain(sp.sympify(e))
    if pairs and _red(e, pairs) == 0:
        return sp.Integer(0)
    e = sp.expand(sp.numer(sp.together(e)))
    for c, sn in pairs:
        if e != 0 and e.has(sn):
            e = sp.expand(sp.Poly(e, sn).rem(sp.Poly(sn**2 + c**2 - 1, sn)).as_expr())
    return e if e == 0 else sp.simplify(e)


def _red(e: sp.Expr, pairs) -> sp.Expr:
    """Expand and reduce a polynomial modulo s_k^2 = 1 - c_k^2 (every rotation's c^2 + s^2 = 1)."""
    e = sp.expand(e)
    if not pairs or e == 0:
        return e
    ss = [sn for _, sn in pairs]
    poly = sp.Poly(e, *ss)
    out = sp.Integer(0)
    for mon, coef in poly.terms():
        term = coef
        for (c, sn), k in zip(pairs, mon):
            term *= sn ** (k % 2) * (1 - c**2) ** (k // 2)
        out += term
    return sp.expand(out)


def _mm(pairs, *Ms) -> sp.Matrix:
    """Matrix product M_1 M_2 ... reduced after every multiplication (keeps the degrees low)."""
    out = Ms[0]
    for M in Ms[1:]:
        out = (out * M).applyfunc(lambda e: _red(e, pairs))
    return out


def _zero_matrix(M: sp.Matrix, pairs=()) -> sp.Expr:
    """Sum of squares of the entries' numerators, reduced modulo c_k^2 + s_k^2 = 1 for the rotations used."""
    return sum(_zero_entry(e, pairs) ** 2 for e in M)


@derivation
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
    d.check_zero("w = alpha e^{-2G} solves dw/dG = -2 w", sp.diff(alpha * sp.exp(-2 * G), G) + 2 * alpha * sp.exp(-2 * G))
    lam_G = d.define("lam_of_G", alpha**2 * sp.exp(-4 * G))
    d.check_zero("lambda = w^2 obeys dlambda/dG = -4 lambda", sp.diff(lam_G, G) + 4 * lam_G)
    lam_S = d.define("lam_of_S", alpha**2 * sp.exp(-4 * Ssym))
    d.define("dlam_dS", sp.diff(lam_S, Ssym))

    # Concrete cases: Q orthogonal (2x2 rotation with symbolic angle parameter, 3x3 rational), m = 2 sensing.
    R2, cs = _rot_cs(0)
    for dim, Q, pairs in ((2, R2, [cs]), (3, _orth3(), [])):
        d.check_zero(f"Q^T Q = I ({dim}x{dim})", _zero_matrix(Q.T * Q - sp.eye(dim), pairs))
        a = sp.Matrix(2, dim, lambda i, j: sp.Symbol(f"a_{i}{j}", real=True))
        S = [sp.Function(f"S_{i}", real=True)(t) for i in range(2)]
        A = [Q * sp.diag(*a.row(i)) * Q.T for i in range(2)]
        d.check_zero(f"A_1 A_2 = A_2 A_1 ({dim}x{dim})", _zero_matrix(A[0] * A[1] - A[1] * A[0], pairs))
        Gt = sum((A[i] * sp.diff(S[i], t) for i in range(2)), sp.zeros(dim, dim))
        gj = [sum(a[i, j] * S[i] for i in range(2)) for j in range(dim)]
        f = [sp.Function(f"f_{j}", positive=True)(t) for j in range(dim)]
        flow = {sp.diff(f[j], t): -2 * sp.diff(gj[j], t) * f[j] for j in range(dim)}  # f_j = alpha e^{-2 g_j}
        U = Q * sp.diag(*f) * Q.T
        d.check_zero(f"U = Q diag(f) Q^T with f_j' = -2 g_j' f_j solves dU/dt = -2 G U ({dim}x{dim})",
                     _zero_matrix((sp.diff(U, t) + 2 * Gt * U).subs(flow), pairs))
        W = Q * sp.diag(*[x**2 for x in f]) * Q.T
        d.check_zero(f"W = U U^T = Q diag(f^2) Q^T ({dim}x{dim})", _zero_matrix(U * U.T - W, pairs))
        d.check_zero(f"W solves dW/dt = -2 (G W + W G) ({dim}x{dim})",
                     _zero_matrix((sp.diff(W, t) + 2 * (Gt * W + W * Gt)).subs(flow), pairs))
    d.check_zero("f_j = alpha e^{-2 g_j} solves f_j' = -2 g_j' f_j, so lambda_j = f_j^2 = alpha^2 e^{-4 a_j^T S}",
                 sp.diff(alpha * sp.exp(-2 * sp.Function("g")(t)), t)
                 + 2 * sp.diff(sp.Function("g")(t), t) * alpha * sp.exp(-2 * sp.Function("g")(t)))

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
    log_link = d.define("log_link", 2 * sp.log(alpha) + nu)
    d.check_zero("ln lambda = ln alpha^2 + nu (log-domain link: no underflow of alpha^2 at tiny alpha)",
                 sp.exp(log_link) - d["link"])
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
    """Balanced 2x2 factors W_j = V_{j+1} diag(p) V_j^T, so W = V_{N+1} diag(p^N) V_1^T."""
    # V_1, V_{N+1} symbolic rotations; the inner V_2..V_N (which cancel) are concrete rational rotations.
    (V1, c1), (Vn, cn) = _rot_cs(1), _rot_cs(N + 1)
    V = [V1] + [_rot(sp.Rational(k, k + 3)) for k in range(2, N + 1)] + [Vn]
    pairs = [c1, cn]
    ps = sp.symbols("p1:3", positive=True)
    D1 = sp.diag(*ps)
    Ws = [V[j + 1] * D1 * V[j].T for j in range(N)]
    return Ws, V, ps, pairs


def _prod(Ms, dim=2):
    out = sp.eye(dim)
    for M in Ms:
        out = M * out
    return out


def _factor_grads(Ws, Gm):
    """dW_j/dt = -A_j^T G B_j^T with A_j = W_N...W_{j+1}, B_j = W_{j-1}...W_1 (chain rule)."""
    N = len(Ws)
    return [-(_prod(Ws[j + 1:]).T * Gm * _prod(Ws[:j]).T) for j in range(N)]


@derivation
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
    Ws, V, ps, pairs = _balanced(N)
    I2 = sp.eye(2)

    def prod(Ms):  # W_k ... W_1 order: Ms = [W_1, ..., W_k]
        return _mm(pairs, *reversed(Ms)) if Ms else I2

    W = prod(Ws)
    Sig = sp.diag(*[p**N for p in ps])
    d.check_zero("balanced W = V_{N+1} Sigma V_1^T", _zero_matrix(W - _mm(pairs, V[N], Sig, V[0].T), pairs))
    for j in range(N - 1):
        d.check_zero(f"balanced: W_{j + 2}^T W_{j + 2} = W_{j + 1} W_{j + 1}^T",
                     _zero_matrix(_mm(pairs, Ws[j + 1].T, Ws[j + 1]) - _mm(pairs, Ws[j], Ws[j].T), pairs))

    def WWt_pow(k):  # (W W^T)^{k/N}
        return _mm(pairs, V[N], sp.diag(*[p ** (2 * k) for p in ps]), V[N].T)

    def WtW_pow(k):  # (W^T W)^{k/N}
        return _mm(pairs, V[0], sp.diag(*[p ** (2 * k) for p in ps]), V[0].T)

    d.check_zero("(W W^T)^{1/N} to the N-th power is W W^T",
                 _zero_matrix(_mm(pairs, *[WWt_pow(1)] * N) - _mm(pairs, W, W.T), pairs))
    d.check_zero("(W^T W)^{1/N} to the N-th power is W^T W",
                 _zero_matrix(_mm(pairs, *[WtW_pow(1)] * N) - _mm(pairs, W.T, W), pairs))
    A = [prod(Ws[j + 1:]) for j in range(N)]   # W_N ... W_{j+1}
    B = [prod(Ws[:j]) for j in range(N)]       # W_{j-1} ... W_1
    dWs = [-_mm(pairs, A[j].T, Gm, B[j].T) for j in range(N)]
    # Chain rule: dW/dt = sum_j A_j (dW_j/dt) B_j = -sum_j (A_j A_j^T) G (B_j^T B_j); under balance each
    # A_j A_j^T = (W W^T)^((N-j)/N) and B_j^T B_j = (W^T W)^((j-1)/N), which is the end-to-end ODE termwise.
    for j in range(N):
        d.check_zero(f"balanced: A_{j + 1} A_{j + 1}^T = (W W^T)^(({N}-{j + 1})/{N})",
                     _zero_matrix(_mm(pairs, A[j], A[j].T) - WWt_pow(N - j - 1), pairs))
        d.check_zero(f"balanced: B_{j + 1}^T B_{j + 1} = (W^T W)^(({j + 1}-1)/{N})",
                     _zero_matrix(_mm(pairs, B[j].T, B[j]) - WtW_pow(j), pairs))
    e2e = -sum((_mm(pairs, WWt_pow(N - j), Gm, WtW_pow(j - 1)) for j in range(1, N + 1)), sp.zeros(2, 2))
    chain = sum((_mm(pairs, A[j], dWs[j], B[j]) for j in range(N)), sp.zeros(2, 2))
    d.check_zero(f"end-to-end: dW/dt = -sum_j (W W^T)^((N-j)/N) G (W^T W)^((j-1)/N) (N={N})",
                 _zero_matrix(chain - e2e, pairs))
    for r in range(2):
        ur, vr = V[N][:, r], V[0][:, r]
        dsig = _mm(pairs, ur.T, e2e, vr)[0]
        d.check_zero(f"d sigma_{r + 1}/dt = -N sigma^(2-2/N) <G, u v^T> (sigma = p^N)",
                     _zero_entry(dsig + N * ps[r] ** (2 * N - 2) * _mm(pairs, ur.T, Gm, vr)[0], pairs))
    # det W_j proportional to itself with a bounded coefficient c = -tr(Sigma^((N-2)/N) V_{N+1}^T G V_1).
    cj = -_mm(pairs, sp.diag(*[p ** (N - 2) for p in ps]), V[N].T, Gm, V[0]).trace()
    for j in range(N):
        ddet = _mm(pairs, Ws[j].adjugate(), dWs[j]).trace()
        d.check_zero(f"d/dt det W_{j + 1} = c det W_{j + 1}, c = -tr(Sigma^((N-2)/N) V_(N+1)^T G V_1) bounded",
                     _zero_entry(ddet - _red(cj * Ws[j].det(), pairs), pairs))
    d.check_zero("det W_j = det W^(1/N) for balanced factors (all share the sign)",
                 _zero_entry(_red(Ws[0].det() ** N, pairs) - _red(W.det(), pairs), pairs))
    ddetW = _mm(pairs, W.adjugate(), e2e).trace()
    d.check_zero("d/dt det W = N c det W (end-to-end)", _zero_entry(ddetW - _red(N * cj * W.det(), pairs), pairs))
    sigma, hh = sp.Symbol("sigma", positive=True), sp.Symbol("h", real=True)
    d.symbols.update(sigma=sigma, h=hh)
    d.define("dsigma", -N * sigma ** (2 - sp.Rational(2, N)) * hh)
    d.define("dlogdet_coef", sp.Integer(N))
    return d


@derivation
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
    dphi = d.define("dphi", (s1 * M[1, 0] + s2 * M[0, 1]) / (s1**2 - s2**2))
    dpsi = d.define("dpsi", (s2 * M[1, 0] + s1 * M[0, 1]) / (s1**2 - s2**2))
    d.check_zero("U^T dW V off-diagonal (1,2): -phi' sigma2 + psi' sigma1 = M12", -dphi * s2 + dpsi * s1 - M[0, 1])
    d.check_zero("U^T dW V off-diagonal (2,1): phi' sigma1 - psi' sigma2 = M21", dphi * s1 - dpsi * s2 - M[1, 0])
    dl1 = d.define("dl1", M[0, 0] / s1)
    dl2 = d.define("dl2", M[1, 1] / s2)
    d.check_zero("d l_r/dt = -N sigma_r^(1-2/N) h_rr", dl1 + N * sp.exp((1 - sp.Rational(2, N)) * l1) * h[0, 0])

    def R(x):
        return sp.Matrix([[sp.cos(x), -sp.sin(x)], [sp.sin(x), sp.cos(x)]])

    Wsvd = R(phi) * sp.diag(s1, s2) * R(psi).T
    chain = (sp.diff(Wsvd, phi) * dphi + sp.diff(Wsvd, psi) * dpsi + sp.diff(Wsvd, l1) * dl1 + sp.diff(Wsvd, l2) * dl2)
    Gw = R(phi) * h * R(psi).T
    pw = lambda x, k: sp.exp(2 * k * x / sp.Integer(N))  # noqa: E731  (sigma^(2k/N), sigma = e^l)
    WWt = lambda k: R(phi) * sp.diag(pw(l1, k), pw(l2, k)) * R(phi).T  # noqa: E731
    WtW = lambda k: R(psi) * sp.diag(pw(l1, k), pw(l2, k)) * R(psi).T  # noqa: E731
    e2e = -sum((WWt(N - j) * Gw * WtW(j - 1) for j in range(1, N + 1)), sp.zeros(2, 2))
    pts = [{phi: sp.Rational(3, 10), psi: -sp.Rational(7, 5), l1: sp.Rational(6, 5), l2: -sp.Rational(9, 4),
            h[0, 0]: sp.Rational(1, 3), h[0, 1]: -2, h[1, 0]: sp.Rational(5, 7), h[1, 1]: sp.Rational(-3, 2)},
           {phi: 2, psi: sp.Rational(1, 9), l1: -1, l2: sp.Rational(1, 2),
            h[0, 0]: -1, h[0, 1]: sp.Rational(2, 3), h[1, 0]: 4, h[1, 1]: sp.Rational(1, 5)},
           {phi: -sp.Rational(5, 2), psi: 3, l1: 4, l2: -7,
            h[0, 0]: sp.Rational(2, 9), h[0, 1]: 3, h[1, 0]: -sp.Rational(1, 4), h[1, 1]: 1}]
    d.check_numeric("chain rule through (phi, psi, l1, l2) reproduces the end-to-end ODE",
                    sum(e**2 for e in (chain - e2e)), pts)
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


@derivation
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
