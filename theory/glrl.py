"""Greedy low-rank learning (GLRL) for W = U U^T: escape from a saddle, rank preservation, the small-init rates.

Source: Li, Luo, Lyu 2021 (arXiv 2012.09839), Sec. 4-5 (GLRL, escape along the top eigenvector of -grad f) and
Sec. 6 (depth >= 3). Convention (THEORY.md §0, theory.matrix): f(W) = sum_i (<A_i, W> - y_i)^2 / (2m) with
symmetric A_i, G = grad f(W) = sum_i r_i A_i / m, F(U) = f(U U^T); GF is dU/dt = -grad F(U).

What is derived here (every step checked):
- grad F(U) = 2 G U (G symmetric), so dU/dt = -2 G U and dW/dt = -2 (G W + W G); W(t) = E W(0) E^T with
  dE/dt = -2 G E: GF never changes rank W.
- A critical point U_r in rank r has G_r U_r = 0, hence G_r W_r = 0 and G_r = P_perp G_r P_perp (P the projector on
  range W_r). Adding a column u = c v, v a unit eigenvector of -G_r with eigenvalue lambda: du/dt = -2 G_r u + O(c^3),
  so c = eps e^{2 lambda t} (U level) and the W component c^2 = eps^2 e^{4 lambda t}. Escape time ln(1/eps)/(2 lambda);
  from U0 = alpha I the first escape happens at t ~ ln(1/alpha) / (2 lambda_1(-G(0))).
- At a saddle W_r the linearized W flow is block triangular: the block C = P_perp dW P_perp obeys
  dC/dt = -2 (G^ C + C G^) (G^ = P_perp G_r P_perp) whatever the other blocks do; its modes v_i v_j^T + v_j v_i^T grow at
  2 (lambda_i + lambda_j), fastest 4 lambda_1. The tangent blocks (P dW P, P dW P_perp) do not feed C.
- Small-init rates (matched asymptotics of hyperbolic saddle passages, not a theorem): GF from W(0) = alpha^2 I
  arrives at W_r with a small (rank-increasing) part whose eigenvalues are alpha^{eps_j}, eps_1 <= eps_2 <= ...
  (eps_j = 2 at W_0). Near W_r that part evolves as C(s) = e^{-2 G^ s} C_0 e^{-2 G^ s}; for generic directions the
  j-th eigenvalue of such a graded product is the product of the j-th grades, alpha^{eps_j} e^{4 lambda_j s}
  (lambda_j the eigenvalues of -G^, descending). The top one reaches O(1) at s = eps_1 ln(1/alpha) / (4 lambda_1)
  (departure); the others are then alpha^{eps_j - (lambda_j / lambda_1) eps_1}, j >= 2: the exponents at W_{r+1}
  (sorted). The closest approach to W_r is ~ alpha^{kappa_r}, kappa_r = eps_1 mu_r / (mu_r + 4 lambda_1), mu_r the
  slowest contraction rate of GF inside rank r at W_r.
- Depth N >= 3 (reported, Li et al. Sec. 6): a singular value obeys d sigma/dt = N lambda sigma^{2-2/N}; when the top
  one blows up the others are still sigma_0 (1 - lambda_j/lambda_1)^{-N/(N-2)} = O(alpha^N): no alpha-power gain, so
  the closest approach to each saddle is ~ alpha^N (the depth-2 exponent depends on the spectrum and can be small).
"""
from __future__ import annotations


import sympy as sp

from .cache import derivation
from .derivation import Derivation

t = sp.Symbol("t", real=True)
s = sp.Symbol("s", real=True)
lam, lam1, lam2 = sp.symbols("lambda lambda_1 lambda_2", positive=True)
eps, alpha, delta = sp.symbols("epsilon alpha delta", positive=True)
mu, nu = sp.symbols("mu nu", positive=True)
a_, b_ = sp.symbols("a b", positive=True)
e_r = sp.Symbol("e_r", positive=True)
SOURCE = "Li, Luo, Lyu 2021, arXiv 2012.09839, Sec. 4-6"


def _sym(name, n):
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}{min(i, j)}{max(i, j)}", real=True))


def _G(As, ys, W):
    """G = sum_i (<A_i, W> - y_i) A_i / m."""
    m = len(As)
    return sum(((sum(A.multiply_elementwise(W)) - y) * A for A, y in zip(As, ys)), sp.zeros(*W.shape)) / m


def _f(As, ys, W):
    m = len(As)
    return sum((sum(A.multiply_elementwise(W)) - y) ** 2 for A, y in zip(As, ys)) / (2 * m)


@derivation
def glrl() -> Derivation:
    """GLRL escape, rank preservation, saddle linearization and small-init rates (depth 2; depth N reported)."""
    d = Derivation("mf.glrl", SOURCE)
    d.symbols.update({"lam": lam, "lambda": lam, "lambda_1": lam1, "lambda_2": lam2, "eps": eps, "alpha": alpha,
                      "delta": delta, "mu": mu, "nu": nu, "e_r": e_r, "t": t})

    # 1. grad F(U) = 2 G U for F(U) = f(U U^T), symmetric sensing (concrete 3 x 2 U, m = 2, symbolic entries).
    n, k = 3, 2
    As = [_sym(f"a{i}_", n) for i in range(2)]
    ys = sp.symbols("y0 y1", real=True)
    U = sp.Matrix(n, k, lambda i, j: sp.Symbol(f"u{i}{j}", real=True))
    W = U * U.T
    F = _f(As, ys, W)
    G = _G(As, ys, W)
    gradF = sp.Matrix(n, k, lambda i, j: sp.diff(F, U[i, j]))
    d.check_zero("grad_U f(U U^T) = 2 G U for symmetric A_i (3x2, m = 2)",
                 sum(sp.expand(e) ** 2 for e in (gradF - 2 * G * U)))

    # 2. W flow and rank preservation (any size, noncommutative symbols).
    nn = sp.Symbol("n", integer=True, positive=True)
    Gm, Em, W0 = sp.MatrixSymbol("G", nn, nn), sp.MatrixSymbol("E", nn, nn), sp.MatrixSymbol("W0", nn, nn)
    dE = -2 * Gm * Em
    Wt = Em * W0 * Em.T
    dWt = dE * W0 * Em.T + Em * W0 * dE.T
    d.check_true("W = E W0 E^T with dE/dt = -2 G E solves dW/dt = -2 (G W + W G) (G = G^T): rank W(t) = rank W0",
                 sp.expand((dWt + 2 * (Gm * Wt + Wt * Gm.T)).doit()) == sp.ZeroMatrix(nn, nn))

    # 3. Escape from a critical point: the new column's equation to third order (3x3, m = 2, U_r one column).
    #    Critical point abstracted: G_r = G(W_r) with G_r U_r = 0; G(W_r + X) = G_r + G'[X], G' linear.
    v = sp.Matrix(sp.symbols("v0:3", real=True))
    c = sp.Symbol("c", real=True)
    Gr = _sym("g", 3)
    Gp = lambda X: sum((sum(A.multiply_elementwise(X)) * A for A in As), sp.zeros(3, 3)) / 2  # noqa: E731
    du = -2 * (Gr + Gp(c**2 * v * v.T)) * (c * v)
    series = sp.expand(du)
    d.check_zero("du/dt = -2 G(W_r + c^2 v v^T)(c v) = -2 c G_r v - 2 c^3 G'[v v^T] v: no c^2 term (linear in c at "
                 "first order)", sum(sp.expand(e - (-2 * c * (Gr * v)[i] - 2 * c**3 * (Gp(v * v.T) * v)[i])) ** 2
                                     for i, e in enumerate(series)))
    c_t = eps * sp.exp(2 * lam * t)
    d.check_zero("-G_r v = lambda v: dc/dt = 2 lambda c, c = eps e^{2 lambda t}", sp.diff(c_t, t) - 2 * lam * c_t)
    d.check_zero("the W component c^2 grows at 4 lambda", sp.diff(c_t**2, t) - 4 * lam * c_t**2)
    d.define("u_rate", 2 * lam)
    d.define("w_rate", 4 * lam)
    t_esc = d.define("escape_time", sp.log(1 / eps) / (2 * lam))
    d.check_zero("c(escape_time) = 1", sp.simplify(c_t.subs(t, t_esc) - 1))
    d.define("first_escape_time", sp.log(1 / alpha) / (2 * lam1))
    d.check_zero("from U0 = alpha I the top component alpha e^{2 lambda_1 t} reaches 1 at ln(1/alpha)/(2 lambda_1)",
                 sp.simplify((alpha * sp.exp(2 * lam1 * t)).subs(t, d["first_escape_time"]) - 1))

    # 4. Saddle linearization, 3x3, range W_r = e_1: G_r has zero first row/column (G_r W_r = 0).
    w = sp.Symbol("w", positive=True)
    Wr = sp.diag(w, 0, 0)
    Gs = sp.Matrix([[0, 0, 0], [0] + list(Gr[1, 1:]), [0] + list(Gr[2, 1:])])
    d.check_zero("G_r W_r = 0 at a rank-r critical point (G_r U_r = 0)", sum(e**2 for e in Gs * Wr))
    D = _sym("x", 3)
    h = sp.Symbol("h", real=True)
    Wh = Wr + h * D
    Gh = Gs + h * Gp(D)
    flow = -2 * (Gh * Wh + Wh * Gh)
    lin = flow.applyfunc(lambda e: sp.diff(e, h).subs(h, 0))
    C, Ghat = D[1:, 1:], Gs[1:, 1:]
    d.check_zero("linearized W flow at a saddle: dC/dt = -2 (G^ C + C G^) for the block C = P_perp dW P_perp, "
                 "independent of the tangent blocks",
                 sum(sp.expand(e) ** 2 for e in (lin[1:, 1:] + 2 * (Ghat * C + C * Ghat))))
    # eigen-rates of the C block: G^ q_i = g_i q_i -> C = q_i q_j^T + q_j q_i^T decays at 2 (g_i + g_j).
    gi, gj = sp.symbols("g_i g_j", real=True)
    q1, q2 = sp.Matrix([1, 0]), sp.Matrix([0, 1])
    Gd = sp.diag(gi, gj)
    Cm = q1 * q2.T + q2 * q1.T
    d.check_zero("C = q_i q_j^T + q_j q_i^T is a mode of rate -2 (g_i + g_j) (= 2 (lambda_i + lambda_j))",
                 sum(e**2 for e in (-2 * (Gd * Cm + Cm * Gd) + 2 * (gi + gj) * Cm)))

    # 5. Saddle passage: closest approach of a e^{-mu s} + b delta e^{nu s}.
    Ds = a_ * sp.exp(-mu * s) + b_ * delta * sp.exp(nu * s)
    s_star = sp.log(a_ * mu / (b_ * delta * nu)) / (mu + nu)
    d.check_zero("d/ds (a e^{-mu s} + b delta e^{nu s}) = 0 at s* = ln(a mu / (b delta nu)) / (mu + nu)",
                 sp.simplify(sp.expand(sp.diff(Ds, s).subs(s, s_star))))
    Dmin = sp.simplify(Ds.subs(s, s_star))
    L = sp.Symbol("L", positive=True)   # L = ln(1/delta)
    d.check_true("ln D_min / ln delta -> mu / (mu + nu) as delta -> 0",
                 sp.simplify(sp.limit(sp.expand_log(sp.log(Dmin.subs(delta, sp.exp(-L))), force=True) / (-L), L, sp.oo)
                             - mu / (mu + nu)) == 0)
    d.define("approach_exponent", e_r * mu / (mu + 4 * lam1))
    d.define("closest_time_slope", e_r / (mu + 4 * lam1))   # s* / ln(1/alpha) when delta = alpha^{e_r}
    d.check_zero("s* / ln(1/alpha) -> e_r / (mu + nu) for delta = alpha^{e_r}",
                 sp.limit(s_star.subs(delta, sp.exp(-e_r * L)) / L, L, sp.oo) - e_r / (mu + nu))

    # 6. Graded products: eigenvalues of D_a X D_b (generic X) are a_j b_j to leading order (2x2: exact determinant
    #    identity, and the top entry dominates as the grades separate).
    a1, a2, b1, b2 = sp.symbols("a_1 a_2 b_1 b_2", positive=True)
    X = sp.Matrix(2, 2, sp.symbols("x11 x12 x21 x22", real=True))
    Pm = sp.diag(a1, a2) * X * sp.diag(b1, b2)
    d.check_zero("det(D_a X D_b) = a_1 a_2 b_1 b_2 det X (the product of the two singular values)",
                 sp.expand(Pm.det() - a1 * a2 * b1 * b2 * X.det()))
    z = sp.Symbol("z", positive=True)
    top = (Pm.T * Pm).trace().subs({a2: z * a1, b2: z * b1})
    d.check_true("||D_a X D_b||_F^2 / (a_1 b_1 x11)^2 -> 1 as a_2/a_1, b_2/b_1 -> 0 (top singular value a_1 b_1 |x11|)",
                 sp.simplify(sp.limit(top / (a1 * b1 * X[0, 0]) ** 2, z, 0) - 1) == 0)
    ej, e1 = sp.symbols("e_j e_1", positive=True)
    lj = sp.Symbol("lambda_j", real=True)
    Ls = sp.Symbol("L", positive=True)   # ln(1/alpha)
    cj = sp.exp(-ej * Ls) * sp.exp(4 * lj * s)
    s_d = e1 * Ls / (4 * lam1)
    d.check_zero("departure s = e_1 ln(1/alpha) / (4 lambda_1): top grade alpha^{e_1} e^{4 lambda_1 s} = 1",
                 sp.simplify(sp.exp(-e1 * Ls) * sp.exp(4 * lam1 * s_d) - 1))
    d.check_zero("the other grades then are alpha^{e_j - (lambda_j/lambda_1) e_1}",
                 sp.simplify(sp.log(cj.subs(s, s_d)) + (ej - lj * e1 / lam1) * Ls))
    d.symbols.update(e_j=ej, e_1=e1, lambda_j=lj)
    d.define("next_exponents", ej - lj * e1 / lam1)
    # 6'. The top-two case in the delta notation of the rank-r saddle.
    c11, c22 = delta * sp.exp(4 * lam1 * s), delta * sp.exp(4 * lam2 * s)
    s_dep = sp.solve(sp.Eq(c11, 1), s)[0]
    d.define("departure_time", sp.log(1 / delta) / (4 * lam1))
    d.check_zero("c_11 = delta e^{4 lambda_1 s} reaches 1 at ln(1/delta)/(4 lambda_1)", sp.simplify(s_dep - d["departure_time"]))
    d.check_zero("c_22 there = delta^{1 - lambda_2/lambda_1}",
                 sp.simplify(sp.expand_log(sp.log(c22.subs(s, s_dep)) - (1 - lam2 / lam1) * sp.log(delta), force=True)))
    d.define("next_exponent", e_r * (1 - lam2 / lam1))
    d.define("departure_time_slope", e_r / (4 * lam1))
    d.define("initial_exponent", sp.Integer(2))   # delta_0 = alpha^2: W(0) = alpha^2 U0 U0^T
    d.check_zero("the linear phase from W(0) = alpha^2 I gives W = alpha^2 e^{4 lambda_j t}: the second component at "
                 "the first escape is alpha^{2 (1 - lambda_2/lambda_1)}",
                 sp.simplify(sp.expand_log(sp.log((alpha**2 * sp.exp(4 * lam2 * t)).subs(t, d["first_escape_time"]))
                                           - 2 * (1 - lam2 / lam1) * sp.log(alpha), force=True)))

    # 7. Depth N >= 3: polynomial growth, no alpha-power gain between saddles.
    Ns, sig0 = sp.Symbol("N", positive=True), sp.Symbol("sigma_0", positive=True)
    for N in (3, 4):
        # sigma = x^(-N/(N-2)) with x = sigma_0^(-(N-2)/N) - (N-2) lambda t > 0 before the blow-up (chain rule in x)
        x = sp.Symbol("x", positive=True)
        sig_x = x ** (-sp.Rational(N, N - 2))
        d.check_zero(f"depth {N}: sigma = (sigma_0^(-(N-2)/N) - (N-2) lambda t)^(-N/(N-2)) solves "
                     f"d sigma/dt = {N} lambda sigma^(2 - 2/{N})",
                     sp.simplify(sp.diff(sig_x, x) * (-(N - 2) * lam) - N * lam * sig_x ** (2 - sp.Rational(2, N))))
        sig = (sig0 ** (-sp.Rational(N - 2, N)) - (N - 2) * lam * t) ** (-sp.Rational(N, N - 2))
        tstar = sig0 ** (-sp.Rational(N - 2, N)) / ((N - 2) * lam1)
        sj = sig.subs(lam, lam2).subs(t, tstar)
        d.check_zero(f"depth {N}: at the top blow-up time sigma_j = sigma_0 (1 - lambda_2/lambda_1)^(-{N}/{N - 2})",
                     sp.simplify(sj / (sig0 * (1 - lam2 / lam1) ** (-sp.Rational(N, N - 2))) - 1))
    d.symbols["N"] = Ns
    d.define("deep_approach_exponent", Ns)
    return d
