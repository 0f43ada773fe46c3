"""The shape of every predictor's and trainer's result: the prediction with its certificate.

A result names its prediction ``b`` (a vector; per run or per time a leading axis) or ``W`` (a matrix), and carries
``status`` (the solver's own word, one per run for batches) and ``converged`` (the status is one of the class's
``OK``). Limits, interpolators and trained runs also carry ``residual``, the relative residual of the equations they
should satisfy (e.g. ||X b - y|| / ||y||); a trajectory has one only where it is certified by a second integrated
quantity (an ODE integrator's own error control is its status).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Result(Protocol):
    status: str | list[str]

    @property
    def converged(self) -> bool | np.ndarray: ...


class Certified:
    """Mixin for result dataclasses: ``converged`` is ``status in OK`` (an array of bools for per-run statuses)."""

    OK: ClassVar[tuple[str, ...]] = ("converged",)

    @property
    def converged(self) -> bool | np.ndarray:
        if isinstance(self.status, str):
            return self.status in self.OK
        return np.array([s in self.OK for s in self.status], dtype=bool)


@dataclass
class Trajectory(Certified):
    """A predicted path b(t): ``b`` (T, d) at times ``t`` (T,)."""

    t: np.ndarray
    b: np.ndarray
    status: str                # "exact" (closed form: its ODE holds identically, checked symbolically)

    OK = ("exact",)


def relative_residual(X, b, y) -> float:
    """Feasibility of an interpolator: ||X b - y|| / ||y|| (y = 0 counts as scale 1e-300)."""
    return float(np.linalg.norm(X @ b - y) / max(np.linalg.norm(y), 1e-300))
