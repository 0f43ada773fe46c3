"""Hypothesis strategies drawing well-posed problems for every model the package predicts (public Hypothesis API only).

Every strategy takes keyword-only strategies (a plain value raises TypeError: wrap it in ``st.just(...)``), draws
sizes first (small n and d shrink first; integers shrink toward their lower bound; the number of features ``d``
defaults to None: d in [n, max(8, 2n)], so any n strategy works), then entries from ``elements``
(floats shrink toward 0, so counterexamples end as small matrices of 0s and 1s), and returns a frozen problem from
:mod:`verify.testing.problems` whose prediction is computed on first access.
Well-posedness is by construction: full row rank with cond(X) <= ``max_condition``, ||y||_inf >= 0.1, init scales
bounded away from 0, max|X_ij| >= 1/4; ``tests/test_testing_api.py`` checks that the predictions converge on drawn
problems.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .problems import (EOS, STABLE, DeepMFProblem, DLNGDProblem, DLNProblem, DLNShapeProblem, LinearInitProblem,
                       ReluSegmentProblem, SensingProblem)

__all__ = ["DEFECTS", "deep_mf_problems", "dln_gd_problems", "dln_problems", "dln_shape_problems", "elements",
           "full_row_rank_matrices", "linear_init_problems", "log_uniform", "random_problems", "regression_inputs",
           "relu_segment_problems", "sensing_problems", "sizes"]

Y_MIN = 0.1    # ||y||_inf lower bound: relative residuals ||Xb - y|| / ||y|| stay meaningful
X_MIN = 0.25   # ||X||_max lower bound: sharpness SDPs have absolute tolerances (scale is a change of time/alpha)


def _strategy(func: str, name: str, value, optional: bool = False) -> SearchStrategy | None:
    if optional and value is None:
        return None
    if not isinstance(value, SearchStrategy):
        raise TypeError(f"{func}({name}=...) expects a Hypothesis strategy, got {value!r} "
                        f"({type(value).__name__}); wrap a fixed value as st.just({value!r})")
    return value


def _number(func: str, name: str, value, lo: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= lo:
        raise InvalidArgument(f"{func}({name}=...) must be a finite number > {lo}, got {value!r}")
    return float(value)


def sizes(lo: int = 1, hi: int = 8) -> SearchStrategy[int]:
    """Integers in [lo, hi] (lo >= 1) shrinking toward lo: sample counts, features, widths."""
    if isinstance(lo, bool) or isinstance(hi, bool) or not (isinstance(lo, int) and isinstance(hi, int)):
        raise InvalidArgument(f"sizes(lo, hi) takes integers, got {lo!r}, {hi!r}")
    if not 1 <= lo <= hi:
        raise InvalidArgument(f"sizes(lo, hi) needs 1 <= lo <= hi, got lo={lo}, hi={hi}")
    return st.integers(lo, hi)


def log_uniform(lo: float, hi: float, digits: int = 3) -> SearchStrategy[float]:
    """Floats spread evenly in log10 over [lo, hi], rounded to ``digits`` significant digits (readable); the
    exponent shrinks toward 0, i.e. the value toward 1 when 1 is in range, else toward the end nearest 1."""
    lo = _number("log_uniform", "lo", lo, 0.0)
    hi = _number("log_uniform", "hi", hi, 0.0)
    if lo > hi:
        raise InvalidArgument(f"log_uniform(lo, hi) needs lo <= hi, got lo={lo!r}, hi={hi!r}")
    fmt = f"{{:.{int(digits)}g}}"
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: min(hi, max(lo, float(fmt.format(10.0**e)))))


def elements(lo: float = 0.125, hi: float = 1.0, *, zero: bool = True) -> SearchStrategy[float]:
    """Default entries of drawn matrices: a float with lo <= |x| <= hi, or 0 when ``zero`` (bounded dynamic range:
    the sharpness SDPs' absolute tolerances and the n = 1 minimum-sharpness vertex 1/min|x_i| stay well scaled).
    Shrinks toward 0 (or toward lo without zeros)."""
    lo = _number("elements", "lo", lo, 0.0)
    hi = _number("elements", "hi", hi, 0.0)
    if lo > hi:
        raise InvalidArgument(f"elements(lo, hi) needs lo <= hi, got lo={lo!r}, hi={hi!r}")
    signed = [st.floats(lo, hi), st.floats(-hi, -lo)]
    return st.one_of(*([st.just(0.0)] if zero else []), *signed)


def _well_conditioned(A: np.ndarray, max_condition: float) -> bool:
    """Full row rank, cond(A) <= max_condition, and max |A_ij| >= X_MIN."""
    s = np.linalg.svd(A, compute_uv=False)
    return bool(s[-1] > 0 and s[0] <= max_condition * s[-1] and len(s) == A.shape[0] and np.abs(A).max() >= X_MIN)


def _matrices(rows: int, cols: int, entries: SearchStrategy, max_condition: float) -> SearchStrategy[np.ndarray]:
    return (st.lists(st.lists(entries, min_size=cols, max_size=cols), min_size=rows, max_size=rows)
            .map(lambda rows_: np.array(rows_, dtype=np.float64).reshape(rows, cols))
            .filter(lambda A: _well_conditioned(A, max_condition)))


def _target(entries: SearchStrategy, n: int) -> SearchStrategy[np.ndarray]:
    return (st.lists(entries, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=np.float64))
            .filter(lambda v: np.abs(v).max() >= Y_MIN))


def _sized(draw, n, d, d_max: int = 8):
    """Draw n, then d >= n (small sizes first: they shrink first); d = None draws d in [n, max(d_max, 2n)]."""
    n_ = draw(n)
    return n_, draw(st.integers(n_, max(d_max, 2 * n_)) if d is None else d.filter(lambda v: v >= n_))


@st.composite
def _full_row_rank(draw, n, d, entries, max_condition):
    n_, d_ = _sized(draw, n, d)
    return draw(_matrices(n_, d_, entries, max_condition))


def full_row_rank_matrices(*, n: SearchStrategy[int] = sizes(1, 4), d: SearchStrategy[int] | None = None,
                           elements: SearchStrategy[float] = elements(), max_condition: float = 100.0
                           ) -> SearchStrategy[np.ndarray]:
    """X (n x d), n <= d, rank n, cond(X) <= max_condition: the data matrices every regression problem uses."""
    f = "full_row_rank_matrices"
    return _full_row_rank(_strategy(f, "n", n), _strategy(f, "d", d, True), _strategy(f, "elements", elements),
                          _number(f, "max_condition", max_condition, 1.0))


def _regression(draw, n, d, entries, max_condition, d_max: int = 8):
    n_, d_ = _sized(draw, n, d, d_max)
    return draw(_matrices(n_, d_, entries, max_condition)), draw(_target(entries, n_))


_ELEMENTS = elements()
_NONZERO = elements(zero=False)   # GD problems: exact zeros make the min-sharpness SDP degenerate (uncertifiable gap)


@st.composite
def _dln(draw, n, d, alpha, depth, parametrization, entries, max_condition):
    depth_ = draw(depth)
    if not isinstance(depth_, int) or depth_ < 2:
        raise InvalidArgument(f"dln_problems(depth=...) drew {depth_!r}; depth must be an integer >= 2")
    kind = draw(parametrization)
    if kind not in ("pm", "uv"):
        raise InvalidArgument(f"dln_problems(parametrization=...) drew {kind!r}; use 'pm' or 'uv'")
    if kind == "uv" and depth_ != 2:
        kind = "pm"      # `uv` is depth 2 only (THEORY §0): deeper networks are drawn as `pm`
    a = draw(alpha)
    X, y = _regression(draw, n, d, entries, max_condition)
    return DLNProblem(X, y, a, depth_, kind)


def dln_problems(*, n: SearchStrategy[int] = sizes(1, 4), d: SearchStrategy[int] | None = None,
                 alpha: SearchStrategy[float] = log_uniform(1e-3, 10.0), depth: SearchStrategy[int] = st.just(2),
                 parametrization: SearchStrategy[str] = st.sampled_from(["pm", "uv"]),
                 elements: SearchStrategy[float] = _ELEMENTS, max_condition: float = 100.0
                 ) -> SearchStrategy[DLNProblem]:
    """DLN regression problems (X full row rank, n <= d, any y) at scale alpha and depth; prediction: GF limit
    (numerics.flow_limit; Woodworth et al. 2020). Depth >= 3 is drawn with the `pm` parametrization."""
    f = "dln_problems"
    return _dln(_strategy(f, "n", n), _strategy(f, "d", d, True), _strategy(f, "alpha", alpha),
                _strategy(f, "depth", depth),
                _strategy(f, "parametrization", parametrization), _strategy(f, "elements", elements),
                _number(f, "max_condition", max_condition, 1.0))


def _shape_pair(ratio: SearchStrategy[float]) -> SearchStrategy[tuple[float, float]]:
    """(a, b) with |a^2 - b^2| >= 1/4 (c_i bounded away from 0; Azulay et al. need |u0| != |v0|)."""
    return st.tuples(ratio, ratio).filter(lambda p: abs(p[0] ** 2 - p[1] ** 2) >= 0.25)


@st.composite
def _shape(draw, n, d, scale, entries, max_condition):
    s = draw(scale)
    X, y = _regression(draw, n, d, entries, max_condition)
    pairs = draw(st.lists(_shape_pair(st.floats(-2.0, 2.0)), min_size=X.shape[1], max_size=X.shape[1]))
    u0, v0 = (s * np.array(c, dtype=np.float64) for c in zip(*pairs))
    return DLNShapeProblem(X, y, u0, v0)


def dln_shape_problems(*, n: SearchStrategy[int] = sizes(1, 4), d: SearchStrategy[int] | None = None,
                       scale: SearchStrategy[float] = log_uniform(0.1, 2.0),
                       elements: SearchStrategy[float] = _ELEMENTS,
                       max_condition: float = 100.0) -> SearchStrategy[DLNShapeProblem]:
    """`uv` DLNs from (u0, v0) = scale (a, b), a, b in [-2, 2], |a^2 - b^2| >= 1/4; prediction: numerics.shape_limit
    (Azulay et al. 2021, Thm 4.1)."""
    f = "dln_shape_problems"
    return _shape(_strategy(f, "n", n), _strategy(f, "d", d, True), _strategy(f, "scale", scale),
                  _strategy(f, "elements", elements), _number(f, "max_condition", max_condition, 1.0))


@st.composite
def _gd(draw, n, d, alpha, parametrization, regime, fraction, entries, max_condition):
    kind, reg = draw(parametrization), draw(regime)
    if kind not in ("pm", "uv") or reg not in (STABLE, EOS):
        raise InvalidArgument(f"dln_gd_problems drew parametrization={kind!r}, regime={reg!r}; "
                              f"use 'pm'/'uv' and {STABLE!r}/{EOS!r}")
    a, frac = draw(alpha), draw(fraction)
    X, y = _regression(draw, n, d, entries, max_condition, d_max=6)
    return DLNGDProblem(X, y, a, kind, reg, frac)


def dln_gd_problems(*, n: SearchStrategy[int] = sizes(1, 3), d: SearchStrategy[int] | None = None,
                    alpha: SearchStrategy[float] = log_uniform(0.05, 1.0),
                    parametrization: SearchStrategy[str] = st.sampled_from(["uv", "pm"]),
                    regime: SearchStrategy[str] = st.just(STABLE),
                    fraction: SearchStrategy[float] = st.floats(0.1, 0.9),
                    elements: SearchStrategy[float] = _NONZERO, max_condition: float = 100.0
                    ) -> SearchStrategy[DLNGDProblem]:
    """Finite-step GD problems: eta = fraction * eta_c ('stable') or in (eta_c, eta_max) ('eos'), eta_c = 2/max S
    along GF, eta_max = 2/S_min (computed lazily: problem.eta; Even et al. 2023; Fojtik et al. 2025)."""
    f = "dln_gd_problems"
    return _gd(_strategy(f, "n", n), _strategy(f, "d", d, True), _strategy(f, "alpha", alpha),
               _strategy(f, "parametrization", parametrization), _strategy(f, "regime", regime),
               _strategy(f, "fraction", fraction), _strategy(f, "elements", elements),
               _number(f, "max_condition", max_condition, 1.0))


def _orthogonal(A: np.ndarray) -> np.ndarray:
    """Q of the QR of A with a positive diagonal of R (A = I gives Q = I: readable counterexamples)."""
    Q, R = np.linalg.qr(A)
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


@st.composite
def _sensing(draw, d, m, alpha, commuting, entries, max_condition):
    comm = draw(commuting)
    d_ = draw(d)
    m_ = draw(m.filter(lambda v: v <= d_) if comm else m.filter(lambda v: v >= 2))
    a = draw(alpha)
    if comm:   # A_i = Q diag(a_i) Q^T, y = a lam* with lam* > 0 (a PSD solution exists)
        Q = _orthogonal(draw(_matrices(d_, d_, entries, max_condition)))
        eig = draw(_matrices(m_, d_, entries, max_condition))
        lam = np.array(draw(st.lists(st.floats(0.5, 1.5), min_size=d_, max_size=d_)))
        y = eig @ lam
        As = np.einsum("ij,mj,kj->mik", Q, eig, Q)
    else:      # symmetric A_i that do not all commute, y = A(G G^T)
        B = draw(st.lists(_matrices(d_, d_, entries, 1e300).map(lambda M: (M + M.T) / 2), min_size=m_, max_size=m_)
                 .filter(lambda Bs: _independent(Bs, max_condition) and not _all_commute(Bs)))
        As = np.array(B)
        G = draw(_matrices(d_, d_, entries, max_condition))
        y = np.einsum("mij,ij->m", As, G @ G.T)
    assume(np.abs(y).max() > 0)
    if np.abs(y).max() < Y_MIN:     # rescaling y rescales the planted PSD solution: still feasible
        y = y * (Y_MIN / np.abs(y).max())
    return SensingProblem(As, y, a, comm)


def _independent(Bs, max_condition) -> bool:
    return _well_conditioned(np.array([B.ravel() for B in Bs]), max_condition)


def _all_commute(Bs) -> bool:
    scale = max(np.abs(B).max() for B in Bs) ** 2
    return all(np.abs(P @ Q - Q @ P).max() <= 1e-6 * scale for i, P in enumerate(Bs) for Q in Bs[i + 1:])


def sensing_problems(*, d: SearchStrategy[int] = sizes(2, 4), m: SearchStrategy[int] = sizes(1, 3),
                     alpha: SearchStrategy[float] = log_uniform(1e-2, 1.0),
                     commuting: SearchStrategy[bool] = st.just(True),
                     elements: SearchStrategy[float] = _ELEMENTS, max_condition: float = 100.0
                     ) -> SearchStrategy[SensingProblem]:
    """Symmetric matrix sensing for W = U U^T from U0 = alpha I (Gunasekar et al. 2017). Commuting: prediction is
    numerics.matrix.commuting_limit (m <= d); not commuting (m >= 2): the certified minimum-trace reference (no limit is
    proven)."""
    f = "sensing_problems"
    return _sensing(_strategy(f, "d", d), _strategy(f, "m", m), _strategy(f, "alpha", alpha),
                    _strategy(f, "commuting", commuting), _strategy(f, "elements", elements),
                    _number(f, "max_condition", max_condition, 1.0))


@st.composite
def _deep_mf(draw, d, depth, m, scale, t_end, entries, max_condition):
    from numerics.mf_deep import balanced_factors

    d_, N = draw(d), draw(depth)
    if not isinstance(N, int) or N < 2:
        raise InvalidArgument(f"deep_mf_problems(depth=...) drew {N!r}; depth must be an integer >= 2")
    m_, s, T = draw(m), draw(scale), draw(t_end)
    As = np.array(draw(st.lists(_matrices(d_, d_, entries, 1e300), min_size=m_, max_size=m_)))
    y = draw(_target(entries, m_))
    W0 = s * draw(_matrices(d_, d_, entries, max_condition))
    return DeepMFProblem(As, y, tuple(balanced_factors(W0, N)), np.linspace(0.0, T, 5))


def deep_mf_problems(*, d: SearchStrategy[int] = sizes(2, 3), depth: SearchStrategy[int] = st.sampled_from([2, 3, 4]),
                     m: SearchStrategy[int] = sizes(1, 4), scale: SearchStrategy[float] = log_uniform(0.3, 1.0),
                     t_end: SearchStrategy[float] = st.floats(0.5, 3.0), elements: SearchStrategy[float] = _ELEMENTS,
                     max_condition: float = 100.0) -> SearchStrategy[DeepMFProblem]:
    """Deep factorization W = W_N...W_1 from balanced factors of scale * M (M well conditioned), sensing loss;
    prediction: the end-to-end trajectory at t_eval = linspace(0, t_end, 5) (Arora et al. 2019)."""
    f = "deep_mf_problems"
    return _deep_mf(_strategy(f, "d", d), _strategy(f, "depth", depth), _strategy(f, "m", m),
                    _strategy(f, "scale", scale), _strategy(f, "t_end", t_end), _strategy(f, "elements", elements),
                    _number(f, "max_condition", max_condition, 1.0))


@st.composite
def _linear(draw, n, d, depth, init_scale, entries, max_condition):
    N = draw(depth)
    if not isinstance(N, int) or N < 1:
        raise InvalidArgument(f"linear_init_problems(depth=...) drew {N!r}; depth must be an integer >= 1")
    s = draw(init_scale)
    X, y = _regression(draw, n, d, entries, max_condition)
    w0 = s * draw(_target(entries, X.shape[1]))
    return LinearInitProblem(X, y, w0, N)


def linear_init_problems(*, n: SearchStrategy[int] = sizes(1, 4), d: SearchStrategy[int] | None = None,
                         depth: SearchStrategy[int] = st.sampled_from([1, 2, 3]),
                         init_scale: SearchStrategy[float] = log_uniform(0.1, 2.0),
                         elements: SearchStrategy[float] = _ELEMENTS, max_condition: float = 100.0
                         ) -> SearchStrategy[LinearInitProblem]:
    """Underdetermined least squares from an init w0 (one layer, or balanced depth N with end-to-end w0);
    prediction: numerics.linear.one_layer_limit / deep_limit (Gruber & Avron 2024)."""
    f = "linear_init_problems"
    return _linear(_strategy(f, "n", n), _strategy(f, "d", d, True), _strategy(f, "depth", depth),
                   _strategy(f, "init_scale", init_scale), _strategy(f, "elements", elements),
                   _number(f, "max_condition", max_condition, 1.0))


@st.composite
def _relu(draw, d, width, theta, r0, r1, sa, sw, t):
    return ReluSegmentProblem(draw(d), draw(width), draw(theta), draw(r0), draw(r1), draw(sa), draw(sw), draw(t))


def relu_segment_problems(*, d: SearchStrategy[int] = sizes(2, 6), width: SearchStrategy[int] = sizes(1, 64),
                          theta: SearchStrategy[float] = st.floats(0.1, math.pi - 0.1),
                          r0: SearchStrategy[float] = st.floats(0.5, 2.0),
                          r1: SearchStrategy[float] = st.floats(0.5, 2.0),
                          sa: SearchStrategy[float] = st.floats(0.5, 2.0),
                          sw: SearchStrategy[float] = st.floats(0.5, 2.0),
                          t: SearchStrategy[float] = st.floats(0.05, 0.95)) -> SearchStrategy[ReluSegmentProblem]:
    """Two-layer ReLU nets at random init on a segment at angle theta; prediction: the arc-cosine closed forms
    (numerics.relu.init_closed_forms; Kubo et al. 2019, Cho & Saul 2009)."""
    f = "relu_segment_problems"
    args = dict(d=d, width=width, theta=theta, r0=r0, r1=r1, sa=sa, sw=sw, t=t)
    return _relu(*(_strategy(f, k, v) for k, v in args.items()))


_RANDOM = (DLNProblem, DLNShapeProblem, DLNGDProblem, SensingProblem, DeepMFProblem, LinearInitProblem)


@st.composite
def _seeded(draw, cls, seed, params):
    kw = {}
    if "n" in params:
        kw["n"] = draw(params["n"])
    if "d" in params:
        n = kw.get("n", _default(cls, "n"))
        kw["d"] = draw(params["d"] if n is None else params["d"].filter(lambda v: v >= n))
    elif "n" in params and _default(cls, "d") is not None:
        kw["d"] = draw(st.integers(kw["n"], max(8, 2 * kw["n"])))
    for name, strategy in params.items():
        if name not in kw:
            kw[name] = draw(strategy)
    return cls.random(seed=draw(seed), **kw)


def _default(cls, name: str):
    import inspect

    p = inspect.signature(cls.random).parameters.get(name)
    return None if p is None else p.default


def random_problems(problem_type: type, *, seed: SearchStrategy[int] = st.integers(0, 2**32 - 1),
                    **params: SearchStrategy) -> SearchStrategy:
    """``problem_type.random(seed, **params)``: Gaussian instances from np.random.default_rng(seed), in general
    position with probability 1 (a unique min-l1 vertex, distinct singular values), where entries drawn by Hypothesis
    shrink to ties. ``params`` are strategies for the keywords of ``problem_type.random``; a drawn d is >= n (n alone:
    d in [n, max(8, 2n)])."""
    f = "random_problems"
    if problem_type not in _RANDOM:
        raise TypeError(f"{f}(problem_type) must be one of {', '.join(c.__name__ for c in _RANDOM)}, "
                        f"got {problem_type!r}")
    import inspect

    allowed = [k for k in inspect.signature(problem_type.random).parameters if k != "seed"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"{f}({problem_type.__name__}, ...) got unexpected keywords {unknown}; "
                        f"{problem_type.__name__}.random takes {allowed}")
    return _seeded(problem_type, _strategy(f, "seed", seed),
                   {k: _strategy(f, k, v) for k, v in params.items()})


DEFECTS = ("special_X", "special_y", "shape", "rank", "empty", "ill")
_SPECIALS = (np.nan, np.inf, -np.inf, 0.0, 1e300, -1e-300, 1.0)


@st.composite
def _inputs(draw, n, d, scale, defect, seed):
    n_, d_ = draw(n), draw(d)
    rng = np.random.default_rng(draw(seed))
    X = rng.standard_normal((n_, d_)) * draw(scale)
    y = rng.standard_normal(n_)
    kind = draw(defect)
    if kind not in ("ok",) + DEFECTS:
        raise InvalidArgument(f"regression_inputs(defect=...) drew {kind!r}; use 'ok' or one of {DEFECTS}")
    if kind == "special_X":
        X[draw(st.integers(0, n_ - 1)), draw(st.integers(0, d_ - 1))] = draw(st.sampled_from(_SPECIALS))
    elif kind == "special_y":
        y[draw(st.integers(0, n_ - 1))] = draw(st.sampled_from(_SPECIALS))
    elif kind == "shape":
        y = np.append(y, 1.0)
    elif kind == "rank" and n_ >= 2:
        X[-1] = X[0]
    elif kind == "empty":
        X = X[:, :0]
    elif kind == "ill" and n_ >= 2:
        X[-1] = X[0] + 1e-8 * rng.standard_normal(d_)
    return X, y, kind


def regression_inputs(*, n: SearchStrategy[int] = sizes(1, 5), d: SearchStrategy[int] = sizes(1, 8),
                      scale: SearchStrategy[float] = st.integers(-6, 6).map(lambda e: 10.0**e),
                      defect: SearchStrategy[str] = st.sampled_from(("ok",) + DEFECTS),
                      seed: SearchStrategy[int] = st.integers(0, 10**6)
                      ) -> SearchStrategy[tuple[np.ndarray, np.ndarray, str]]:
    """(X, y, defect) for input-validation tests: Gaussian X (n, d) at ``scale`` and y, with one defect: 'ok' (none;
    n > d allowed, so y may be inconsistent), 'special_X' / 'special_y' (one entry NaN, +-inf, 0, 1e300, -1e-300 or 1),
    'shape' (y one entry too long), 'rank' (a repeated row), 'empty' (no columns), 'ill' (a row repeated up to 1e-8:
    cond ~1e8). 'rank' and 'ill' leave n = 1 as is."""
    f = "regression_inputs"
    return _inputs(_strategy(f, "n", n), _strategy(f, "d", d), _strategy(f, "scale", scale),
                   _strategy(f, "defect", defect), _strategy(f, "seed", seed))
