"""Exact along-segment geometry of two-layer ReLU networks (numerics.relu) on drawn networks and segments."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics.relu import breakpoints, forward, input_gradient, segment_measures, segment_profile, two_layer

nets = st.tuples(st.integers(1, 300), st.integers(1, 12), st.integers(1, 3), st.integers(0, 2**31 - 1))


def draw(m, d, k, seed):
    rng = np.random.default_rng(seed)
    net = two_layer(rng.normal(size=(m, d)), rng.normal(size=(k, m)) / np.sqrt(m), rng.normal(size=m), rng.normal(size=k))
    return net, rng.normal(size=d) * 2, rng.normal(size=d) * 2


def scale(net, x0, x1):
    P = np.stack([x0, x1])
    return float(np.max(np.abs(net.A) @ (np.abs(net.W) @ np.abs(P).T + np.abs(net.b)[:, None])) + np.abs(net.c).max())


@given(nets)
def test_breakpoints_are_zeros_of_preactivations(spec):
    net, x0, x1 = draw(*spec)
    ts = breakpoints(net, x0, x1)
    pre = (x0 + ts[:, None] * (x1 - x0)) @ net.W.T + net.b
    assert np.all((ts > 0) & (ts < 1)) and np.all(np.diff(ts) > 0)
    mag = np.abs(x0) @ np.abs(net.W.T) + np.abs(x1) @ np.abs(net.W.T) + np.abs(net.b)
    assert np.all(np.min(np.abs(pre) / mag, axis=1) <= 1e-13)


@given(nets)
def test_activation_pattern_is_constant_between_breakpoints(spec):
    net, x0, x1 = draw(*spec)
    knots = segment_profile(net, x0, x1).knots
    rng = np.random.default_rng(spec[3] + 1)
    for a, b in zip(knots[:-1], knots[1:]):
        ts = a + (b - a) * np.r_[0.5, rng.uniform(0.01, 0.99, 5)]
        pat = ((x0 + ts[:, None] * (x1 - x0)) @ net.W.T + net.b) > 0
        assert np.all(pat == pat[0])


@given(nets)
def test_f_is_linear_between_consecutive_breakpoints(spec):
    net, x0, x1 = draw(*spec)
    prof = segment_profile(net, x0, x1)
    rng = np.random.default_rng(spec[3] + 2)
    frac = rng.uniform(0, 1, 7)
    ts = (prof.knots[:-1, None] + frac * np.diff(prof.knots)[:, None]).ravel()
    exact = forward(net, x0 + ts[:, None] * (x1 - x0))
    assert np.abs(exact - prof(ts)).max() <= 1e-12 * scale(net, x0, x1)
    h = np.diff(prof.knots)[:, None]
    np.testing.assert_allclose(np.diff(prof.values, axis=0), prof.slopes * h, atol=1e-12 * scale(net, x0, x1))


@given(nets)
def test_gradient_gap_matches_autograd(spec):
    net, x0, x1 = draw(*spec)
    W, b, A, c = (torch.tensor(v) for v in (net.W, net.b, net.A, net.c))

    def grad(x):
        return torch.func.jacrev(lambda z: A @ torch.relu(W @ z + b) + c)(torch.tensor(x)).numpy()

    gap = grad(x1) - grad(x0)
    meas = segment_measures(net, x0, x1)
    u = (x1 - x0) / np.linalg.norm(x1 - x0)
    np.testing.assert_allclose(meas["gap"], gap, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(meas["gap_along"], gap @ u, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(meas["deflection"], np.linalg.norm(gap - np.outer(gap @ u, u), axis=1),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(input_gradient(net, x0), grad(x0), rtol=1e-12, atol=1e-13)


@given(nets)
def test_slopes_are_autograd_directional_derivatives(spec):
    net, x0, x1 = draw(*spec)
    prof = segment_profile(net, x0, x1)
    W, b, A, c = (torch.tensor(v) for v in (net.W, net.b, net.A, net.c))
    x0t, dx = torch.tensor(x0), torch.tensor(x1 - x0)
    for i, tm in enumerate(0.5 * (prof.knots[1:] + prof.knots[:-1])):
        _, jv = torch.func.jvp(lambda s: A @ torch.relu(W @ (x0t + s * dx) + b) + c, (torch.tensor(tm),),
                               (torch.tensor(1.0),))
        np.testing.assert_allclose(prof.slopes[i], jv.numpy(), rtol=1e-11, atol=1e-12)


@given(nets, st.floats(0.01, 100.0))
def test_kappa_is_invariant_to_output_scale(spec, s):
    net, x0, x1 = draw(*spec)
    k1 = segment_measures(net, x0, x1)["kappa"]
    k2 = segment_measures(two_layer(net.W, s * net.A, net.b, s * net.c), x0, x1)["kappa"]
    assert k2 == pytest.approx(k1, rel=1e-9, abs=1e-15)


def test_segment_without_kinks_is_straight():
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    net = two_layer(W, np.array([2.0, -1.0]), b=np.array([5.0, 5.0]))
    meas = segment_measures(net, np.array([0.0, 0.0]), np.array([1.0, 2.0]))
    assert meas["n_kinks"] == 0 and meas["kappa"] == 0.0 and meas["chord_max"] <= 1e-15


def test_one_kink_has_its_closed_form_chord_deviation():
    net = two_layer(np.array([[1.0]]), np.array([1.0]))  # f = relu(x) on [-1, 1]
    meas = segment_measures(net, np.array([-1.0]), np.array([1.0]))
    assert breakpoints(net, np.array([-1.0]), np.array([1.0])).tolist() == [0.5]
    assert meas["chord_max"] == pytest.approx(0.5)       # c(t) = relu(2t-1) - t, min -1/2 at t = 1/2
    assert meas["chord_l2"] == pytest.approx(np.sqrt(1 / 12))
    assert meas["gap_along"][0] == pytest.approx(1.0) and meas["deflection"][0] == 0.0


def test_bad_inputs_raise_clear_errors():
    net = two_layer(np.ones((3, 2)), np.ones(3))
    x = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="identical"):
        segment_measures(net, x, x.copy())
    with pytest.raises(ValueError, match="zero-width"):
        two_layer(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="non-finite"):
        segment_profile(net, x, np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="non-finite"):
        two_layer(np.array([[np.inf, 1.0]]), np.ones(1))
    with pytest.raises(ValueError, match="length d"):
        breakpoints(net, x, np.ones(3))
    with pytest.raises(ValueError, match="A must"):
        two_layer(np.ones((3, 2)), np.ones(4))
