"""Smoke tests of the bench machinery at tiny sizes (no timing is asserted) and of the batched dual Newton."""
import json

import numpy as np
import pytest

from numerics.batched import batched_sinh_newton, sweep_flow_limits
from numerics.dln import flow_limit
from verify.cli import bench
from verify.cli.bench_util import interleaved, loglog_slope, median_ratio


def test_interleaved_runs_each_function_once_per_repetition():
    calls = []
    times, outs = interleaved({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2}, 3)
    assert calls == ["a", "b"] * 3 and outs == {"a": 1, "b": 2} and all(len(v) == 3 for v in times.values())


def test_median_ratio_and_slope_are_exact_on_known_data():
    assert median_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0], scale=2.0) == 6.0
    assert loglog_slope([1, 10, 100], [3, 30, 300]) == pytest.approx(1.0, abs=1e-12)


def test_sweep_matches_flow_limit_one_problem_at_a_time():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 6, 15))
    y = rng.standard_normal((3, 6))
    alphas = [1.0, 0.03, 1e-3]
    out = sweep_flow_limits(X, y, alphas)
    for a, pred in zip(alphas, out):
        assert pred.status == ["converged"] * 3
        for p in range(3):
            ref = flow_limit(X[p], y[p], a).b
            assert np.abs(pred.b[p] - ref).max() <= 1e-9 * np.abs(ref).max()  # both solve to residual 1e-13


def test_batched_newton_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="X must be"):
        batched_sinh_newton(np.ones((2, 3, 4)), np.ones((2, 4)), 0.0)


def test_bench_tiny_writes_every_figure(tmp_path):
    rc = bench.main(["--tiny", "--threads", "1", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert rc == 0, {k: v.get("error") for k, v in res.items()}
    assert {"batched", "predictor", "sweep", "flow", "roofline", "scaling", "cp"} <= set(res)
    assert res["batched"]["max_abs_b_batched_vs_loop_f64"] < 1e-10
    assert res["predictor"]["newton"]["kkt"] < 1e-10
    assert all(r["seconds_per_step"] > 0 for r in res["scaling"]["vs_R"])
    assert all(c["max_rel_diff"] < 1e-12 for c in res["cp"]["cases"])
