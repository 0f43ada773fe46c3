"""The error estimates the matrix-factorization claims add to their values (verify.claims.mf), checked directly."""
import numpy as np
from hypothesis import given, strategies as st

from numerics.matrix import commuting_basis, commuting_limit
from verify.claims.mf import _commuting_limit_gap, _commuting_problem, _ls_weight

seeds = st.integers(0, 2**31 - 1)


@given(seeds, st.sampled_from([1e-1, 1e-3]), st.sampled_from([1e-4, 1e-6]))
def test_limit_gap_estimate_matches_the_distance_to_the_limit_to_first_order(seed, alpha, size):
    """lambda = lambda_inf exp(-4 a^T dS) near the limit: the estimate from a lambda - y is ||lambda - lambda_inf||."""
    rng = np.random.default_rng(seed)
    A, y = _commuting_problem(rng, 6, 3)
    a = commuting_basis(A).a
    p = commuting_limit(A, y, alpha)
    dS = size * rng.standard_normal(3)
    lam = p.lam * np.exp(-4 * a.T @ dS)
    true = np.linalg.norm(lam - p.lam)
    est = _commuting_limit_gap(a, lam, a @ lam - y)
    assert abs(est - true) <= 50 * size * true + 1e-13 * np.linalg.norm(p.lam)


@given(seeds, st.integers(3, 40))
def test_least_squares_slope_is_bounded_by_the_grid_weight(seed, n):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-300, -60, n))
    e = rng.uniform(-1, 1, n)
    assert abs(np.polyfit(x, e, 1)[0]) <= _ls_weight(x) * np.abs(e).max() * (1 + 1e-9)
