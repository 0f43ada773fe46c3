"""The public testing API (verify.testing): strategies draw well-posed problems, assertions pass on the package's own
trained runs and fail with the documented message on perturbed ones, bad inputs give one clear error, and the
docs/testing.md example runs in a fresh pytest outside the repository with the plugin."""
import inspect
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import find, given, settings, strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from numerics import Result
from numerics.dln_gd import GDStats
from verify.train import dln
from verify.train import linear
from verify.train.flow import integrate
from verify.train.matrix import deep_rhs, sensing_grad, symmetric_rhs
from verify.testing import assertions as iba, problems as P, strategies as ibs

ROOT = Path(__file__).resolve().parents[1]
FEW = settings(max_examples=3)       # each example trains a network
# Compiling a derivation costs seconds once per process (theory.matrix.deep: ~5 s per depth): depths 2, 3 here.

STRATEGIES = {
    "dln": ibs.dln_problems(depth=st.sampled_from([2, 3, 4]), alpha=ibs.log_uniform(1e-6, 10)),
    "shape": ibs.dln_shape_problems(),
    "gd": ibs.dln_gd_problems(regime=st.sampled_from(["stable", "eos"])),
    "sensing": ibs.sensing_problems(commuting=st.booleans()),
    "deep_mf": ibs.deep_mf_problems(d=st.just(2), depth=st.sampled_from([2, 3]), t_end=st.floats(0.2, 0.6)),
    "linear": ibs.linear_init_problems(),
    "relu": ibs.relu_segment_problems(),
    "random_dln": ibs.random_problems(P.DLNProblem, n=ibs.sizes(1, 4), alpha=ibs.log_uniform(1e-3, 10)),
    "random_sensing": ibs.random_problems(P.SensingProblem, d=ibs.sizes(2, 4), m=ibs.sizes(1, 3)),
    "random_linear": ibs.random_problems(P.LinearInitProblem, depth=st.sampled_from([1, 2, 3])),
}


def _fails(fn, *fragments):
    """fn raises one AssertionError whose message has the documented parts and every fragment."""
    with pytest.raises(AssertionError) as info:
        fn()
    msg = str(info.value)
    for part in ("predicted", "predictor certificate", "likely wrong", *fragments):
        assert part in msg, f"{part!r} missing from:\n{msg}"
    return msg


# ---- strategies -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=4)
@given(data=st.data())
def test_every_strategy_draws_well_posed_problems(name, data):
    problem = data.draw(STRATEGIES[name])
    cert = problem.certificate
    assert cert.ok and cert.residual <= 1e-6, (problem, cert)
    assert repr(eval(repr(problem), vars(P))) == repr(problem)                   # the repr replays the problem
    if name != "relu":                                                            # relu: closed forms, a dict
        assert isinstance(problem.prediction, Result) and problem.prediction.converged
    if name == "gd":
        assert problem.eta_c <= problem.eta_max
        lo, hi = (0, problem.eta_c) if problem.regime == "stable" else (problem.eta_c, problem.eta_max)
        assert lo < problem.eta < hi


def test_log_uniform_and_sizes_stay_in_range_and_shrink_to_simple_values():
    from hypothesis import find

    assert find(ibs.log_uniform(1e-3, 10), lambda x: True) == 1.0
    assert find(ibs.sizes(2, 9), lambda k: True) == 2


# ---- assertions pass on the package's own runs, fail on perturbed ones -------------------------------------------

small = dict(n=ibs.sizes(1, 3), d=ibs.sizes(1, 5), max_condition=10.0)


def _gf(problem, depth=2):
    kind = problem.parametrization
    p0 = torch.tensor(np.asarray(problem.params0)[None])
    res = dln.train_gf(kind, problem.X, problem.y, p0, [1e8], depth=depth, stop_residual=1e-13, t_max=1e8,
                       method="LSODA")
    return res.b[-1, 0]


@FEW
@given(ibs.dln_problems(alpha=ibs.log_uniform(0.05, 2.0), **small))
def test_flow_limit_assertion_on_trained_gf(problem):
    b = _gf(problem)
    iba.assert_matches_flow_limit(b, problem, rtol=1e-6)                        # a torch tensor is accepted
    _fails(lambda: iba.assert_matches_flow_limit(b.numpy() + 1e-3 * np.abs(b.numpy()).max(), problem),
           "worst coordinate", "has not converged")


def test_flow_limit_assertion_depth3_and_the_interpolator_hints():
    p = P.DLNProblem([[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]], [1.0, 0.5], 0.3, depth=3)
    iba.assert_matches_flow_limit(_gf(p, depth=3), p, rtol=1e-6)
    p2 = P.DLNProblem(p.X, p.y, 0.1)
    null = np.array([0.5, 0.25, -1.0])                                          # X null = 0
    _fails(lambda: iba.assert_matches_flow_limit(p2.prediction.b + 1e-3 * null, p2), "different interpolator")
    uv = P.DLNProblem(p.X, p.y, 0.1, parametrization="uv").prediction.b
    _fails(lambda: iba.assert_matches_flow_limit(uv, p2), "matches the 'uv' prediction")


@FEW
@given(ibs.dln_shape_problems(**small))
def test_shape_limit_assertion_on_trained_gf(problem):
    b = _gf(problem)
    iba.assert_matches_shape_limit(b, problem, rtol=1e-6)
    _fails(lambda: iba.assert_matches_shape_limit(2 * b, problem), "worst coordinate")


def _gd(problem):
    """train_gd at problem.eta recording every step's b-gradient; None when the run did not converge."""
    kind, grads = problem.parametrization, []

    def on_step(k, g, active):
        if bool(active[0]):
            grads.append(g[0].clone())

    res = dln.train_gd(kind, problem.X, problem.y, dln.init_params(kind, [problem.alpha], problem.d), problem.eta,
                       20000, on_step=on_step)
    return (res, torch.stack(grads)) if res.status[0] == "converged" else (None, None)


@FEW
@given(ibs.dln_gd_problems(n=ibs.sizes(1, 2), d=ibs.sizes(1, 4), max_condition=10.0, fraction=st.floats(0.3, 0.9)))
def test_gd_limit_and_sharpness_assertions_on_trained_gd(problem):
    res, g = _gd(problem)
    assert res is not None, "stable-regime GD did not converge in 20000 steps"
    b = res.b[0]
    iba.assert_matches_gd_limit(b, problem, g.numpy(), rtol=1e-8)
    stats = GDStats(problem.parametrization, problem.alpha, 1, problem.d)
    for row in g:
        stats.update(row[None], problem.eta)
    iba.assert_matches_gd_limit(b, problem, stats, rtol=1e-8)
    if problem.d > problem.n:        # n = d: one interpolator, every record gives it
        _fails(lambda: iba.assert_matches_gd_limit(b, problem, g[1:].numpy(), rtol=1e-8), "its recorded steps imply")
    iba.assert_sharpness_within_stability_bound(res.params[0], problem)
    _fails(lambda: iba.assert_sharpness_within_stability_bound(2.2 / problem.eta, problem), "S <= 2/eta")
    iba.assert_matches_min_sharpness(problem.min_sharpness_solution.b, problem)


def test_min_sharpness_assertion_rejects_the_min_l2_interpolator():
    p = P.DLNGDProblem([[1.0, 0.5, 0.25]], [1.0], 0.1)
    iba.assert_matches_min_sharpness([0.0, 0.0, 4.0], p)                        # n = 1: all mass on min |x_i|
    _fails(lambda: iba.assert_matches_min_sharpness(np.linalg.pinv(p.X) @ p.y, p), "not a minimum-sharpness")


@FEW
@given(ibs.sensing_problems(d=ibs.sizes(2, 3), alpha=ibs.log_uniform(0.05, 1.0), max_condition=10.0))
def test_commuting_limit_assertion_on_trained_gf(problem):
    A, y, d = torch.tensor(problem.As), torch.tensor(problem.y), problem.d

    def stop(theta):
        U = theta.reshape(-1, d, d)
        r = torch.einsum("mij,rij->rm", A, U @ U.transpose(1, 2)) - y
        return r.norm(dim=1) / y.norm()

    res = integrate(symmetric_rhs(sensing_grad(A, y), d), torch.tensor(problem.U0).reshape(1, -1), [1e6],
                    method="LSODA", stop=stop, stop_below=1e-13)
    U = res.states[-1, 0].reshape(d, d)
    iba.assert_matches_commuting_limit(U @ U.T, problem, rtol=1e-6)
    _fails(lambda: iba.assert_matches_commuting_limit(1.01 * U @ U.T, problem), "has not converged")


@FEW
@given(ibs.deep_mf_problems(d=st.just(2), depth=st.sampled_from([2, 3]), t_end=st.floats(0.2, 0.6)))
def test_end_to_end_assertion_on_trained_factors(problem):
    N, d = problem.depth, problem.d
    th0 = torch.tensor(np.stack(problem.factors)[None]).reshape(1, -1)
    res = integrate(deep_rhs(sensing_grad(torch.tensor(problem.As), torch.tensor(problem.y)), N, d), th0,
                    problem.t_eval, rtol=1e-12, atol=1e-14)
    Ws = res.states[:, 0].reshape(-1, N, d, d)
    W = np.stack([np.linalg.multi_dot(list(f[::-1])) for f in Ws])          # W_N ... W_1
    iba.assert_matches_end_to_end(W, problem, rtol=1e-7)
    iba.assert_matches_end_to_end(W[-1], problem, rtol=1e-7)
    late = W.copy()
    late[-1] *= 1.01
    _fails(lambda: iba.assert_matches_end_to_end(late, problem), "error grows along the run")
    early = W.copy()
    early[0] += 0.1
    _fails(lambda: iba.assert_matches_end_to_end(early, problem), "starts from a different W(0)")


@FEW
@given(ibs.linear_init_problems(depth=st.sampled_from([1, 2]), **small))
def test_linear_limit_assertion_on_trained_runs(problem):
    X, y, w0 = problem.X, problem.y, torch.tensor(problem.w0[None])
    if problem.depth == 1:
        eta = 1.0 / np.linalg.eigvalsh(X @ X.T / problem.n).max()
        w = linear.train_gd(X, y, [w0[:, None, :]], eta=eta, steps=200000, tol=1e-30).b[0]
    else:
        w = linear.train_gf(X, y, linear.balanced_init(w0, 3, problem.depth, seed=0), t_max=1e4,
                            stop_residual=1e-12).b[-1, 0]
    iba.assert_matches_linear_limit(w, problem, rtol=1e-6)
    _fails(lambda: iba.assert_matches_linear_limit(w.numpy() + 0.1, problem), "worst coordinate")


def test_linear_limit_hint_names_the_min_norm_solution():
    p = P.LinearInitProblem.random(seed=1)
    _fails(lambda: iba.assert_matches_linear_limit(np.linalg.pinv(p.X) @ p.y, p), "minimum-norm solution")


@pytest.mark.parametrize("problem", [P.ReluSegmentProblem(d=4, width=8, theta=1.0, r1=1.5, sa=1.3, sw=0.8),
                                     P.ReluSegmentProblem(d=3, width=32, theta=2.5, t=0.3)])
def test_init_statistics_assertion_on_sampled_networks(problem):
    rng = np.random.default_rng(0)
    W = problem.sw * rng.standard_normal((600, problem.width, problem.d))
    a = problem.sa * rng.standard_normal((600, problem.width))
    iba.assert_matches_init_statistics(torch.tensor(W), a, problem)
    msg = _fails(lambda: iba.assert_matches_init_statistics(W, a / np.sqrt(problem.width), problem),
                 "z =", "output scale")
    assert "sampled mean" in msg


# ---- bad inputs: one clear error each -----------------------------------------------------------------------------

def test_bad_inputs_give_one_clear_error_each():
    p = P.DLNProblem.random(seed=0)
    gd = P.DLNGDProblem.random(seed=0)
    b = p.prediction.b
    cases = [
        (ValueError, "shape", lambda: iba.assert_matches_flow_limit(b[:-1], p)),
        (ValueError, "non-finite", lambda: iba.assert_matches_flow_limit(np.r_[np.nan, b[1:]], p)),
        (TypeError, "integer dtype", lambda: iba.assert_matches_flow_limit(np.ones(p.d, dtype=int), p)),
        (TypeError, "complex", lambda: iba.assert_matches_flow_limit(b + 0j, p)),
        (TypeError, "must be an array", lambda: iba.assert_matches_flow_limit("b", p)),
        (TypeError, "expects a DLNProblem", lambda: iba.assert_matches_flow_limit(b, P.SensingProblem.random())),
        (ValueError, "below what", lambda: iba.assert_matches_flow_limit(b.astype(np.float32), p, rtol=1e-10)),
        (ValueError, "rtol must be finite", lambda: iba.assert_matches_flow_limit(b, p, rtol=-1.0)),
        (ValueError, "not commuting", lambda: iba.assert_matches_commuting_limit(
            np.eye(3), P.SensingProblem.random(d=3, commuting=False))),
        (ValueError, r"needs shape \(K, 6\)", lambda: iba.assert_matches_gd_limit(b, gd, np.ones(6))),
        (ValueError, "eta must be finite", lambda: iba.assert_matches_gd_limit(b, gd, np.ones((2, 6)), eta=[1.0])),
        (ValueError, r"needs shape \(R, 16, 4\)", lambda: iba.assert_matches_init_statistics(
            np.ones((40, 16, 3)), np.ones((40, 16)), P.ReluSegmentProblem(d=4, width=16, theta=1.0))),
        (ValueError, "full row rank", lambda: P.DLNProblem([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0], 0.1)),
        (ValueError, "depth 2 only", lambda: P.DLNProblem([[1.0]], [1.0], 0.1, depth=3, parametrization="uv")),
    ]
    for exc, fragment, call in cases:
        with pytest.raises(exc, match=fragment):
            call()
    iba.assert_matches_flow_limit(torch.tensor(b, requires_grad=True), p)      # grad tensors are detached
    iba.assert_matches_flow_limit(torch.tensor(b, dtype=torch.float32), p, rtol=1e-5)


PUBLIC_STRATEGIES = [ibs.full_row_rank_matrices, ibs.dln_problems, ibs.dln_shape_problems, ibs.dln_gd_problems,
                     ibs.sensing_problems, ibs.deep_mf_problems, ibs.linear_init_problems, ibs.relu_segment_problems,
                     ibs.regression_inputs]
STRATEGY_ARGS = [(f, k) for f in PUBLIC_STRATEGIES for k, v in inspect.signature(f).parameters.items()
                 if isinstance(v.default, SearchStrategy) or (k == "d" and v.default is None)]


def test_every_public_strategy_is_listed_here_and_in_the_docs():
    doc = (ROOT / "docs" / "testing.md").read_text()
    public = {f.__name__ for f in PUBLIC_STRATEGIES} | {"sizes", "log_uniform", "elements", "random_problems"}
    assert public == {n for n in ibs.__all__ if n != "DEFECTS"}
    assert all(f"`{n}(" in doc for n in public) and all(f"`{n}(" in doc for n in iba.__all__)


@pytest.mark.parametrize("factory, name", STRATEGY_ARGS, ids=[f"{f.__name__}-{k}" for f, k in STRATEGY_ARGS])
def test_plain_value_for_a_strategy_says_wrap_it_in_just(factory, name):
    with pytest.raises(TypeError, match=r"st\.just"):
        factory(**{name: 3})


@pytest.mark.parametrize("call, fragment", [
    (lambda: ibs.sizes(0, 3), "1 <= lo <= hi"), (lambda: ibs.sizes(3, 2), "1 <= lo <= hi"),
    (lambda: ibs.sizes(1.5, 3), "takes integers"), (lambda: ibs.log_uniform(-1.0, 2.0), "finite number > 0"),
    (lambda: ibs.log_uniform(float("nan"), 2.0), "finite number > 0"), (lambda: ibs.log_uniform(2.0, 1.0), "lo <= hi"),
    (lambda: ibs.elements(0.5, 0.25), "lo <= hi"), (lambda: ibs.dln_problems(max_condition=0.5), "max_condition"),
])
def test_bad_numbers_for_a_strategy_are_one_invalid_argument(call, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        call()


@pytest.mark.parametrize("strategy, fragment", [
    (ibs.dln_problems(depth=st.just(1)), "depth must be an integer >= 2"),
    (ibs.dln_problems(parametrization=st.just("xy")), "use 'pm' or 'uv'"),
    (ibs.dln_gd_problems(regime=st.just("fast")), "regime='fast'"),
    (ibs.deep_mf_problems(depth=st.just(1)), "depth must be an integer >= 2"),
    (ibs.linear_init_problems(depth=st.just(0)), "depth must be an integer >= 1"),
    (ibs.regression_inputs(defect=st.just("typo")), "use 'ok' or one of"),
])
def test_invalid_values_drawn_from_a_given_strategy_name_the_argument(strategy, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        find(strategy, lambda _: True)


def test_random_problems_reject_unknown_types_and_keywords():
    with pytest.raises(TypeError, match="must be one of"):
        ibs.random_problems(P.ReluSegmentProblem)
    with pytest.raises(TypeError, match=r"unexpected keywords \['m'\]"):
        ibs.random_problems(P.DLNProblem, m=st.just(2))
    with pytest.raises(TypeError, match=r"st\.just"):
        ibs.random_problems(P.DLNProblem, n=3)


@given(ibs.random_problems(P.DLNProblem, n=ibs.sizes(2, 5), seed=st.integers(0, 100)))
def test_random_problems_are_the_problem_types_own_random_instances(problem):
    n, d = problem.X.shape
    assert n <= d <= max(8, 2 * n)
    same = [P.DLNProblem.random(s, n=n, d=d) for s in range(101)]
    assert any(np.array_equal(q.X, problem.X) and np.array_equal(q.y, problem.y) for q in same)


@given(ibs.regression_inputs())
def test_regression_inputs_have_the_defect_they_name(triple):
    X, y, defect = triple
    n, d = X.shape
    if defect == "ok":
        assert np.all(np.isfinite(X)) and np.all(np.isfinite(y)) and y.shape == (n,) and d >= 1
    elif defect == "shape":
        assert y.shape == (n + 1,)
    elif defect == "empty":
        assert d == 0
    elif defect == "rank" and n >= 2:
        assert np.array_equal(X[-1], X[0])
    elif defect == "ill" and n >= 2:
        assert 0 < np.abs(X[-1] - X[0]).max() <= 1e-7 * np.abs(X[0]).max()
    elif defect in ("special_X", "special_y"):
        v = X if defect == "special_X" else y
        assert np.isin(v, [0.0, 1e300, -1e-300, 1.0]).any() or not np.all(np.isfinite(v))


@dataclass
class _Out:
    b: np.ndarray


def test_value_error_or_finite_passes_clear_errors_and_finite_outputs_only():
    assert iba.assert_value_error_or_finite(lambda: (_ for _ in ()).throw(ValueError("x must be finite"))) is None
    out = iba.assert_value_error_or_finite(lambda x: {"p": _Out(np.ones(2) * x)}, 2.0)
    assert out["p"].b.tolist() == [2.0, 2.0]
    with pytest.raises(AssertionError, match="without a message"):
        iba.assert_value_error_or_finite(lambda: (_ for _ in ()).throw(ValueError()))
    with pytest.raises(AssertionError, match="non-finite entries"):
        iba.assert_value_error_or_finite(lambda: [_Out(np.array([1.0, np.nan]))])
    with pytest.raises(AssertionError, match="non-finite entries"):
        iba.assert_value_error_or_finite(lambda: torch.tensor([np.inf]))
    with pytest.raises(ZeroDivisionError):
        iba.assert_value_error_or_finite(lambda: 1 / 0)
    with pytest.raises(TypeError, match="expects a callable"):
        iba.assert_value_error_or_finite(np.ones(2))


@pytest.mark.parametrize("build, fragment", [
    (lambda: P.DLNProblem([[1.0, np.nan]], [1.0], 0.1), "non-finite"),
    (lambda: P.DLNProblem([["a", "b"]], [1.0], 0.1), "numeric array"),
    (lambda: P.DLNProblem([[1.0, 0.0]], [1.0, 2.0], 0.1), "shape mismatch"),
    (lambda: P.DLNProblem([[1.0, 0.0]], [1.0], float("nan")), "alpha must be finite"),
    (lambda: P.DLNProblem([1.0, 0.0], [1.0], 0.1), "2-D"),
    (lambda: P.DLNShapeProblem([[1.0, 0.0]], [1.0], [1.0, 1.0], [1.0, 0.5]), r"\|u0_i\| != \|v0_i\|"),
    (lambda: P.SensingProblem(np.array([[[1.0, 2.0], [0.0, 1.0]]]), [1.0], 0.1), "symmetric"),
    (lambda: P.LinearInitProblem([[1.0, 0.0]], [1.0], [0.0, 0.0]), "w0 = 0"),
    (lambda: P.DeepMFProblem(np.eye(2)[None], [1.0], (np.eye(2), 2 * np.eye(2)), [1.0]), "unbalanced"),
    (lambda: P.ReluSegmentProblem(d=3, width=4, theta=4.0), r"theta must lie in \(0, pi\)"),
])
def test_bad_problem_constructions_give_one_value_error_naming_it(build, fragment):
    with pytest.raises(ValueError, match=fragment):
        build()


# ---- the plugin and the documented example in a fresh pytest ------------------------------------------------------

def test_plugin_leaves_this_suites_profile_alone():
    import os

    from hypothesis import settings as s

    expected = s.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    assert s.default.max_examples == expected.max_examples
    assert s.get_profile("ib-quick").max_examples == 10


def test_docs_example_runs_in_a_fresh_pytest_outside_the_repo(tmp_path):
    doc = (ROOT / "docs" / "testing.md").read_text()
    code = re.search(r"## Example.*?```python\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "test_example.py").write_text(code + (
        "\n\nimport pytest\n\n@pytest.mark.gpu\ndef test_on_gpu():\n    import torch\n"
        "    assert torch.cuda.is_available()\n"))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "verify.testing.plugin", "-p",
                          "no:cacheprovider", "--ib-profile", "ib-quick", "test_example.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 passed" in out.stdout and ("1 skipped" in out.stdout) != torch.cuda.is_available(), out.stdout
