"""pytest plugin of implicit-bias-verify, registered as the pytest11 entry point ``verify.testing.plugin``: the same
name as ``-p verify.testing.plugin``, so giving -p too does not register it twice (``-p no:verify.testing.plugin``
disables it).

- fixtures: ``dln_problem``, ``dln_shape_problem``, ``gd_problem``, ``sensing_problem``, ``deep_mf_problem``,
  ``linear_problem``, ``relu_problem``: small fixed instances (seed 0) of verify.testing.problems;
- ``--ib-profile {ib-quick,ib-thorough}``: load one of the Hypothesis profiles registered here (nothing is loaded
  without the option, so a suite's own profile, e.g. from HYPOTHESIS_PROFILE in a conftest, stays in force);
- marker ``gpu``: the test trains on a CUDA device; skipped with a reason when CUDA is absent.

Imports stay light at load time (the plugin loads in every pytest run of an environment that installs the package).
"""
from __future__ import annotations

import pytest

PROFILES = ("ib-quick", "ib-thorough")


def _register_profiles() -> bool:
    """Register ib-quick / ib-thorough; False when Hypothesis is not installed."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return False
    slow = [HealthCheck.too_slow]
    settings.register_profile("ib-quick", max_examples=10, deadline=None, derandomize=True, database=None,
                              print_blob=True, suppress_health_check=slow)
    settings.register_profile("ib-thorough", max_examples=200, deadline=None, print_blob=True,
                              suppress_health_check=slow)
    return True


def pytest_addoption(parser) -> None:
    group = parser.getgroup("implicit_bias", "implicit-bias-verify testing API")
    group.addoption("--ib-profile", action="store", default=None, choices=PROFILES,
                    help="load this Hypothesis profile for verify.testing strategies (ib-quick: 10 derandomized "
                         "examples; ib-thorough: 200)")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "gpu: the test trains on a CUDA device (skipped when CUDA is absent)")
    have_hypothesis = _register_profiles()
    name = config.getoption("--ib-profile")
    if name is not None:
        if not have_hypothesis:
            raise pytest.UsageError("--ib-profile needs Hypothesis: pip install hypothesis")
        from hypothesis import settings

        settings.load_profile(name)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config, items) -> None:
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu and not _cuda_available():
        skip = pytest.mark.skip(reason="marked gpu: CUDA is not available (torch.cuda.is_available() is False)")
        for item in gpu:
            item.add_marker(skip)


def pytest_report_header(config):
    name = config.getoption("--ib-profile")
    return f"implicit-bias-verify: Hypothesis profile {name}" if name else None


@pytest.fixture
def dln_problem():
    """A `pm` DLN regression problem, n = 3, d = 6, alpha = 0.1 (verify.testing.problems.DLNProblem)."""
    from .problems import DLNProblem

    return DLNProblem.random(seed=0)


@pytest.fixture
def dln_shape_problem():
    """A `uv` DLN from an unbalanced init (u0, v0), n = 3, d = 6."""
    from .problems import DLNShapeProblem

    return DLNShapeProblem.random(seed=0)


@pytest.fixture
def gd_problem():
    """A `uv` DLN for GD at eta = eta_c / 2, n = 3, d = 6, alpha = 0.1."""
    from .problems import DLNGDProblem

    return DLNGDProblem.random(seed=0)


@pytest.fixture
def sensing_problem():
    """Commuting symmetric sensing, d = 4, m = 2, alpha = 0.1."""
    from .problems import SensingProblem

    return SensingProblem.random(seed=0)


@pytest.fixture
def deep_mf_problem():
    """Depth-3 balanced factorization with a sensing loss, d = 3, m = 4, t in [0, 2]."""
    from .problems import DeepMFProblem

    return DeepMFProblem.random(seed=0)


@pytest.fixture
def linear_problem():
    """Underdetermined least squares from an init w0, n = 3, d = 7, one layer."""
    from .problems import LinearInitProblem

    return LinearInitProblem.random(seed=0)


@pytest.fixture
def relu_problem():
    """Two-layer ReLU nets at init on a segment at angle pi/3, d = 4, width 16."""
    import math

    from .problems import ReluSegmentProblem

    return ReluSegmentProblem(d=4, width=16, theta=math.pi / 3)
