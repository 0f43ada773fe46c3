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


@dataclass
class Claim:
    id: str
    statement: str
    source: str
    fn: Callable[[Context], Measurement]
    conjecture: bool = False


REGISTRY: dict[str, Claim] = {}


def claim(id: str, statement: str, source: str, conjecture: bool = False):
    """Register ``fn(ctx) -> Measurement`` under a stable dotted id."""

    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"claim id {id!r} registered twice")
        REGISTRY[id] = Claim(id, statement, source, fn, conjecture)
        return fn

    return deco


def jsonable(x: Any) -> Any:
    """Plain JSON types: NaN (no number) becomes null, +-inf the strings "inf"/"-inf"; the report stays valid JSON."""
    import numpy as np

    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None if math.isnan(x) else repr(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


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
    record: dict[str, Any] = {"id": c.id, "statement": c.statement, "source": c.source,
                              "device": str(ctx.device)}
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
    if c.conjecture:
        record["details"]["conjecture"] = True
    record["seconds"] = time.perf_counter() - start
    return jsonable(record)
