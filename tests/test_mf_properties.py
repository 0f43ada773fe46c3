"""Properties of the matrix-factorization theory, predictors and trainers (Hypothesis, profile 'ci')."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from numerics.matrix import (balance_gap, balanced_factors, commuting_limit, commuting_trajectory, end_to_end_rhs,
                             integrate_end_to_end, require_balanced)
from verify.flow import integrate
from verify.matrix import deep_factor_grads, deep_rhs, sensing_grad, symmetric_rhs

seeds = st.integers(0, 2**31 - 1)


def _commuting(rng, d=4, m=2):
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a = rng.standard_normal((m, d))
    return np.einsum("ij,mj,kj->mik", Q, a, Q), a @ rng.uniform(0.5, 1.5, d)


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


@given(seeds, st.integers(2, 6), st.integers(2, 6))
def test_variational_identity_on_drawn_matrices(seed, n1, n2):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n1, n2))
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    Ub, Vb = U * np.sqrt(s), Vt.T * np.sqrt(s)
    assert np.isclose((np.sum(Ub**2) + np.sum(Vb**2)) / 2, s.sum(), rtol=1e-12)
    R = rng.standard_normal((len(s), len(s)))
    assert (np.sum((Ub @ R) ** 2) + np.sum((Vb @ np.linalg.inv(R).T) ** 2)) / 2 >= s.sum() * (1 - 1e-12)


@given(seeds, st.sampled_from([1e-1, 1e-2]))
def test_commuting_closed_form_satisfies_the_ode(seed, alpha):
    rng = np.random.default_rng(seed)
    A, y = _commuting(rng)
    t = np.array([0.5, 1.0 - 1e-4, 1.0, 1.0 + 1e-4])
    W, _, status = commuting_trajectory(A, y, alpha, t)
    assert status == "ok"
    m = A.shape[0]
    G = np.einsum("m,mij->ij", np.einsum("mij,ij->m", A, W[2]) - y, A) / m
    dW = (W[3] - W[1]) / 2e-4
    assert np.allclose(dW, -2 * (G @ W[2] + W[2] @ G), atol=1e-6 * (1 + np.abs(dW).max()))


def test_commuting_limit_matches_gf():
    rng = np.random.default_rng(3)
    A, y = _commuting(rng)
    rhs = symmetric_rhs(sensing_grad(torch.tensor(A), torch.tensor(y)), 4)
    res = integrate(rhs, (0.1 * torch.eye(4)).reshape(1, -1), [60.0], rtol=1e-12)
    U = res.states[-1, 0].reshape(4, 4)
    assert np.allclose(U @ U.T, commuting_limit(A, y, 0.1).W, atol=1e-8)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 3, 3))
    A = A + A.transpose(0, 2, 1)
    with pytest.raises(ValueError, match="do not commute"):
        commuting_limit(A, np.ones(2), 0.1)
    fac = [rng.standard_normal((3, 3)) for _ in range(2)]
    with pytest.raises(ValueError, match="unbalanced"):
        integrate_end_to_end(fac, lambda W: W, [1.0])
    Ac, _ = _commuting(rng, 4, 2)
    Ac = np.concatenate([Ac, Ac[:1]])
    with pytest.raises(ValueError, match="inconsistent"):
        commuting_limit(Ac, np.array([1.0, 1.0, -5.0]), 0.1)
