"""The l1 phase transition: the ALMT statistical dimension against an independent quadrature + minimization, the
descent cone's own statistical dimension, the sympy identities, exact min-l1 decisions, curve statistics, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from numerics import flow_limit, min_l1
from numerics import phase as ph
from numerics.batched import sweep_flow_limits
from theory import phase as th


def _reference(s, d):
    """psi(s, d) from its definition: the integral by quadrature, the infimum by a bounded scalar minimization."""
    def F(t):
        tail = quad(lambda u: (u - t) ** 2 * math.exp(-u * u / 2), t, math.inf, epsabs=1e-13, epsrel=1e-13)[0]
        return s * (1 + t * t) + (d - s) * math.sqrt(2 / math.pi) * tail

    r = minimize_scalar(F, bounds=(0.0, 12.0), method="bounded", options=dict(xatol=1e-10))
    return min(r.fun, F(0.0))


@pytest.mark.parametrize("s, d", [(1, 100), (5, 100), (10, 100), (20, 100), (50, 100), (99, 100), (2.5, 10),
                                  (3, 7), (1, 1000)])
def test_statistical_dimension_matches_quadrature_and_minimization(s, d):
    assert ph.statistical_dimension(s, d) == pytest.approx(_reference(s, d), rel=1e-9, abs=1e-9)


def test_known_values_and_stationarity():
    assert ph.statistical_dimension(0, 100) == 0.0 and ph.statistical_dimension(100, 100) == 100.0
    assert ph.tau_star(0, 10) == math.inf and ph.tau_star(10, 10) == 0.0
    _, dF, _ = ph._fns()
    for s, d in [(1, 100), (5, 100), (30, 40)]:
        assert abs(dF(ph.tau_star(s, d), s, d)) < 1e-10 * d
    # the array form evaluates elementwise
    assert np.allclose(ph.statistical_dimension(np.array([0, 5, 100]), 100),
                       [0.0, ph.statistical_dimension(5, 100), 100.0])


@given(d=st.integers(2, 400), frac=st.floats(0.0, 1.0))
def test_monotone_in_s_and_bounded(d, frac):
    s = frac * d
    psi = ph.statistical_dimension(s, d)
    assert s - 1e-9 <= psi <= d + 1e-9                      # F >= s (1 + tau^2) >= s, F(0) = d
    if s + 0.5 <= d:
        assert ph.statistical_dimension(s + 0.5, d) > psi


def test_descent_cone_dimension_known_cases_and_almt_bounds():
    # full support: the descent cone is a half-space, delta = d - 1/2; d = 2, s = 1: a right-angle wedge, delta = 1
    for (s, d), exact in [((3, 3), 2.5), ((1, 2), 1.0)]:
        val, se = ph.descent_cone_dimension(s, d, samples=100_000)
        assert abs(val - exact) < 4.5 * se + 1e-12
    assert ph.descent_cone_dimension(0, 50) == (0.0, 0.0)
    # ALMT Prop 4.5: psi - 2 sqrt(d/s) <= delta(D) <= psi (Jensen), and delta(D) rises with s
    prev = 0.0
    for s in (1, 5, 20):
        val, se = ph.descent_cone_dimension(s, 100, samples=40_000)
        psi = ph.statistical_dimension(s, 100)
        assert psi - 2 * math.sqrt(100 / s) - 5 * se <= val <= psi + 5 * se and val > prev
        prev = val
    assert ph.almt_halfwidth(100, 0.5) == pytest.approx(math.sqrt(8 * math.log(8)) * 10)


def test_sympy_identities():
    d = th.l1_descent()
    assert len(d.identities) >= 14
    assert any("sympy's integral" in i for i in d.identities)
    assert any("strictly convex" in i for i in d.identities)
    assert any("E[threshold] = delta + 1/2" in i for i in th.crofton(6).identities)
    F = ph._fns()[0]
    for s, dd, t in [(5, 100, 0.3), (2, 9, 2.2), (0, 4, 7.0)]:   # compiled F against its definition
        tail = quad(lambda u: (u - t) ** 2 * math.exp(-u * u / 2), t, math.inf, epsabs=1e-14)[0]
        assert F(t, s, dd) == pytest.approx(s * (1 + t * t) + (dd - s) * math.sqrt(2 / math.pi) * tail, rel=1e-10)
    with pytest.raises(ValueError):
        th.crofton(1)


@pytest.mark.parametrize("call", [
    lambda: ph.statistical_dimension(-1, 10), lambda: ph.statistical_dimension(11, 10),
    lambda: ph.statistical_dimension(1, 0), lambda: ph.statistical_dimension(float("nan"), 10),
    lambda: ph.statistical_dimension("a", 10), lambda: ph.tau_star(1, float("inf")),
    lambda: ph.descent_cone_dimension(2.5, 10), lambda: ph.descent_cone_dimension(11, 10),
    lambda: ph.descent_cone_dimension(1, 10, samples=1), lambda: ph.almt_halfwidth(100, 1.5),
    lambda: ph.almt_halfwidth(0, 0.5),
    lambda: ph.recovery_batch(30, 20, 2, [1e-3], [0]), lambda: ph.recovery_batch(5, 20, 2, [0.0], [0]),
    lambda: ph.recovery_batch(5, 20, 2, [1e-3], []), lambda: ph.recovery_batch(5, 20, 0, [1e-3], [0]),
    lambda: ph.mean_threshold([1, 2, 4], [0, 1, 2], 2), lambda: ph.mean_threshold([1, 2], [0, 3], 2),
    lambda: ph.n50_probit([1, 2], [0, 1, 1], 2),
])
def test_bad_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_recovery_batch_is_exact_at_alpha_zero_and_independent_of_batching():
    seeds = [np.random.SeedSequence([7, t]) for t in range(12)]
    alphas = [1e-2, 1e-6, 1e-30]
    for n in (5, 9, 13):
        a = ph.recovery_batch(n, 24, 3, alphas, seeds)
        b = {k: np.concatenate([v1, v2]) for (k, v1), v2 in
             zip(ph.recovery_batch(n, 24, 3, alphas, seeds[:5]).items(),
                 ph.recovery_batch(n, 24, 3, alphas, seeds[5:]).values())}
        for k in a:
            if k != "trial":
                assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
        zero = a["alpha"] == 0
        assert np.all(a["converged"])
        for t, sd in enumerate(seeds):   # the alpha -> 0 decision is min-l1's, however it was reached
            X, bs = ph.draw_instance(n, 24, 3, sd)
            b_l1 = min_l1(X, X @ bs).b
            assert bool(a["recovered"][zero][t]) == bool(np.linalg.norm(b_l1 - bs) < 1e-6), (n, t)


def test_batched_predictor_at_tiny_alpha_agrees_with_flow_limit():
    """The ridge in numerics.batched keeps the off-support directions, invisible to the residual, from drifting."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 20, 60))
    B = np.zeros((6, 60))
    B[:, :4] = rng.choice([-1.0, 1.0], (6, 4))
    Y = np.einsum("pnd,pd->pn", X, B)
    alphas = [1e-3, 1e-20, 1e-60]
    preds = sweep_flow_limits(X, Y, alphas, stage=6.0)
    for pr, a in zip(preds, alphas):
        assert all(s == "converged" for s in pr.status)
        for p in range(0, 6, 2):
            ref = flow_limit(X[p], Y[p], a)
            assert np.linalg.norm(pr.b[p] - ref.b) <= 1e-9 * np.linalg.norm(ref.b)


def test_curve_statistics_on_a_known_probit_curve():
    ns = np.arange(0, 41)
    T = np.full(ns.size, 400)
    p = 0.5 * (1 + np.vectorize(math.erf)((ns - 20.3) / (4.0 * math.sqrt(2))))
    k = np.round(p * T)
    pr = ph.n50_probit(ns, k, T)
    assert abs(pr["n50"] - 20.3) < 0.05 and abs(pr["width"] - 4.0) < 0.1 and 0 < pr["se"] < 0.2
    mt = ph.mean_threshold(ns, k, T)
    assert abs(mt["value"] - 20.8) < 0.05 and not mt["truncated_low"] and not mt["truncated_high"]
    it = ph.n50_interpolated(ns, k, T)
    assert abs(it["n50"] - 20.3) < 0.1 and it["se"] > 0
    flat = ph.n50_probit(ns, np.zeros(ns.size), T)
    assert math.isnan(flat["n50"]) and not flat["ok"]
