"""Predictors of numerics.dln: feasible, KKT, regimes, and trained GF limits equal the predictions."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numerics import flow_limit, min_l1, min_l2, potential, shape_limit
from numerics.compile import compiled
from theory import dln as th
from verify.train import dln as net
from verify.testing import problems as P, strategies as ibs

# Gaussian X (n x d), y from a seed: general position (a unique min-l1 vertex), n in 2..6, d in n..18
regressions = ibs.random_problems(P.DLNProblem, n=st.integers(2, 6), d=st.integers(3, 18), seed=st.integers(0, 10**6))

EPS = np.finfo(np.float64).eps


def mirror(b, alpha, depth):
    """grad Q at b, from theory.dln, and ln of the link's scale: `pm` asinh(b / (2 alpha^2)) ('mirror' = dQ_alpha/db);
    depth D: h_D^{-1}(b / alpha^D) (dq_D/dz = h_D^{-1}(z), 'q_of_s'), h_D odd and increasing on (-1, 1), inverted
    by bisection on the float64 grid of [0, 1] with the compiled 'h_stable' (s to within one ulp)."""
    if depth == 2:
        return compiled(th.pm, "mirror", ("b", "alpha"))(b, alpha), np.log(2.0) + 2 * np.log(alpha)
    h = compiled(th.depth, "h_stable", ("s",), "numpy", (depth,))
    z = np.abs(b) / alpha**depth
    lo, hi = np.zeros(z.shape, np.int64), np.full(z.shape, np.float64(1.0).view(np.int64))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        while np.any(hi - lo > 1):   # non-negative floats are ordered as their int64 bit patterns
            mid = (lo + hi) // 2
            up = h(mid.view(np.float64)) < z
            lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
        lo, hi = lo.view(np.float64), hi.view(np.float64)
        s = np.where(np.abs(h(lo) - z) <= np.abs(h(hi) - z), lo, hi)
    return np.sign(b) * s, depth * np.log(alpha)


@given(problem=regressions, la=st.floats(-12, 6), depth=st.sampled_from([2, 2, 3, 4]))
def test_prediction_interpolates_and_satisfies_kkt(problem, la, depth):
    """KKT of argmin_{Xb=y} Q (THEORY §1): feasibility X b = y to the reported residual, and stationarity
    grad Q(b) = X^T nu for the returned nu (so grad Q(b) is in range(X^T)).

    Stationarity tolerance per coordinate (float64 rounding; b = link(fl(X^T nu)) by the predictor): fl(X^T nu)
    is off by <= n eps (|X|^T |nu|)_i; the link's evaluation (exp/expm1 of arguments ~ ln scale and ln|b/scale|)
    moves b by a relative eps (1 + |ln scale| + ln(1 + |b|/scale)), which the mirror maps to at most that in s
    (mirror(b(1 + d)) - s ~ d b / link'(s), |b / link'| <= 1). Constant 8; measured <= 0.4 with constant 1."""
    X, y = problem.X, problem.y
    n, d = X.shape
    alpha = 10.0**la
    p = flow_limit(X, y, alpha, depth=depth)
    assert np.all(np.isfinite(p.b))
    assert p.converged and p.residual <= 1e-13, (p.status, p.residual)
    feas = np.linalg.norm(X @ p.b - y)   # recomputed: equals the reported residual up to the rounding of X b
    assert feas <= p.residual * np.linalg.norm(y) * (1 + 1e-12) + d * EPS * np.linalg.norm(np.abs(X) @ np.abs(p.b))
    grad_q, log_scale = mirror(p.b, alpha, depth)
    tol = 8 * EPS * (1 + n * (np.abs(X.T) @ np.abs(p.nu)) + abs(log_scale) + np.log1p(np.abs(p.b) / np.exp(log_scale)))
    err = np.abs(grad_q - X.T @ p.nu)
    assert np.all(err <= tol), (err / tol).max()


@given(problem=regressions, seed=st.integers(0, 10**6))
def test_potential_minimizer_beats_other_interpolators(problem, seed):
    X, y = problem.X, problem.y
    assume(X.shape[1] > X.shape[0])     # d = n: the interpolator is unique, nothing to compare against
    alpha = 0.3
    b = flow_limit(X, y, alpha).b
    rng = np.random.default_rng(seed)
    null = np.linalg.svd(X)[2][X.shape[0]:].T
    for _ in range(5):
        other = b + null @ rng.standard_normal(null.shape[1]) * 0.1
        assert potential(b, alpha) <= potential(other, alpha) + 1e-12


@given(problem=regressions)
def test_large_alpha_limit_is_min_l2(problem):
    X, y = problem.X, problem.y
    np.testing.assert_allclose(flow_limit(X, y, 1e4).b, min_l2(X, y).b, rtol=0, atol=1e-6 * np.linalg.norm(y))


@given(problem=regressions, la=st.floats(-30, -3))
def test_small_alpha_l1_gap_obeys_the_derived_1_over_L_bound(problem, la):
    """Q_alpha/L = ||b||_1 + R(b)/L + O(alpha^2), R = sum |b|(ln|b| - 1) (theory.dln.limits), so
    ||b_alpha||_1 - ||b_l1||_1 <= (R(b_l1) - R(b_alpha))/L up to 2 d alpha^2 / L."""
    X, y = problem.X, problem.y
    alpha = 10.0**la
    L = -2 * np.log(alpha)
    b1 = min_l1(X, y).b
    ba = flow_limit(X, y, alpha).b
    corr = compiled(th.limits, "l1_correction", ("b",))
    R = lambda b: float(np.sum(corr(b[b != 0])))  # noqa: E731
    gap = np.abs(ba).sum() - np.abs(b1).sum()
    assert -1e-9 <= gap <= (R(b1) - R(ba)) / L + 2 * X.shape[1] * alpha**2 / L + 1e-9


@settings(max_examples=10)
@given(problem=regressions, la=st.floats(-60, -10), depth=st.sampled_from([3, 4]))
def test_deep_small_alpha_l1_gap_obeys_the_derived_alpha_power_bound(problem, la, depth):
    """Q^D = ||b||_1 - (D/2) alpha^(D-2) sum |b|^(2/D) + o(alpha^(D-2)) (theory.dln.depth 'l1_correction'), so
    0 <= ||b_alpha||_1 - ||b_l1||_1 <= (D/2) alpha^(D-2) sum |b_alpha|^(2/D), up to the 1e-12 of two fits to 1e-13."""
    X, y = problem.X, problem.y
    alpha = 10.0**la
    p = flow_limit(X, y, alpha, depth=depth)
    assert p.converged, (p.status, p.residual)
    l1 = np.abs(min_l1(X, y).b).sum()
    gap = (np.abs(p.b).sum() - l1) / l1
    correction = -compiled(th.depth, "l1_correction", ("b", "alpha"), "numpy", (depth,))(p.b, alpha).sum()
    assert -1e-12 <= gap <= correction / l1 + 1e-12


@given(problem=regressions)
def test_off_support_coordinates_vanish_at_the_derived_exponent(problem):
    """ln|b_i| = 2(1 - |s_i|) ln alpha + const off the l1 support (theory.dln.limits), s = X^T nu the l1
    certificate, up to O(alpha^(2(1 - s_max))) (< 1e-6 for s_max < 0.9 on a non-degenerate vertex) and, from
    sinh -> exp/2, O(exp(-2 L |s_i|)): judged where L |s_i| >= 20 at the largest alpha, L = ln(1/alpha^2)."""
    X, y = problem.X, problem.y
    l1 = min_l1(X, y)
    off = np.abs(l1.b) == 0
    s = np.abs(X.T @ l1.nu)
    assume(np.sum(~off) == X.shape[0] and off.any() and s[off].max() < 0.9)
    la = np.array([-40.0, -80.0])
    B = np.array([flow_limit(X, y, 10.0**a).b for a in la])
    judged = off & (s * (-2 * la[0] * np.log(10)) >= 20)
    assume(judged.any())
    fitted = np.diff(np.log(np.abs(B[:, judged])), axis=0)[0] / np.diff(la * np.log(10))[0]
    np.testing.assert_allclose(fitted, compiled(th.limits, "rate_small_alpha", ("s",))(s[judged]), rtol=1e-5)


@settings(max_examples=3)
@given(seed=st.integers(0, 10**6))
def test_trained_gradient_flow_equals_prediction_on_small_instances(seed):
    problem = P.DLNProblem.random(seed, n=3, d=6)
    X, y = problem.X, problem.y
    alphas = np.array([0.3, 1.0])
    res = net.train_gf("pm", np.repeat(X[None], 2, 0), np.repeat(y[None], 2, 0), net.init_params("pm", alphas, 6),
                       [1e6], rtol=1e-10, atol=1e-12, stop_residual=1e-11, t_max=1e6)
    assert res.converged
    for r, a in enumerate(alphas):
        pred = flow_limit(X, y, a).b
        assert np.linalg.norm(res.b[-1, r].numpy() - pred) <= 1e-7 * np.linalg.norm(pred)


@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["pm", "uv"]), depth=st.sampled_from([2, 3]))
def test_closed_form_parameter_gradient_equals_autograd(seed, kind, depth):
    if kind == "uv":
        depth = 2
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.standard_normal((3, 4, 5)))
    y = torch.as_tensor(rng.standard_normal((3, 4)))
    params = torch.as_tensor(rng.uniform(0.2, 1.5, (3, 2, 5)), dtype=torch.float64).requires_grad_(True)
    net.loss(X, y, net.b_of(kind, params, depth)).sum().backward()
    g = net.grad_b(X, y, net.b_of(kind, params, depth))
    closed = net.param_grad(kind, params.detach(), g.detach(), depth)
    torch.testing.assert_close(closed, params.grad, rtol=1e-12, atol=1e-14)


def test_diverging_run_is_reported_and_others_continue():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 8)), rng.standard_normal(4)
    res = net.train_gd("pm", X, y, net.init_params("pm", [0.5, 0.5], 8), [0.01, 50.0], steps=20000, tol=1e-20)
    assert res.status == ["converged", "diverged"]
    assert np.all(np.isfinite(res.b.numpy()))


@pytest.mark.parametrize("bad, match", [
    (dict(X=np.ones((3,)), y=np.ones(3), alpha=1.0), "2-D"),
    (dict(X=np.ones((3, 4)), y=np.ones(2), alpha=1.0), "shape mismatch"),
    (dict(X=np.full((3, 4), np.nan), y=np.ones(3), alpha=1.0), "non-finite"),
    (dict(X=np.eye(3, 4), y=np.array([1, np.inf, 0.0]), alpha=1.0), "non-finite"),
    (dict(X=np.eye(3, 4), y=np.ones(3), alpha=0.0), "alpha"),
    (dict(X=np.eye(3, 4), y=np.ones(3), alpha=-1.0), "alpha"),
    (dict(X=np.eye(3, 4), y=np.ones(3), alpha=1.0, depth=1), "depth"),
    (dict(X=np.vstack([np.eye(2, 4), np.eye(2, 4)[:1]]), y=np.array([1.0, 0, 2.0]), alpha=1.0), "inconsistent"),
])
def test_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        flow_limit(**bad)


def test_balanced_coordinates_have_no_shape_potential():
    with pytest.raises(ValueError, match="u0"):
        shape_limit(np.eye(2, 3), np.ones(2), np.ones(3), np.ones(3))
