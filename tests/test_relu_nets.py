"""Batched ReLU trainers and Monte Carlo samplers of verify.train.relu against autograd / per-run loops / closed forms."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics.relu import init_closed_forms, segment_measures
from verify.train.relu import _grads, as_two_layer, init_segment_samples, train_sweep


@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 10**6), st.floats(0.0, 0.1))
def test_handwritten_gradient_matches_autograd(m, R, seed, wd):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(7, 5, generator=g)
    Y = torch.nn.functional.one_hot(torch.randint(0, 3, (7,), generator=g), 3).double()
    W = torch.randn(R, m, 5, generator=g).requires_grad_()
    A = torch.randn(R, m, 3, generator=g).requires_grad_()
    lam = torch.full((R,), wd)
    logits = torch.relu(X @ W.transpose(1, 2)) @ A / m**0.5
    ce = (torch.logsumexp(logits, -1) - (logits * Y).sum(-1)).mean(-1)
    loss = ce + 0.5 * lam * (W.pow(2).sum((1, 2)) + A.pow(2).sum((1, 2)))
    gW, gA = torch.autograd.grad(loss.sum(), [W, A])
    mine, mW, mA = _grads(W.detach(), A.detach(), X, Y, m, lam)
    torch.testing.assert_close(mine, loss.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mW, gW, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(mA, gA, rtol=1e-11, atol=1e-12)


def test_batched_sweep_equals_per_run_sgd():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    widths, n_seeds, wds, epochs, lr, batch = [2, 5], 2, [0.0, 0.01], 3, 0.5, 10
    res = train_sweep(X, y, X, y, widths, n_seeds, wds, epochs, lr, batch, seed=11, device="cpu", k=3)
    Xt, Y = torch.tensor(X), torch.nn.functional.one_hot(torch.tensor(y), 3).double()
    gen = torch.Generator().manual_seed(11)
    inits = [(torch.randn(n_seeds, m, 4, generator=gen, dtype=torch.float64),
              torch.randn(n_seeds, m, 3, generator=gen, dtype=torch.float64)) for m in widths]
    orders = [torch.randperm(20, generator=gen) for _ in range(epochs)]
    for g, m in enumerate(widths):
        for iw, wd in enumerate(wds):
            for s in range(n_seeds):
                W = inits[g][0][s].clone().requires_grad_()
                A = inits[g][1][s].clone().requires_grad_()
                for order in orders:
                    for j in range(0, 20, batch):
                        idx = order[j:j + batch]
                        logits = torch.relu(Xt[idx] @ W.T) @ A / m**0.5
                        loss = (torch.logsumexp(logits, -1) - (logits * Y[idx]).sum(-1)).mean() \
                            + 0.5 * wd * (W.pow(2).sum() + A.pow(2).sum())
                        gW, gA = torch.autograd.grad(loss, [W, A])
                        with torch.no_grad():
                            W -= lr * gW
                            A -= lr * gA
                r = iw * n_seeds + s
                np.testing.assert_allclose(res.final[g][0][r], W.detach().numpy(), rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(res.final[g][1][r], A.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_as_two_layer_matches_ntk_network():
    rng = np.random.default_rng(0)
    W, A, x = rng.normal(size=(6, 3)), rng.normal(size=(6, 2)), rng.normal(size=3)
    net = as_two_layer(W, A)
    np.testing.assert_allclose(net.A @ np.maximum(net.W @ x, 0), A.T @ np.maximum(W @ x, 0) / np.sqrt(6))


@pytest.mark.parametrize("theta,r1", [(0.7, 1.0), (2.2, 1.6)])
def test_sampled_networks_match_closed_forms(theta, r1):
    d, m, n = 4, 16, 6000
    x0, x1 = np.r_[1.0, 0, 0, 0], np.r_[r1 * np.cos(theta), r1 * np.sin(theta), 0, 0]
    s = init_segment_samples(torch.Generator().manual_seed(5), n, m, x0, x1, [0.4], 1.0, 1.0, "cpu")
    cf = init_closed_forms(theta, 1.0, r1, 1.0, 1.0, d, np.array([0.4]))
    for key, ref in (("kinks_per_unit", "kinks_per_unit"), ("gap_sq", "gap_sq"), ("gap_along_sq", "gap_along_var"),
                     ("gap_across_sq", "gap_across_sq"), ("chord_sq", "chord_var")):
        v = s[key].reshape(n, -1)
        z = np.abs(v.mean(0) - cf[ref].ravel()) / (v.std(0, ddof=1) / np.sqrt(n))
        assert np.all(z < 4.5), (key, z)


def test_sampler_agrees_with_exact_segment_measures():
    gen = torch.Generator().manual_seed(1)
    x0, x1 = np.r_[1.0, 0.3, -0.2], np.r_[-0.4, 1.0, 0.5]
    s = init_segment_samples(gen, 1, 9, x0, x1, [0.5], 1.0, 1.0, "cpu")
    gen = torch.Generator().manual_seed(1)
    W = torch.randn(1, 9, 3, generator=gen, dtype=torch.float64)[0].numpy()
    a = torch.randn(1, 9, generator=gen, dtype=torch.float64)[0].numpy()
    meas = segment_measures(as_two_layer(W, a[:, None]), x0, x1)
    assert s["kinks_per_unit"][0] * 9 == meas["n_kinks"]
    assert s["gap_sq"][0] == pytest.approx(np.sum(meas["gap"] ** 2), rel=1e-12)
    assert s["gap_along_sq"][0] == pytest.approx(meas["gap_along"][0] ** 2, rel=1e-10)
    c = meas["profile"].chord_deviation([0.5])[0, 0]
    assert s["chord_sq"][0, 0] == pytest.approx(c**2, rel=1e-10, abs=1e-15)


def test_relu_claims_are_registered():
    from verify.claims import load_all

    ids = set(load_all())
    assert {"relu.width.sweep", "relu.path.measures", "relu.path.init", "relu.path.training"} <= ids
