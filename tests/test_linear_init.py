"""Underdetermined linear systems from an init: one layer, balanced deep nets and kappa (Gruber & Avron 2024)."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from numerics.linear import deep_limit, kappa, null_projection, one_layer_limit, pinv_solution
from theory.linear import deep, one_layer
from verify.train.dln import grad_b, loss
from verify.train.linear import balanced_init, end_to_end, gaussian_init, layer_grads, train_gd, train_gf
from verify.testing import problems as P, strategies as ibs


def _unit(X):
    """X scaled to lambda_max(X X^T / n) = 1 (GD at eta = 1 contracts; GF time in units of the fastest mode)."""
    return X / np.sqrt(np.linalg.eigvalsh(X @ X.T / X.shape[0]).max())


def test_derivations_verify():
    assert len(one_layer().identities) == 5
    for N in (2, 3, 4):
        assert any("Arora" in s for s in deep(N).identities)


@given(ibs.random_problems(P.LinearInitProblem, n=st.integers(1, 6), d=st.integers(2, 16), seed=st.integers(0, 10**6)),
       st.integers(2, 6))
def test_kappa_solves_its_equation(problem, N):
    X, y, w0 = _unit(problem.X), problem.y, problem.w0
    root = kappa(X, y, w0, N)
    k, res = root.value, root.residual
    A, B, C = w0 @ w0, np.sum(null_projection(X, w0) ** 2), np.sum(pinv_solution(X, y).b ** 2)
    assert k > 0 and res < 1e-13 and root.converged
    assert k ** (2 * N / (N - 1)) * A == pytest.approx(C + k**2 * B, rel=1e-12)


@given(st.integers(0, 10**6))
def test_kappa_depth2_matches_closed_form(seed):
    p = P.LinearInitProblem.random(seed)
    X, y, w0 = _unit(p.X), p.y, p.w0
    A, B, C = w0 @ w0, np.sum(null_projection(X, w0) ** 2), np.sum(pinv_solution(X, y).b ** 2)
    q = (B + np.sqrt(B**2 + 4 * A * C)) / (2 * A)
    assert kappa(X, y, w0, 2).value == pytest.approx(np.sqrt(q), rel=1e-13)


@given(st.integers(0, 10**6), st.sampled_from([2, 3]))
def test_deep_linear_null_space_direction_is_conserved(seed, N):
    p = P.LinearInitProblem.random(seed)
    X, y, w0 = _unit(p.X), p.y, p.w0
    w0t = torch.tensor(w0[None, :])
    res = train_gf(X, y, balanced_init(w0t, 3, N, seed=seed), t_max=30.0, rtol=1e-11, atol=1e-13,
                   stop_residual=None, t_eval=np.linspace(0, 30, 7))
    assert res.converged and res.b.shape == (7, 1, 7)
    p0 = null_projection(X, w0)
    for w in res.b[:, 0].numpy():
        pw = null_projection(X, w)
        cosine = pw @ p0 / (np.linalg.norm(pw) * np.linalg.norm(p0))
        assert cosine > 1 - 1e-10


def test_balanced_gf_reaches_deep_limit():
    p = P.LinearInitProblem.random(5)
    X, y, w0 = _unit(p.X), p.y, p.w0
    res = train_gf(X, y, balanced_init(torch.tensor(w0[None, :]), 3, 3, seed=1), t_max=1e4, stop_residual=1e-11)
    assert res.status == "event" and np.allclose(res.b[-1, 0].numpy(), deep_limit(X, y, w0, 3).b, rtol=0, atol=1e-9)


@given(st.integers(0, 10**6))
def test_one_layer_gd_limit_is_the_formula(seed):
    p = P.LinearInitProblem.random(seed, n=4, d=9)
    X, y, w0 = _unit(p.X), p.y, p.w0
    res = train_gd(X, y, [torch.tensor(w0[None, None, :])], eta=1.0, steps=100000, tol=1e-30)
    assert res.status == ["converged"]
    assert np.allclose(res.b[0].numpy(), one_layer_limit(X, y, w0).b, rtol=0, atol=1e-11)


def test_layer_grads_match_autograd():
    p = P.LinearInitProblem.random(0, n=4, d=6)
    X, y = _unit(p.X), p.y
    Ws = gaussian_init(2, 6, 5, 3, seed=0)
    Wt = [W.clone().requires_grad_() for W in Ws]
    Xt, yt = torch.tensor(X), torch.tensor(y)
    loss(Xt, yt, end_to_end(Wt)).sum().backward()
    G = layer_grads(Ws, grad_b(Xt, yt, end_to_end(Ws)))
    for a, g in zip(Wt, G):
        assert torch.allclose(a.grad, g, atol=1e-14)


def test_balanced_init_is_balanced_with_end_to_end_w0():
    w0 = torch.tensor(np.random.default_rng(1).standard_normal((2, 5)))
    Ws = balanced_init(w0, 4, 4, seed=0)
    assert torch.allclose(end_to_end(Ws), w0, atol=1e-14)
    for Wa, Wb in zip(Ws[:-1], Ws[1:]):
        assert torch.allclose(Wb.transpose(1, 2) @ Wb, Wa @ Wa.transpose(1, 2), atol=1e-14)


def test_rank_deficient_X_is_rejected():
    X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
    with pytest.raises(ValueError, match="full row rank"):
        one_layer_limit(X, np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match="full row rank"):
        kappa(X, np.ones(2), np.ones(3), 3)
    with pytest.raises(ValueError, match="w0 = 0"):
        kappa(np.eye(2, 3), np.ones(2), np.zeros(3), 2)


def test_tiny_nonzero_w0_is_an_underflow_not_a_saddle():
    with pytest.raises(ValueError, match="underflows"):
        kappa(np.eye(2, 3), np.ones(2), np.full(3, 1e-200), 3)
