"""Every public predictor and trainer returns one kind of result (numerics.result): its prediction named ``b`` or ``W``
with ``status``, ``converged`` and, for limits, interpolators and trained runs, the relative ``residual``."""
import numpy as np
import pytest
import torch

from numerics import Result, bregman_limit, flow_limit, isotropic_trajectory, min_l1, min_l2, shape_limit
from numerics.batched import batched_sinh_newton
from numerics.dln_gd import GDStats, exact_limit
from numerics.glrl import glrl
from numerics.linear import deep_limit, one_layer_limit, pinv_solution
from numerics.matrix import (commuting_limit, commuting_trajectory, integrate_end_to_end, integrate_svd2,
                             min_nuclear_norm, min_trace_certified, min_trace_commuting, nuclear_regularized_completion,
                             nuclear_regularized_cvxpy)
from numerics.saddles import saddle_to_saddle
from numerics.sharpness import gf_path_sharpness, gfs_sharpness, min_sharpness, min_sharpness_n1
from verify.train import dln
from verify.train import linear
from verify.train import matrix
from verify.train import tensor
from verify.train.flow import integrate
from verify.testing.problems import DeepMFProblem, DLNProblem, SensingProblem

REG = DLNProblem.random(0)                                  # X (3, 6), y
X, y = REG.X, REG.y
SENS = SensingProblem.random(0, d=3, m=2)
NONC = SensingProblem.random(0, d=3, m=4, commuting=False)
DEEP = DeepMFProblem.random(0, d=2, depth=2, t_end=0.5)
MASK, M = np.array([[1.0, 1.0], [1.0, 0.0]]), np.array([[1.0, 0.5], [0.5, 2.0]])


def _stats():
    st = GDStats("uv", [0.3], 1, X.shape[1])
    dln.train_gd("uv", X, y, dln.init_params("uv", [0.3], X.shape[1]), 0.05, 3000, on_step=st.callback(0.05))
    return st


def _tensor_gd():
    c = tensor.make_completion(np.random.default_rng(0), 3, 3, 1, 12)
    return tensor.gd(tensor.CPLoss(c), torch.tensor(0.3 * np.ones((2, 3, 3, 2))), 0.5, 2000, 100, c.T, stop_loss=1e-8)


PREDICTORS = {
    "flow_limit": lambda: flow_limit(X, y, 0.1),
    "flow_limit depth 3": lambda: flow_limit(X, y, 0.3, depth=3),
    "bregman_limit": lambda: bregman_limit(X, y, 0.5),
    "shape_limit": lambda: shape_limit(X, y, np.full(6, 0.5), np.full(6, 0.1)),
    "min_l1": lambda: min_l1(X, y),
    "min_l2": lambda: min_l2(X, y),
    "isotropic_trajectory": lambda: isotropic_trajectory([0.0, 1.0], np.ones(3), 0.1),
    "batched_sinh_newton": lambda: batched_sinh_newton(X[None], y[None], 0.0),
    "exact_limit": lambda: exact_limit(X, y, _stats(), 0),
    "pinv_solution": lambda: pinv_solution(X, y),
    "one_layer_limit": lambda: one_layer_limit(X, y, np.ones(6)),
    "deep_limit": lambda: deep_limit(X, y, np.ones(6), 3),
    "commuting_limit": lambda: commuting_limit(SENS.As, SENS.y, 0.1),
    "commuting_trajectory": lambda: commuting_trajectory(SENS.As, SENS.y, 0.1, [0.5, 1.0]),
    "min_trace_commuting": lambda: min_trace_commuting(SENS.As, SENS.y),
    "min_trace_certified": lambda: min_trace_certified(NONC.As, NONC.y),
    "min_nuclear_norm": lambda: min_nuclear_norm(NONC.As, NONC.y),
    "nuclear_regularized_completion": lambda: nuclear_regularized_completion(MASK, M, 0.3, tol=1e-9),
    "nuclear_regularized_cvxpy": lambda: nuclear_regularized_cvxpy(MASK, M, 0.3),
    "integrate_end_to_end": lambda: integrate_end_to_end(list(DEEP.factors), DEEP.grad, DEEP.t_eval),
    "integrate_svd2": lambda: integrate_svd2(np.array([[1.0, 0.2], [-0.3, 0.7]]), lambda W: W - M, 2, [0.5]),
    "glrl": lambda: glrl(SENS.As, SENS.y),
    "saddle_to_saddle": lambda: saddle_to_saddle(X, y),
    "gfs_sharpness": lambda: gfs_sharpness("uv", X, y, 0.1, np.zeros(6)),
    "min_sharpness": lambda: min_sharpness(X, y),
    "min_sharpness_n1": lambda: min_sharpness_n1(X[0], y[0]),
    "gf_path_sharpness": lambda: gf_path_sharpness(X, y, 0.5, points=10),
}
TRAINERS = {
    "dln.train_gd": lambda: dln.train_gd("pm", X, y, dln.init_params("pm", [0.3, 0.5], 6), 0.05, 20000),
    "dln.train_gf": lambda: dln.train_gf("pm", X, y, dln.init_params("pm", [0.3, 0.5], 6), [1e6], stop_residual=1e-10,
                                         t_max=1e6),
    "linear.train_gd": lambda: linear.train_gd(X, y, linear.gaussian_init(2, 6, 4, 2, seed=0), 0.05, 20000, tol=1e-20),
    "linear.train_gf": lambda: linear.train_gf(X, y, linear.balanced_init(torch.ones(1, 6), 3, 2, seed=0), 1e4,
                                               stop_residual=1e-10),
    "matrix.gd_deep": lambda: matrix.gd_deep(torch.tensor(np.stack(DEEP.factors))[None],
                                             lambda W: torch.tensor(DEEP.grad(W[0].numpy()))[None], 0.05, 200),
    "matrix.weight_decay_lbfgs": lambda: matrix.weight_decay_lbfgs(MASK, M, 0.3, 2, np.random.default_rng(0)),
    "tensor.gd": _tensor_gd,
    "flow.integrate": lambda: integrate(lambda th: -th, torch.ones(2, 3), [1.0]),
}


@pytest.mark.parametrize("name", sorted(PREDICTORS) + sorted(TRAINERS))
def test_every_predictor_and_trainer_returns_a_result_with_its_prediction_and_certificate(name):
    out = {**PREDICTORS, **TRAINERS}[name]()
    assert isinstance(out, Result), type(out)
    assert (getattr(out, "b", None) is not None or getattr(out, "W", None) is not None
            or name == "flow.integrate"), name
    assert np.all(out.converged), (name, out.status)
    if hasattr(out, "residual") and out.residual is not None:
        r = np.asarray(out.residual, dtype=np.float64)
        assert np.all(np.isfinite(r)) and np.all(r >= 0), (name, r)
