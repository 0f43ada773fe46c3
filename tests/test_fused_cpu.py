"""verify.train.kernels.dln_numba (fused CPU trainer) equals verify.train.dln.train_gd + GDStats to 1e-12 (relative: parameters to
each run's scale, step sums to their rounding yardstick) on drawn shapes, SGD batches and diverging runs; the q+-
sources generated from theory.dln_gd for the kernels evaluate the derived expressions; the statistics' blocks (one
log1p per BLOCK steps) stay within their stated rounding bound of the per-step sums."""
import math

import numpy as np
import pytest
import torch
from _fused_reference import assert_agrees, gd_problems, reference
from hypothesis import given

from numerics.compile import compiled
from numerics.dln_gd import exact_limit
from theory import dln_gd as th
from verify.train.dln import init_params
from verify.train.kernels import dln_numba, q_source

RTOL = 1e-12
EPS = np.finfo(np.float64).eps


@given(problem=gd_problems(max_R=5, max_n=11, max_d=14, max_steps=40))
def test_fused_cpu_equals_train_gd(problem):
    res, sums = dln_numba.train_gd(**problem)
    assert_agrees(problem, res, sums, RTOL)


def test_diverged_run_is_frozen_at_its_last_checked_state_and_others_go_on():
    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(7, 9, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    p0 = init_params("uv", [0.5, 0.5, 0.5], 9)
    eta = torch.tensor([1e-2, 30.0, 2e-2], dtype=torch.float64)
    res, sums = dln_numba.train_gd("uv", X, y, p0, eta, 400, check_every=5, tol=1e-20)
    assert res.status[1] == "diverged" and res.status[0] != "diverged" and res.status[2] != "diverged"
    k = int(res.steps[1])
    assert k % 5 == 0
    before, _ = dln_numba.train_gd("uv", X, y, p0, eta, k - 5, check_every=5, tol=1e-20)
    assert torch.equal(res.params[1], before.params[1]) and np.isfinite(res.loss[1])
    assert torch.isfinite(sums.qp[0]).all() and torch.isfinite(sums.qp[2]).all()


def test_exact_limit_from_fused_statistics_equals_the_reference():
    g = torch.Generator().manual_seed(5)
    X, y = torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    alpha = np.array([0.3, 1.0])
    problem = dict(kind="pm", X=X, y=y, params0=init_params("pm", alpha, 6), eta=torch.tensor([0.02, 0.05]),
                   steps=20000, check_every=50, tol=1e-26, batches=None)
    res, sums = dln_numba.train_gd(**problem)
    ref, st_, _ = reference(**problem, alpha=alpha)
    assert res.status == ref.status == ["converged", "converged"]
    mine = sums.gdstats("pm", alpha)
    for r in range(2):
        a, b = exact_limit(X.numpy(), y.numpy(), mine, r), exact_limit(X.numpy(), y.numpy(), st_, r)
        assert np.abs(a.b - b.b).max() <= 1e-12 * np.abs(b.b).max()
        assert np.abs(a.b - res.b[r].numpy()).max() <= 1e-9 * np.abs(b.b).max()  # dln.gd.exact's tolerance


def test_inputs_are_checked_as_train_gd_checks_them():
    X, y, p0 = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, dtype=torch.float64), init_params("pm", [1.0], 5)
    for kw, msg in ((dict(eta=-1.0), "eta must be"), (dict(eta=0.1, check_every=0), "check_every"),
                    (dict(eta=0.1, depth=3), "depth 2 only"), (dict(eta=0.1, y=torch.ones(3)), "y must be")):
        args = dict(kind="pm", X=X, y=y, params0=p0, steps=3) | kw
        with pytest.raises(ValueError, match=msg):
            dln_numba.train_gd(**args)
    with pytest.raises(ValueError, match="outside"):
        dln_numba.train_gd("pm", X, y, p0, 0.1, 2, batches=lambda k: torch.tensor([4]))


def test_generated_q_sources_evaluate_the_derived_expressions():
    ns = {"tl": type("tl", (), {"log": staticmethod(np.log), "abs": staticmethod(np.abs)})}
    exec(q_source.triton_source(), ns)
    nb = q_source.numba_functions()
    x = np.concatenate([np.linspace(-30, 30, 601), np.geomspace(1e-8, 0.5, 50), -np.geomspace(1e-8, 0.5, 50)])
    x = x[np.abs(np.abs(x) - 1) > 1e-9]
    for i, name in enumerate(q_source.NAMES):
        ref = compiled(th.gd, name, ("x",), "numpy")(x)
        yardstick = 4 * EPS * (8 * np.abs(x) + np.abs(ref))
        assert np.all(np.abs(ns[name](x) - ref) <= yardstick)
        assert np.all(np.abs(np.array([nb[i](v) for v in x]) - ref) <= yardstick)


def test_triton_printer_refuses_what_triton_would_type_float32():
    import sympy as sp

    with pytest.raises(NotImplementedError):
        q_source.TritonPrinter().doprint(sp.Rational(2, 3) * sp.Symbol("x"))


@given(problem=gd_problems(max_R=3, max_n=6, max_d=8, max_steps=15))
def test_without_statistics_the_runs_are_the_same(problem):
    res, sums = dln_numba.train_gd(**problem)
    plain, none = dln_numba.train_gd(**problem, stats=False)
    assert none is None and plain.status == res.status and torch.equal(plain.params, res.params)


def test_q_split_is_the_derived_q():
    x = np.concatenate([np.linspace(-30, 30, 601), np.geomspace(1e-8, 0.5, 50), -np.geomspace(1e-8, 0.5, 50)])
    x = x[np.abs(np.abs(x) - 1) > 1e-9]
    poly_p, c_p, arg_p, sgn_p, poly_m, c_m, arg_m, sgn_m = dln_numba.split_functions()
    for name, poly, c, arg, sgn in (("q_plus", poly_p, c_p, arg_p, sgn_p), ("q_minus", poly_m, c_m, arg_m, sgn_m)):
        ref = compiled(th.gd, name, ("x",), "numpy")(x)
        mine = np.array([poly(v) + c * math.log(abs(arg(v))) for v in x])
        assert np.all(np.abs(mine - ref) <= 4 * EPS * (8 * np.abs(x) + np.abs(ref)))
        small = x[np.abs(x) <= dln_numba.XMAX]
        assert np.array_equal(np.array([sgn * arg(v) for v in small]), np.abs(np.array([arg(v) for v in small])))


def _steps(rng, L, d):
    """x (L, d): |x| from 1e-22 (below eps) to 1e-2, random signs; some steps with a coordinate above XMAX."""
    x = np.exp(rng.uniform(np.log(1e-22), np.log(1e-2), (L, d))) * rng.choice([-1.0, 1.0], (L, d))
    big = rng.random(L) < 0.05
    x[big, rng.integers(0, d, big.sum())] = rng.uniform(0.07, 0.9, big.sum()) * rng.choice([-1.0, 1.0], big.sum())
    return x


@pytest.mark.parametrize("seed", range(4))
def test_block_sums_are_within_their_rounding_bound_of_the_per_step_sums(seed):
    """Kernel's statistics (dln_numba.sums_of_steps: the same compiled code) vs fsum of the per-step q+-(x_l): within
    (1.65 K + 6) eps of 8 sum|x| (the block's rounding, module docstring) plus (L/K + 2) u |sum q| (adding L/K
    block values), K = BLOCK; the per-step q's own rounding is ~1 eps of 8 sum|x|."""
    rng = np.random.default_rng(seed)
    L, d, K = 3000, 6, dln_numba.BLOCK
    x = _steps(rng, L, d)
    if seed == 3:
        x[:, 0] = x[:, 0] * 1e-12   # one coordinate whose every |x| is below eps: a plain product would fail here
    qp, qm, degenerate = dln_numba.sums_of_steps(x)
    assert not degenerate
    for name, mine in (("q_plus", qp), ("q_minus", qm)):
        q = compiled(th.gd, name, ("x",), "numpy")(x)
        ref = np.array([math.fsum(q[:, j]) for j in range(d)])
        bound = (1.65 * K + 6) * EPS * 8 * np.abs(x).sum(0) + (L / K + 2) * EPS / 2 * np.abs(ref)
        assert np.all(np.abs(mine - ref) <= bound), (name, np.abs(mine - ref) / bound)


def test_block_sums_keep_degenerate_and_non_finite_steps():
    x = _steps(np.random.default_rng(7), 40, 3)
    x[20, 1] = 1.0          # 1 - x = 0: q+ = inf, flagged
    x[30, 2] = np.nan
    qp, qm, degenerate = dln_numba.sums_of_steps(x)
    assert degenerate and qp[1] == np.inf and np.isfinite(qm[1]) and np.isnan(qp[2]) and np.isnan(qm[2])
    assert np.isfinite(qp[0]) and np.isfinite(qm[0])
