"""Saddle-to-saddle limiting algorithm (Pesme & Flammarion 2023, Alg. 1) in the package convention."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numerics.dln import min_l1
from numerics.saddles import l1_kkt_residual, nnls, saddle_to_saddle
from theory.saddles import rescaled_dual
from verify.claims.dln_init import FIXTURE_FINAL, FIXTURE_X as FX, FIXTURE_Y
from verify.testing.problems import DLNProblem


def _instance(seed, n, extra):
    """Gaussian X (n, n + extra), y of verify.testing's DLNProblem.random(seed)."""
    p = DLNProblem.random(seed, n=n, d=n + extra)
    return p.X, p.y


def test_rescaled_dual_derivation_verifies():
    d = rescaled_dual()
    assert "s = -G(ell tau)/ell gives ds/dtau = -g" in d.identities
    assert len(d.identities) >= 8


def test_fixture_is_reproduced_exactly():
    p = saddle_to_saddle(FX, FIXTURE_Y, exact=True)
    assert list(p.saddles[-1]) == FIXTURE_FINAL
    assert sorted({i + 1 for s in p.saddles for i, v in enumerate(s) if v != 0}) == [1, 3, 4]
    assert p.losses[-1] == 0 and p.status == "converged"


@given(st.integers(0, 10**6), st.integers(2, 6), st.integers(2, 14))
def test_output_is_a_kkt_point_of_min_l1(seed, n, extra):
    X, y = _instance(seed, n, extra)
    p = saddle_to_saddle(X, y)
    assert p.status == "converged"
    assert np.allclose(X.T @ p.nus[-1], p.duals[-1], atol=1e-10)      # s in range(X^T)
    assert l1_kkt_residual(X, y, p.b, p.duals[-1]) < 1e-9
    b1 = min_l1(X, y).b
    assert abs(np.abs(p.b).sum() - np.abs(b1).sum()) < 1e-9 * max(1.0, np.abs(b1).sum())


@given(st.integers(0, 10**6), st.integers(1, 6), st.integers(0, 10))
def test_first_jump_time_is_inverse_sup_norm_of_correlation(seed, n, extra):
    X, y = _instance(seed, n, extra)
    p = saddle_to_saddle(X, y, max_jumps=1)
    assert p.times[1] == pytest.approx(1 / np.max(np.abs(X.T @ y / n)), rel=1e-13)


@given(st.integers(0, 10**6))
def test_times_increase_and_losses_decrease(seed):
    X, y = _instance(seed, 4, 8)
    p = saddle_to_saddle(X, y)
    assert np.all(np.diff(p.times) > 0)
    assert np.all(np.diff(p.losses) <= 1e-14)


def test_tied_jump_times_and_degenerate_sets_are_deterministic():
    # columns 1 and 2 identical: they reach the boundary together and the NNLS is non-unique
    X = [[1, 1, 0, Fraction(1, 3)], [0, 0, 1, Fraction(1, 2)]]
    y = [2, 1]
    p = saddle_to_saddle(X, y, exact=True)
    q = saddle_to_saddle(X, y, exact=True)
    assert [list(s) for s in p.saddles] == [list(s) for s in q.saddles]
    assert p.ties[1] == 2 and p.degenerate[1]
    assert list(p.saddles[1]) == [2, 0, 0, 0]       # the lowest tied index carries the weight (Lawson-Hanson)
    pf = saddle_to_saddle(np.array(X, dtype=float), np.array(y, dtype=float))
    assert np.allclose(np.asarray(p.saddles[-1], float), pf.b, atol=1e-12)


def test_nnls_exact_matches_float():
    rng = np.random.default_rng(0)
    A = rng.integers(-3, 4, (5, 4))
    y = rng.integers(-3, 4, 5)
    ze = nnls(np.array([[Fraction(int(v)) for v in r] for r in A], dtype=object),
              np.array([Fraction(int(v)) for v in y], dtype=object), exact=True)
    zf = nnls(A.astype(float), y.astype(float), tol=1e-13)
    assert np.allclose(ze.astype(float), zf, atol=1e-12)
    assert all(v >= 0 for v in ze)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape mismatch"):
        saddle_to_saddle(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="non-finite"):
        saddle_to_saddle(np.array([[1.0, np.nan]]), np.ones(1))
