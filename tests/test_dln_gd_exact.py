"""numerics.dln_gd (GDStats, exact_limit) against an independent reference: the exact GD identity of Even et al. 2023
(arXiv 2302.08982, Thm 1) evaluated by the test on the trained iterate of verify.train.dln.train_gd.

Factors f+- of a network: (u +- v)/sqrt2 for `uv`, w+- for `pm`. The identity (THEORY §2), with x_l = eta g_l (`uv`)
or 2 eta g_l (`pm`) and g_l the b-gradient of step l: f+ = alpha prod_l (1 - x_l), f- = alpha prod_l (1 + x_l).
Hence alpha_k^2 = |f+ f-| and, with S = sum_l x_l, theta = ln|f+/f-| + 2 S (theory.dln_gd: alpha_k^2 = sqrt(A+ A-),
theta = ln(A+/A-)/2, A+ = alpha^2 P^2 e^{2S}, A- = alpha^2 M^2 e^{-2S}).

Rounding (first order, K steps): each step maps (f+, f-) by a matrix of norm <= 1 + |x_l| and adds eps-relative
errors, so |f+- - reference| <= c K eps alpha prod_l (1 + |x_l|) =: c K eps alpha grow; relative to |f+-| this is
c K eps alpha grow / |f+-|. c = 4; measured <= 0.21 (<= 0.05 for the log-domain checks).
"""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st

from numerics.dln_gd import GDStats, exact_limit
from numerics.sharpness import gfs_sharpness
from verify.train.dln import init_params, train_gd

EPS = np.finfo(np.float64).eps
STEP = {"uv": 1.0, "pm": 2.0}   # x = STEP * eta * g (Even et al. 2023; THEORY §2), typed here, not read from numerics

runs = dict(seed=st.integers(0, 10**6), kind=st.sampled_from(["uv", "pm"]), alpha=st.floats(0.05, 1.0),
            frac=st.floats(0.1, 0.9))


def _train(seed, kind, alpha, frac, n=3, d=6):
    """One GD run at eta = frac * 2 / S_GF, recording GDStats and, separately, every step's gradient g_l."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    eta = frac * 2 / gfs_sharpness(kind, X, y, alpha**2, np.zeros(d)).sharpness
    stats, grads = GDStats(kind, alpha, 1, d), []

    def on_step(k, g, active):
        stats.update(g, eta, active)
        if bool(active[0]):
            grads.append(g[0].detach().clone().numpy())

    res = train_gd(kind, X, y, init_params(kind, [alpha], d), eta, 20000, on_step=on_step)
    assert np.all(np.isfinite(res.params.numpy())), res.status
    x = STEP[kind] * eta * np.array(grads)
    p, m = res.params[0].numpy()
    f = ((p + m) / np.sqrt(2), (p - m) / np.sqrt(2)) if kind == "uv" else (p, m)
    return dict(X=X, y=y, res=res, stats=stats, x=x, K=len(x), f=f, grow=np.prod(1 + np.abs(x), axis=0))


def _log_tol(r):
    """Bound on the log-domain error of alpha_k^2 or theta: the factors' relative errors plus GDStats' sums of K
    terms q+-(x_l), each evaluated to ~4 eps |x_l| (-+2x - 2 ln|1 -+ x|, both parts ~ 2|x|)."""
    fp, fm = r["f"]
    alpha = r["stats"].alpha[0]
    return 4 * r["K"] * EPS * (alpha * r["grow"] * (1 / np.abs(fp) + 1 / np.abs(fm)) + np.abs(r["x"]).sum(axis=0))


@given(**runs)
def test_trained_factors_equal_the_even_product_identity(seed, kind, alpha, frac):
    """f+ = alpha prod(1 - x_l), f- = alpha prod(1 + x_l) for the trained iterate (checks train_gd's steps)."""
    r = _train(seed, kind, alpha, frac)
    tol = 4 * r["K"] * EPS * alpha * r["grow"]
    for f, sign in zip(r["f"], (-1, 1)):
        ref = alpha * np.prod(1 + sign * r["x"], axis=0)
        assert np.all(np.abs(f - ref) <= tol), (np.abs(f - ref) / tol).max()


@given(**runs)
def test_gdstats_alpha_k_sq_equals_the_trained_factor_product(seed, kind, alpha, frac):
    """GDStats.alpha_sq() = alpha_k^2 = |f+ f-| of the trained iterate (in logs, to K eps alpha grow / |f+-|)."""
    r = _train(seed, kind, alpha, frac)
    fp, fm = r["f"]
    tol = _log_tol(r)
    err = np.abs(np.log(r["stats"].alpha_sq()[0]) - np.log(np.abs(fp * fm)))
    assert np.all(err <= tol), (err / tol).max()


@given(**runs)
def test_gdstats_theta_equals_the_trained_factor_log_ratio_plus_2s(seed, kind, alpha, frac):
    """GDStats.theta() = ln|f+/f-| + 2 sum_l x_l of the trained iterate (same rounding bound as alpha_k^2)."""
    r = _train(seed, kind, alpha, frac)
    fp, fm = r["f"]
    tol = _log_tol(r)
    err = np.abs(r["stats"].theta()[0] - (np.log(np.abs(fp / fm)) + 2 * r["x"].sum(axis=0)))
    assert np.all(err <= tol), (err / tol).max()


@given(**runs)
def test_exact_limit_equals_the_trained_limit(seed, kind, alpha, frac):
    """exact_limit(...).b = the converged trained b_t, to the limit's first-order response to the two constraint
    misfits, ||W X^T (X W X^T)^{-1}|| (||X b_t - y|| + reported residual ||y||), W = db/ds = f+^2 + f-^2 at the
    trained iterate (theory.dln_gd: u^2 + v^2 = 2 sqrt(b^2 + alpha_k^4), w+^2 + w-^2 = sqrt(b^2 + 4 alpha_k^4)),
    plus rounding 4 K eps ||W|| (measured: the remainder after the first-order term is <= 0.11 K eps ||W||)."""
    r = _train(seed, kind, alpha, frac)
    assume(r["res"].status == ["converged"])
    X, y = r["X"], r["y"]
    bt = r["res"].b[0].numpy()
    pred = exact_limit(X, y, r["stats"], 0)
    assert pred.converged, (pred.status, pred.residual)
    w = r["f"][0] ** 2 + r["f"][1] ** 2
    sens = np.linalg.norm(w[:, None] * X.T @ np.linalg.inv((X * w) @ X.T), 2)
    misfit = np.linalg.norm(X @ bt - y) + pred.residual * np.linalg.norm(y) * (1 + 1e-12)
    tol = sens * misfit + 4 * r["K"] * EPS * np.linalg.norm(w)
    assert np.linalg.norm(pred.b - bt) <= tol, np.linalg.norm(pred.b - bt) / tol


def test_exact_limit_rejects_degenerate_step():
    st_ = GDStats("uv", 0.1, 1, 2)
    st_.update(torch.tensor([[1.0, 0.2]]), 1.0)
    X = np.eye(2); y = np.ones(2)
    with pytest.raises(ValueError, match="1 - x = 0"):
        exact_limit(X, y, st_, 0)


def test_eta_nonpositive_rejected():
    with pytest.raises(ValueError):
        train_gd("uv", np.eye(2), np.ones(2), init_params("uv", [0.1], 2), 0.0, 10)
