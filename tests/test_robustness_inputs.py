"""Bad inputs to public predictors and trainers: a ValueError with a message, or a correct finite result."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics import bregman_limit, flow_limit, isotropic_trajectory, min_l1, min_l2
from verify.train import dln as net
from verify.testing import strategies as ibs
from verify.testing.assertions import assert_value_error_or_finite


@given(problem=ibs.regression_inputs(), alpha=st.sampled_from([1e-12, 1e-3, 1.0, 1e6, 0.0, -1.0, np.nan]),
       depth=st.sampled_from([1, 2, 3, 2.5]))
def test_flow_limit_raises_or_returns_a_feasible_finite_interpolator(problem, alpha, depth):
    X, y, _ = problem
    out = assert_value_error_or_finite(flow_limit, X, y, alpha, depth=depth)
    if out is not None:
        assert out.residual <= 1e-6 or out.status != "converged"


@given(problem=ibs.regression_inputs())
def test_min_norm_references_raise_or_are_finite(problem):
    X, y, _ = problem
    for fn in (min_l2, min_l1):
        out = assert_value_error_or_finite(fn, X, y)
        assert out is None or out.converged


@given(problem=ibs.regression_inputs(), c=st.sampled_from([1e-20, 1.0, 0.0, -2.0, np.inf]))
def test_bregman_limit_raises_or_is_finite(problem, c):
    X, y, _ = problem
    assert_value_error_or_finite(bregman_limit, X, y, c)


@pytest.mark.parametrize("t, alpha", [([-1.0], 0.1), ([np.nan], 0.1), ([1.0], 0.0), ([1.0], -3.0)])
def test_isotropic_trajectory_rejects_bad_times_and_scales(t, alpha):
    with pytest.raises(ValueError):
        isotropic_trajectory(t, [1.0], alpha)


@pytest.mark.parametrize("eta", [0.0, -0.1, np.nan, [0.1, 0.2, 0.3]])
def test_trainer_rejects_bad_steps(eta):
    X, y = np.eye(2, 3), np.ones(2)
    with pytest.raises(ValueError, match="eta"):
        net.train_gd("pm", X, y, net.init_params("pm", [0.1, 0.2], 3), eta, steps=10)


@pytest.mark.parametrize("kind, alpha, depth", [("xy", 0.1, 2), ("pm", 0.0, 2), ("pm", 0.1, 1), ("uv", 0.1, 3)])
def test_trainer_rejects_bad_networks(kind, alpha, depth):
    with pytest.raises(ValueError):
        net.init_params(kind, [alpha], 3, depth=depth)


@given(seed=st.integers(0, 10**6), big=st.floats(5.0, 1e3))
def test_divergence_is_reported_per_run_never_as_nan(seed, big):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((3, 6)), rng.standard_normal(3)
    res = net.train_gd("uv", X, y, net.init_params("uv", [0.3, 0.3], 6), [1e-3, big], steps=3000, tol=1e-30)
    assert res.status[1] == "diverged" and res.status[0] != "diverged"
    assert torch.all(torch.isfinite(res.b)) and np.all(np.isfinite(res.steps))


def _conditioned(seed, n, d, cond):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    V = np.linalg.qr(rng.standard_normal((d, n)))[0]
    X = U @ np.diag(np.geomspace(1.0, 1.0 / cond, n)) @ V.T
    return X, X @ (rng.standard_normal(d) * (rng.random(d) < 0.5) + np.eye(d)[0])


@given(seed=st.integers(0, 10**6), log_cond=st.integers(0, 8), alpha=st.sampled_from([1e-12, 1e-6, 1e-3, 1.0, 1e3, 1e6]),
       depth=st.sampled_from([2, 3]))
def test_flow_limit_is_finite_and_its_residual_honest_across_scales_and_conditioning(seed, log_cond, alpha, depth):
    X, y = _conditioned(seed, 4, 8, 10.0**log_cond)
    p = flow_limit(X, y, alpha, depth=depth)
    assert np.all(np.isfinite(p.b))
    assert abs(np.linalg.norm(X @ p.b - y) / np.linalg.norm(y) - p.residual) <= 1e-12 + 1e-9 * p.residual
    assert (p.status == "converged") == (p.residual <= 1e-13) or p.status != "converged"


@given(seed=st.integers(0, 10**6), log_cond=st.integers(0, 3), alpha=st.sampled_from([1e-12, 1e-6, 1e-3, 1.0, 1e3, 1e6]))
def test_depth_two_flow_limit_fits_to_the_rounding_floor_for_alpha_from_1e_minus_12_to_1e6(seed, log_cond, alpha):
    """Converged (1e-13), or stalled at the float64 floor of ||X b - y||: 100 eps cond(X)."""
    X, y = _conditioned(seed, 4, 8, 10.0**log_cond)
    p = flow_limit(X, y, alpha)
    assert p.status in ("converged", "stalled") and p.residual <= max(1e-13, 100 * np.finfo(float).eps * 10.0**log_cond)
