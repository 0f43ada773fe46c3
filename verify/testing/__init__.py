"""Testing API: Hypothesis strategies drawing well-posed problems and assertions against the package's predictions.

    from hypothesis import given
    from . import strategies as ibs, assertions as iba

    @given(ibs.dln_problems(n=ibs.sizes(2, 4), alpha=ibs.log_uniform(1e-2, 10)))
    def test_my_trainer_finds_the_gf_limit(problem):
        b = my_trainer(problem.X, problem.y, init=problem.params0)     # any framework
        iba.assert_matches_flow_limit(b, problem, rtol=1e-6)

Problems (verify.testing.problems) are frozen; their ``prediction`` is computed on first access and carries a
uniform ``certificate`` (status, residual). A pytest plugin (verify.testing.plugin, a pytest11 entry point)
adds fixtures, ``--ib-profile`` and the ``gpu`` marker. Reference: docs/testing.md.
"""
from . import assertions, problems
from .problems import (Certificate, DeepMFProblem, DLNGDProblem, DLNProblem, DLNShapeProblem, LinearInitProblem,
                       ReluSegmentProblem, SensingProblem, StabilityPrediction)

__all__ = ["Certificate", "DLNGDProblem", "DLNProblem", "DLNShapeProblem", "DeepMFProblem", "LinearInitProblem",
           "ReluSegmentProblem", "SensingProblem", "StabilityPrediction", "assertions", "problems", "strategies"]


def __getattr__(name: str):
    """``verify.testing.strategies`` on first use: Hypothesis (the [test] extra) is needed only for the strategies."""
    if name == "strategies":
        import importlib

        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
