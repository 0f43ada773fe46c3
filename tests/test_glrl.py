"""GLRL (Li, Luo, Lyu 2021): derivation, predictor certificates, the commuting case, bad inputs (Hypothesis, 'ci')."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from numerics.compile import compiled
from numerics.glrl import (completion_sensing, contraction_rates, glrl, gradient, hessian_U, rates,
                           symmetric_sensing)
from numerics.matrix import commuting_basis, commuting_limit, min_trace_commuting
from theory.glrl import glrl as glrl_theory
from verify.testing.problems import SensingProblem

seeds = st.integers(0, 2**31 - 1)


def _commuting(seed, d, m):
    """Commuting symmetric sensing of verify.testing (As, y) with its shared eigenbasis Q and eigenvalues a (m, d)."""
    p = SensingProblem.random(seed, d=d, m=m)
    basis = commuting_basis(p.As)
    return p.As, p.y, basis.Q, basis.a


def _sensing(rng, d=4, m=12, k=2):
    B = rng.standard_normal((m, d, d))
    A = (B + B.transpose(0, 2, 1)) / 2
    V = rng.standard_normal((d, k))
    return A, np.einsum("mij,ij->m", A, V @ V.T - 0.3 * np.trace(V @ V.T) / d * np.eye(d))


def test_derivation_checks_its_steps():
    d = glrl_theory()
    assert len(d.identities) >= 20
    assert any("2 G U" in i for i in d.identities) and any("e^{2 lambda t}" in i for i in d.identities)
    rate = compiled(glrl_theory, "u_rate", ("lambda",))
    assert rate(0.7) == pytest.approx(1.4)   # U-level escape rate 2 lambda (W level 4 lambda)
    nxt = compiled(glrl_theory, "next_exponents", ("e_j", "e_1", "lambda_j", "lambda_1"))
    assert nxt(2.0, 2.0, 0.5, 1.0) == pytest.approx(1.0)   # the linear phase: 2 (1 - lambda_2/lambda_1)


@given(seeds, st.integers(2, 5))
def test_one_measurement_commuting_glrl_equals_closed_form_at_small_alpha(seed, d):
    """m = 1: both put all the mass on argmax_j a_j y (GLRL's first escape; the min-trace LP vertex). The closed form at
    alpha = 1e-30 keeps lambda_j / lambda_max ~ alpha^(2(1 - s_j)), s = a y / max(a y): judged where that is <= 1e-9."""
    A, y, _, a = _commuting(seed, d, 1)
    s = np.sort(a[0] * y[0] / np.max(a[0] * y[0]))[::-1]
    assume(s.size < 2 or 2 * (1 - s[1]) * 30 >= 9)
    p = glrl(A, y)
    c = commuting_limit(A, y, 1e-30)
    assert p.status == "converged" and len(p.saddles) == 1
    assert np.linalg.norm(p.W - c.W) <= 1e-8 * np.linalg.norm(c.W)


@given(seeds, st.integers(3, 5), st.integers(1, 3))
def test_commuting_first_iterate_is_the_rank_one_fit_along_the_top_gradient_eigenvector(seed, d, m):
    """Commuting sensing: G is diagonal in Q, so the rank-1 flow stays on q_j*, j* = argmax (a^T y)_j, and stops at the
    one-dimensional least-squares fit c = a_j*^T y / ||a_j*||^2."""
    A, y, Q, a = _commuting(seed, d, m)
    s = a.T @ y
    if np.sort(s)[-1] <= 0 or np.sort(s)[-1] - np.sort(s)[-2] < 1e-3 * np.abs(s).max():
        return   # no positive escape direction, or a near tie between two eigenvectors
    p = glrl(A, y, max_rank=1)
    j = int(np.argmax(s))
    c = a[:, j] @ y / (a[:, j] @ a[:, j])
    W1 = c * np.outer(Q[:, j], Q[:, j])
    assert np.linalg.norm(p.saddles[0].W - W1) <= 1e-9 * np.linalg.norm(W1)


def test_commuting_glrl_is_not_the_small_init_limit_in_general():
    """Finding: with commuting sensing GF keeps W diagonal in Q (W = D W0 D), so its escapes are ordered by the
    integrated gradient (the closed form's path to the min-trace vertex), while GLRL takes the current gradient's top
    eigenvector. default_rng(13), d = 4, m = 2: the two limits differ by O(1); the closed form is the LP vertex."""
    A, y, _, _ = _commuting(13, 4, 2)
    p = glrl(A, y)
    c = commuting_limit(A, y, 1e-30)
    Wm = min_trace_commuting(A, y).W
    assert p.status == "converged" and p.residual < 1e-12
    assert np.linalg.norm(Wm - c.W) <= 1e-5 * np.linalg.norm(c.W)
    assert np.linalg.norm(p.W - c.W) >= 0.5 * np.linalg.norm(c.W)
    assert np.trace(p.W) > np.trace(c.W)


@given(seeds)
def test_glrl_iterates_are_certified_critical_points_with_growing_rank(seed):
    rng = np.random.default_rng(seed)
    A, y = _sensing(rng)
    p = glrl(A, y)
    assert p.saddles, "a nonzero y has a positive escape direction at W = 0"
    losses = [s.loss for s in p.saddles]
    for r, s in enumerate(p.saddles, start=1):
        assert s.rank == r and s.U.shape == (4, r)
        if s.status == "converged":
            assert s.grad_norm <= 1e-12
            assert np.linalg.norm(gradient(A, y, s.W) @ s.W) <= 1e-10 * p.scale * max(1.0, np.linalg.norm(s.W))
    assert all(b <= a + 1e-15 for a, b in zip(losses, losses[1:]))
    if p.status == "converged":
        assert p.saddles[-1].lam.size == 0 or p.saddles[-1].lam[0] <= 1e-9 * p.scale
        assert p.lam_max_end <= 1e-9 * p.scale


def test_contraction_rates_skip_the_rotation_null_space():
    rng = np.random.default_rng(4)
    A, y = _sensing(rng, 4, 14, 2)
    p = glrl(A, y, max_rank=2)
    s = p.saddles[1]
    H = hessian_U(A, y, s.U)
    ev = np.linalg.eigvalsh(H)
    assert np.sum(np.abs(ev) < 1e-8 * np.abs(ev).max()) >= 1          # U Omega, Omega skew (r = 2: one direction)
    mu = contraction_rates(A, y, s.U)
    assert mu.size == s.U.size - 1 and mu[0] == pytest.approx(s.mu)


def test_rates_follow_the_derived_recursion():
    rng = np.random.default_rng(2)
    A, y = _sensing(rng, 5, 20, 3)
    p = glrl(A, y)
    ex = rates(p)
    l0 = p.lam0
    assert ex["e"][0] == pytest.approx(2 * (1 - l0[1] / l0[0]))
    s1 = p.saddles[0]
    if len(p.saddles) > 1:
        assert ex["kappa"][0] == pytest.approx(ex["e"][0] * s1.mu / (s1.mu + 4 * s1.lam[0]))
        assert ex["closest_time_slope"][0] == pytest.approx(2 / (4 * l0[0]) + ex["e"][0] / (s1.mu + 4 * s1.lam[0]))


def test_completion_sensing_measures_the_observed_entries():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((4, 4))
    M = M + M.T
    mask = np.eye(4, dtype=bool)
    mask[0, 2] = mask[2, 0] = True
    A, y = completion_sensing(mask, M)
    W = rng.standard_normal((4, 4))
    W = W + W.T
    assert np.allclose(np.einsum("mij,ij->m", A, W), [W[0, 0], W[0, 2], W[1, 1], W[2, 2], W[3, 3]])
    assert np.allclose(y, [M[0, 0], M[0, 2], M[1, 1], M[2, 2], M[3, 3]])


def test_bad_inputs_raise_one_clear_error_each():
    rng = np.random.default_rng(0)
    A, y = _sensing(rng, 3, 6, 1)
    with pytest.raises(ValueError, match="exceeds the matrix size"):
        glrl(A, y, max_rank=4)
    B = A.copy()
    B[0, 0, 1] += 1.0
    with pytest.raises(ValueError, match="must be symmetric"):
        glrl(B, y)
    C = A.copy()
    C[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        glrl(C, y)
    with pytest.raises(ValueError, match="non-finite"):
        glrl(A, np.where(np.arange(6) == 0, np.inf, y))
    with pytest.raises(ValueError, match="shape mismatch"):
        glrl(A, y[:-1])
    with pytest.raises(ValueError, match="square matrices"):
        glrl(A[:, :, :2], y)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        glrl(A, y, eps=0.0)
    with pytest.raises(ValueError, match="all zero"):
        symmetric_sensing(np.zeros((2, 3, 3)), [1.0, 2.0])
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 1] = True
    with pytest.raises(ValueError, match="mask must be symmetric"):
        completion_sensing(mask, np.eye(3))
    with pytest.raises(ValueError, match="shape mismatch"):
        completion_sensing(np.ones((2, 2), dtype=bool), np.eye(3))
    with pytest.raises(ValueError, match="observes no entry"):
        completion_sensing(np.zeros((3, 3), dtype=bool), np.eye(3))


@given(st.floats(0.5, 3.0), st.floats(0.5, 3.0), st.floats(0.0, 1.0), st.floats(-8.0, -2.0))
def test_closest_approach_error_estimate_covers_the_true_minimum(mu, nu, phase, log_delta):
    """Passing a saddle, D(t) = e^{-mu s} + delta e^{nu s}; the quartic/parabola pair bounds the refined minimum's error."""
    from verify.claims.glrl import H, _refined_min
    delta = 10.0**log_delta
    t = np.arange(0.0, 40.0, H) + phase * H
    s_star = np.log(mu / (nu * delta)) / (mu + nu)
    t0 = 20.0 - s_star
    D = np.exp(-mu * (t - t0)) + delta * np.exp(nu * (t - t0))
    d_true = np.exp(-mu * s_star) + delta * np.exp(nu * s_star)
    d, tm, interior, e_ln, e_t = _refined_min(t, D)
    assert interior
    assert abs((tm - t0) - s_star) <= e_t + 1e-9
    assert abs(np.log(d) - np.log(d_true)) <= e_ln + 1e-12


@given(st.floats(0.1, 1.0))
def test_alpha_range_reaches_the_asymptotic_regime_of_the_correction_rate(p):
    from verify.claims.glrl import ASYMPTOTIC, alphas_for
    a = alphas_for(p)
    assert a[0] == 1e-2 and a[-1] <= 1e-10 and a[-1] ** p <= ASYMPTOTIC * (1 + 1e-9)
    assert a[-1] == 1e-10 or (a[-1] * 10) ** p > ASYMPTOTIC
