"""Properties of the matrix-factorization theory, predictors and trainers (Hypothesis, profile 'ci')."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from numerics.compile import compiled
from numerics.matrix import (balance_gap, balanced_factors, commuting_basis, commuting_limit, commuting_trajectory,
                             end_to_end_rhs, integrate_end_to_end, min_trace_certified, min_trace_commuting,
                             nuclear_norm, require_balanced)
from theory.matrix import tracenorm
from verify.train.flow import integrate
from verify.train.matrix import deep_factor_grads, deep_rhs, sensing_grad, symmetric_rhs
from verify.testing.problems import SensingProblem

seeds = st.integers(0, 2**31 - 1)


def _commuting(seed, d=4, m=2):
    """Commuting symmetric sensing (As, y) of verify.testing: A_i = Q diag(a_i) Q^T, y = a lam, lam in [0.5, 1.5]."""
    p = SensingProblem.random(seed, d=d, m=m)
    return p.As, p.y


@given(seeds, st.integers(2, 4))
def test_balancedness_conserved_along_trained_runs(seed, N):
    rng = np.random.default_rng(seed)
    d = 3
    A = rng.standard_normal((5, d, d))
    y = rng.standard_normal(5)
    fac = balanced_factors(0.3 * rng.standard_normal((d, d)), N, rng)
    th0 = torch.tensor(np.stack(fac)[None]).reshape(1, -1)
    res = integrate(deep_rhs(sensing_grad(torch.tensor(A), torch.tensor(y)), N, d), th0, [0.5, 2.0], rtol=1e-11)
    Ws = res.states[-1, 0].reshape(N, d, d)
    assert balance_gap(list(Ws)) < 1e-8


@given(seeds, st.integers(2, 4))
def test_end_to_end_rhs_equals_chain_rule_product(seed, N):
    rng = np.random.default_rng(seed)
    d = 3
    fac = balanced_factors(rng.standard_normal((d, d)), N, rng)
    G = rng.standard_normal((d, d))
    Ws = torch.tensor(np.stack(fac)[None])
    grads = deep_factor_grads(Ws, torch.tensor(G)[None])[0].numpy()
    chain = np.zeros((d, d))
    for j in range(N):
        left, right = np.eye(d), np.eye(d)
        for k in range(j + 1, N):
            left = fac[k] @ left
        for k in range(j):
            right = fac[k] @ right
        chain -= left @ grads[j] @ right
    W = require_balanced(fac)
    assert np.allclose(end_to_end_rhs(W, G, N), chain, atol=1e-9 * (1 + np.abs(chain).max()))


def _cost(U, V):
    return (np.sum(U**2) + np.sum(V**2)) / 2


@given(seeds, st.integers(2, 6), st.integers(1, 6))
def test_variational_trace_norm_attained_by_balanced_factors_and_a_lower_bound(seed, n, r):
    """||W||_* = min_{U V^T = W} (||U||^2 + ||V||^2)/2 (Srebro 2005): numerics.nuclear_norm vs balanced_factors."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, min(r, n))) @ rng.standard_normal((min(r, n), n))
    nuc = nuclear_norm(W)
    W1, W2 = balanced_factors(W, 2, rng)          # W = W2 W1: U = W2, V = W1^T
    assert np.allclose(W2 @ W1, W, atol=1e-12 * nuc)
    # a sum of squares of float64 SVD factors: a few ulp per singular value
    assert abs(_cost(W2, W1.T) - nuc) <= 1e-12 * nuc
    R = rng.standard_normal((n, n))
    assert _cost(W2 @ R, W1.T @ np.linalg.inv(R).T) >= nuc * (1 - 1e-12)


def test_tracenorm_derivation_and_compiled_2x2_norm_match_numerics():
    d = tracenorm()
    assert any("SVD-balanced" in i for i in d.identities) and any("||U - Z V||" in i for i in d.identities)
    f = compiled(tracenorm, "nuclear2", ("w00", "w01", "w10", "w11"))
    rng = np.random.default_rng(7)
    for W in rng.standard_normal((20, 2, 2)):
        assert f(*W.ravel()) == pytest.approx(nuclear_norm(W), rel=1e-13)


@given(seeds, st.sampled_from([1e-1, 1e-2]))
def test_commuting_closed_form_satisfies_the_ode(seed, alpha):
    A, y = _commuting(seed)
    t = np.array([0.5, 1.0 - 1e-4, 1.0, 1.0 + 1e-4])
    traj = commuting_trajectory(A, y, alpha, t)
    W = traj.W
    assert traj.converged and np.array_equal(traj.t, t)
    m = A.shape[0]
    G = np.einsum("m,mij->ij", np.einsum("mij,ij->m", A, W[2]) - y, A) / m
    dW = (W[3] - W[1]) / 2e-4
    assert np.allclose(dW, -2 * (G @ W[2] + W[2] @ G), atol=1e-6 * (1 + np.abs(dW).max()))


def test_commuting_limit_matches_gf():
    A, y = _commuting(3)
    rhs = symmetric_rhs(sensing_grad(torch.tensor(A), torch.tensor(y)), 4)
    res = integrate(rhs, (0.1 * torch.eye(4)).reshape(1, -1), [60.0], rtol=1e-12)
    U = res.states[-1, 0].reshape(4, 4)
    assert np.allclose(U @ U.T, commuting_limit(A, y, 0.1).W, atol=1e-8)


def test_commuting_newton_converges_where_armijo_on_the_dual_cannot_be_decided():
    """Seed 2 of mf.commuting.limit at alpha = 0.1: Armijo on phi stalled at ||grad|| 1.3e-8 (phi's rounding)."""
    A, y = _commuting(2 * 1_000_003 + 401, 6, 3)
    p = commuting_limit(A, y, 0.1)
    assert p.status == "converged" and p.residual <= 1e-14


@given(seeds, st.sampled_from([1e-30, 1e-80, 1e-150]))
def test_commuting_limit_at_tiny_alpha_converges_in_log_domain(seed, alpha):
    """ln lambda_j = ln alpha^2 + (a^T mu)_j stays finite where lambda underflows; support fits y."""
    A, y = _commuting(seed, 6, 3)
    p = commuting_limit(A, y, alpha)
    assert p.status == "converged" and p.residual <= 1e-12
    assert np.all(np.isfinite(p.log_lam)) and np.allclose(np.exp(p.log_lam), p.lam, rtol=1e-15, atol=0)
    lam_warm = commuting_limit(A, y, alpha, mu0=p.mu * 1.01).lam
    assert np.allclose(lam_warm, p.lam, rtol=1e-10, atol=1e-14 * p.lam.max())


@given(seeds)
def test_min_trace_commuting_vertex_is_refined_to_rounding(seed):
    A, y = _commuting(seed, 6, 3)
    lp = min_trace_commuting(A, y)
    lam, s = lp.lam, lp.s
    a = commuting_basis(A).a
    on = lam > 0
    assert np.linalg.norm(a @ lam - y) <= 1e-13 * np.linalg.norm(y) and lp.residual <= 1e-13
    if on.sum() == 3:   # a nondegenerate vertex: s = 1 on the support exactly, < 1 off it
        assert np.abs(s[on] - 1).max() <= 1e-12 and np.all(s[~on] < 1)


@given(seeds)
def test_min_trace_certificate_brackets_the_minimum(seed):
    """y^T nu_f <= min tr W <= tr(v v^T) with nu_f exactly dual feasible; tr W_solver within the solver's accuracy."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((4, 1))
    B = rng.standard_normal((6, 4, 4))
    A = (B + B.transpose(0, 2, 1)) / 2
    y = np.einsum("mij,ij->m", A, v @ v.T)
    c = min_trace_certified(A, y)
    assert abs(c.upper - c.lower) <= 1e-6 * c.upper   # Clarabel's gap and feasibility tolerances 1e-8, with margin
    assert np.linalg.eigvalsh(np.eye(4) - np.tensordot(c.nu, A, axes=1))[0] >= -1e-13
    assert c.lower <= np.trace(v @ v.T) * (1 + 1e-12)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 3, 3))
    A = A + A.transpose(0, 2, 1)
    with pytest.raises(ValueError, match="do not commute"):
        commuting_limit(A, np.ones(2), 0.1)
    fac = [rng.standard_normal((3, 3)) for _ in range(2)]
    with pytest.raises(ValueError, match="unbalanced"):
        integrate_end_to_end(fac, lambda W: W, [1.0])
    Ac, _ = _commuting(1, 4, 2)
    Ac = np.concatenate([Ac, Ac[:1]])
    with pytest.raises(ValueError, match="inconsistent"):
        commuting_limit(Ac, np.array([1.0, 1.0, -5.0]), 0.1)
