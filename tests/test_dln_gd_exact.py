"""Properties of the exact GD/SGD identity (theory.dln_gd, numerics.dln_gd)."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from numerics.dln_gd import GDStats, exact_limit
from verify.dln import init_params, train_gd


@given(st.integers(0, 10**6), st.floats(0.05, 1.0), st.floats(0.01, 0.3))
def test_gd_identity_step_by_step(seed, alpha, eta):
    """(u+v)_k = sqrt2 alpha prod(1 - eta g), u^2 - v^2 = 2 alpha_k^2 cosh-free form: b_k = c sinh(theta + s_k)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 6)); y = rng.standard_normal(3)
    st_ = GDStats("uv", alpha, 1, 6)
    p = init_params("uv", [alpha], 6)
    P = torch.ones(1, 6); M = torch.ones(1, 6)
    for _ in range(20):
        b = p[:, 0] * p[:, 1]
        g = torch.as_tensor((b.numpy() @ X.T - y) @ X / 3)
        st_.update(g, eta)
        P, M = P * (1 - eta * g), M * (1 + eta * g)
        p = torch.stack([p[:, 0] - eta * p[:, 1] * g, p[:, 1] - eta * p[:, 0] * g], 1)
    a2 = st_.alpha_sq()
    assert np.allclose(((p[:, 0] + p[:, 1]) / (np.sqrt(2) * alpha)).numpy(), P.numpy(), rtol=1e-10)
    assert np.allclose(((p[:, 0] ** 2 - p[:, 1] ** 2) / 2).abs().numpy(), a2 * np.cosh(0) * np.abs(
        ((P * M).numpy()) / np.abs((P * M).numpy())), rtol=1e-9)


def test_exact_limit_rejects_degenerate_step():
    st_ = GDStats("uv", 0.1, 1, 2)
    st_.update(torch.tensor([[1.0, 0.2]]), 1.0)
    X = np.eye(2); y = np.ones(2)
    with pytest.raises(ValueError, match="1 - x = 0"):
        exact_limit(X, y, st_, 0)


def test_eta_nonpositive_rejected():
    with pytest.raises(ValueError):
        train_gd("uv", np.eye(2), np.ones(2), init_params("uv", [0.1], 2), 0.0, 10)
