"""Properties of the sharpness formulas and the minimum-sharpness SDP."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from numerics.dln import flow_limit
from numerics.dln_gd import GDStats
from numerics.sharpness import (gf_path_sharpness, gfs_sharpness, hessian_full, lam_max, min_sharpness,
                                 sharpness_full, sharpness_interp)
from verify.train import dln as net
from verify.train.sharpness import lanczos_top


@given(st.integers(0, 10**6), st.sampled_from([("uv", 2), ("pm", 2), ("shared", 1)]))
def test_hessian_formula_equals_autograd(seed, kk):
    kind, k = kk
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 5)); y = rng.standard_normal(3)
    P = rng.standard_normal((2, k, 5))
    lz = lanczos_top(kind, torch.as_tensor(P), X, y).numpy()
    assert np.allclose(lz, sharpness_full(kind, P, X, y), rtol=1e-9, atol=1e-10)


@settings(max_examples=5)
@given(st.integers(0, 10**6))
def test_min_sharpness_below_any_interpolator(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, 6)); y = rng.standard_normal(2)
    ms = min_sharpness(X, y)
    N = np.linalg.svd(X)[2][2:].T
    b = np.linalg.lstsq(X, y, rcond=None)[0][:, None] + N @ rng.standard_normal((4, 20))
    assert np.all(ms.value <= lam_max(X, np.abs(b.T)) * (1 + 1e-9))
    assert ms.gap <= 1e-7


def _autograd_hessian(kind, depth, P, X, y):
    """Hessian of L = ||X b - y||^2 / (2n) in parameter space by torch.func, one run."""
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)

    def loss(th):
        b = th[0] ** 2 if kind == "shared" else net.b_of(kind, th[None], depth)[0]
        return net.loss(Xt, yt, b[None])[0]

    k, d = P.shape
    return torch.func.hessian(loss)(torch.as_tensor(P)).reshape(k * d, k * d).numpy()


@given(st.integers(0, 10**6), st.sampled_from([("uv", 2), ("pm", 2), ("pm", 3), ("pm", 4), ("shared", 2)]))
def test_full_hessian_formula_equals_autograd_away_from_interpolators(seed, kind_depth):
    kind, depth = kind_depth
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((3, 4)), rng.standard_normal(3)
    P = rng.uniform(0.2, 1.5, (1 if kind == "shared" else 2, 4)) * rng.choice([-1, 1], 4)
    H = hessian_full(kind, P[None], X, y, depth)[0]
    assert np.allclose(H, _autograd_hessian(kind, depth, P, X, y), rtol=1e-12, atol=1e-12)


@settings(max_examples=8)
@given(st.integers(0, 10**6), st.sampled_from([0.05, 0.1, 0.3]))
def test_every_converged_gd_run_satisfies_the_stability_bound(seed, alpha):
    """S <= 2/eta at any GD limit; 1e-6 is the margin a minimum with eta S / 2 = 1 + 1e-6 needs ~1e6 steps to leave."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 6))
    y = X @ (rng.standard_normal(6) * (rng.random(6) < 0.5))
    if not np.any(y):
        y = X[:, 0]
    S_gf = gf_path_sharpness(X, y, alpha, "uv", t_max=1e4, points=50).S_path_max
    etas = 2 / S_gf * np.geomspace(0.3, 6.0, 10)
    res = net.train_gd("uv", X, y, net.init_params("uv", np.full(10, alpha), 6), etas, 10000)
    conv = np.array([s == "converged" for s in res.status])
    S = sharpness_full("uv", res.params.numpy(), X, y)
    assert conv.any()
    assert np.all(S[conv] * etas[conv] / 2 <= 1 + 1e-6)


@given(st.integers(0, 10**6), st.sampled_from(["uv", "pm"]), st.sampled_from([0.05, 0.3, 1.0]))
def test_gf_solution_sharpness_from_untrained_stats_is_the_gf_limit_sharpness(seed, kind, alpha):
    """Reference: the network at the GF limit, from u^2 - v^2 = 2 alpha^2 (`uv`) or w+ w- = alpha^2 (`pm`)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 6)); y = rng.standard_normal(3)
    b = flow_limit(X, y, alpha, parametrization=kind).b
    if kind == "uv":
        u = np.sqrt(alpha**2 + np.sqrt(alpha**4 + b**2))
        P = np.stack([u, b / u])
    else:
        wp = np.sqrt((b + np.sqrt(b**2 + 4 * alpha**4)) / 2)
        P = np.stack([wp, alpha**2 / wp])
    S = gfs_sharpness(kind, X, y, alpha**2, np.zeros(6)).sharpness
    assert S == pytest.approx(sharpness_interp(kind, P[None], X)[0], rel=1e-10)


@settings(max_examples=4)
@given(st.integers(0, 10**6), st.sampled_from(["uv", "pm"]), st.sampled_from([0.05, 0.1, 0.3]))
def test_gf_solution_sharpness_of_a_converged_gd_run_is_the_run_sharpness(seed, kind, alpha):
    """At a GD limit the GF solution is the iterate itself; 1e-8: the exact GD limit holds to 1e-9 (dln.gd.exact)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 6)); y = X @ rng.standard_normal(6)
    etas = 2 / gfs_sharpness(kind, X, y, alpha**2, np.zeros(6)).sharpness * np.geomspace(0.3, 1.5, 6)
    stats = GDStats(kind, alpha, 6, 6)
    res = net.train_gd(kind, X, y, net.init_params(kind, np.full(6, alpha), 6), etas, 10000,
                       on_step=stats.callback(torch.as_tensor(etas)))
    conv = [i for i, s in enumerate(res.status) if s == "converged"]
    assert conv
    S = sharpness_interp(kind, res.params.numpy()[conv], X)
    S_gfs = [gfs_sharpness(kind, X, y, stats.alpha_sq()[i], stats.theta()[i]).sharpness for i in conv]
    assert np.allclose(S_gfs, S, rtol=1e-8, atol=0)


def test_min_sharpness_rejects_inconsistent_measurements():
    X = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="inconsistent"):
        min_sharpness(X, np.array([1.0, 2.0]))


def test_unsolved_sdp_is_an_error_not_a_number(monkeypatch):
    import cvxpy as cp

    def fail(self, *a, **k):
        raise cp.error.SolverError("forced failure")
    monkeypatch.setattr(cp.Problem, "solve", fail)
    with pytest.raises(ValueError, match="solver failed"):
        min_sharpness(np.eye(2, 4), np.ones(2))


def test_run_stopped_before_convergence_is_reported_as_max_steps():
    X, y = np.eye(2, 3), np.ones(2)
    res = net.train_gd("uv", X, y, net.init_params("uv", [0.1], 3), 0.01, steps=20)
    assert list(res.status) == ["max_steps"] and np.all(np.isfinite(res.b.numpy()))
