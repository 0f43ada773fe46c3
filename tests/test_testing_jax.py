"""The testing API takes JAX arrays as trained results, as it takes numpy and torch ones."""
import numpy as np
import pytest

from verify.testing import assertions as iba
from verify.testing.problems import DLNProblem

jax = pytest.importorskip("jax", reason="JAX is in the 'jax' extra (.ci/run installs it)")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


@pytest.fixture(scope="module")
def problem():
    return DLNProblem.random(seed=3, n=3, d=7, alpha=0.05)


def test_a_float64_jax_array_at_the_prediction_passes(problem):
    iba.assert_matches_flow_limit(jnp.asarray(problem.prediction.b, dtype=jnp.float64), problem, rtol=1e-9)


def test_a_jax_array_off_the_prediction_fails_naming_the_worst_coordinate(problem):
    b = np.array(problem.prediction.b)
    b[2] += 1e-3 * np.abs(b).max()
    with pytest.raises(AssertionError, match="coordinate"):
        iba.assert_matches_flow_limit(jnp.asarray(b), problem, rtol=1e-9)


def test_a_float32_jax_array_cannot_meet_a_float64_tolerance(problem):
    with pytest.raises(ValueError, match="dtype can resolve"):
        iba.assert_matches_flow_limit(jnp.asarray(problem.prediction.b, dtype=jnp.float32), problem, rtol=1e-10)


def test_a_jax_integer_array_is_a_type_error(problem):
    with pytest.raises(TypeError, match="integer"):
        iba.assert_matches_flow_limit(jnp.zeros(problem.d, dtype=jnp.int32), problem)
