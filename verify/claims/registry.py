"""The claim registry: a claim couples a prediction with a trained measurement and a tolerance (DESIGN.md)."""
from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from verify.files import jsonable


@dataclass
class Context:
    """What a claim is run with: size, seed, device, output folder for plots."""

    quick: bool = True
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    out: Path = Path("results")
    dtype: torch.dtype = torch.float64

    def generator(self, offset: int = 0) -> "numpy.random.Generator":  # noqa: F821
        import numpy as np

        return np.random.default_rng(self.seed * 1_000_003 + offset)

    def plot_path(self, name: str) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / name


@dataclass
class Measurement:
    """A claim's result: ``value <= tolerance`` passes; details are JSON-able extras (per-case figures)."""

    metric: str
    value: float
    tolerance: float
    details: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)


KINDS = {
    "derived": "follows from a derivation in theory/; holds on every seed at a tolerance derived from the numerics",
    "empirical": "a measured regularity without proof; its band or test level is calibrated on seeds other than 0-9",
    "refuted": "a stated result shown false; passes when its documented counterexample reproduces",
}


@dataclass
class Claim:
    id: str
    statement: str
    source: str
    fn: Callable[[Context], Measurement]
    kind: str = "derived"
    group: str = ""           # claims sharing an expensive fixture run in one task (verify.cli.runner); "" = alone


REGISTRY: dict[str, Claim] = {}
COUNTEREXAMPLE_MARGIN = 100.0


def counterexample(effect: float, error: float) -> tuple[float, float]:
    """(value, tolerance) of a refuted claim: numerical error / the counterexample's effect (inf when the effect is
    absent); it reproduces when the effect exceeds its own numerical error COUNTEREXAMPLE_MARGIN-fold."""
    return (error / effect if effect > 0 else float("inf")), 1.0 / COUNTEREXAMPLE_MARGIN
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass
class Calibration:
    """How an empirical claim's band is measured: a per-seed statistic over seeds disjoint from 0-9, and the rule
    that turns the per-seed statistics into the band (``python -m verify.calibrate`` writes the result)."""

    statistic: Callable[[Context], dict]
    band: Callable[[list[dict]], dict]
    seeds: range
    rule: str


CALIBRATIONS: dict[str, Calibration] = {}


def calibration(id: str, seeds: range, rule: str, band: Callable[[list[dict]], dict]):
    """Register ``statistic(ctx) -> dict`` as the calibration of empirical claim ``id``."""
    if set(seeds) & set(range(10)):
        raise ValueError(f"calibration of {id!r}: seeds must be disjoint from the checked seeds 0-9")

    def deco(fn):
        CALIBRATIONS[id] = Calibration(fn, band, seeds, rule)
        return fn

    return deco


def calibrated(id: str) -> dict:
    """The stored band of an empirical claim (its seeds, rule and values); missing means not yet calibrated."""
    import json

    data = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}
    if id not in data:
        raise RuntimeError(f"{id} has no calibrated band: run python -m verify.calibrate {id}")
    return data[id]


def claim(id: str, statement: str, source: str, *, kind: str, group: str = ""):
    """Register ``fn(ctx) -> Measurement`` under a stable dotted id with its verdict kind (``KINDS``); claims with
    the same ``group`` share a cached fixture and run together in one task."""
    if kind not in KINDS:
        raise ValueError(f"claim {id!r}: kind must be one of {tuple(KINDS)}, got {kind!r}")

    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"claim id {id!r} registered twice")
        REGISTRY[id] = Claim(id, statement, source, fn, kind, group)
        return fn

    return deco


def _warning_counts(caught) -> list[dict[str, Any]]:
    """Warnings raised while a claim ran (solver notices, floating-point overflow), one entry per distinct kind."""
    counts: dict[tuple[str, str, str], int] = {}
    for w in caught:
        key = (w.category.__name__, str(w.message), f"{Path(w.filename).name}:{w.lineno}")
        counts[key] = counts.get(key, 0) + 1
    return [dict(category=k[0], message=k[1], where=k[2], count=n) for k, n in counts.items()]


def run_claim(c: Claim, ctx: Context) -> dict[str, Any]:
    """Run one claim; any exception becomes an ``error`` record, never a crash of the run."""
    start = time.perf_counter()
    record: dict[str, Any] = {"id": c.id, "statement": c.statement, "source": c.source, "kind": c.kind,
                              "seed": ctx.seed, "device": str(ctx.device)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            m = c.fn(ctx)
            ok = math.isfinite(m.value) and m.value <= m.tolerance
            record.update(status="pass" if ok else "fail", metric=m.metric, value=float(m.value),
                          tolerance=float(m.tolerance), details=jsonable(m.details), plots=m.plots)
        except Exception as exc:  # a failing claim never stops the others
            record.update(status="error", metric="", value=None, tolerance=None,
                          details={"error": f"{type(exc).__name__}: {exc}",
                                   "traceback": traceback.format_exc(limit=8)})
    if caught:
        record["details"]["warnings"] = _warning_counts(caught)
    record["seconds"] = time.perf_counter() - start
    return jsonable(record)
