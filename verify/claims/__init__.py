"""Every module in this package registers its claims on import; ``load_all`` imports them all."""
from __future__ import annotations

import importlib
import os
import pkgutil

from .registry import (CALIBRATIONS, KINDS, REGISTRY, Claim, Context, Measurement, calibrated, calibration, claim,
                       counterexample, run_claim)


def _import_error_claim(name: str, exc: Exception) -> None:
    """A claims module that fails to import becomes one `error` record instead of stopping the run."""
    def fail(ctx):
        raise ImportError(f"verify.claims.{name} failed to import: {type(exc).__name__}: {exc}") from exc

    cid = f"{name}.import"
    if cid not in REGISTRY:
        REGISTRY[cid] = Claim(cid, f"claims module verify.claims.{name} imports", "package", fail, "derived")


def load_all() -> dict[str, Claim]:
    """Import every claims module here, then the modules named in $VERIFY_CLAIM_MODULES (comma-separated: a user's
    own claims, registered with ``verify.claims.claim``; Dask workers import them too)."""
    names = [f"{__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
             if m.name != "registry"]
    names += [m.strip() for m in os.environ.get("VERIFY_CLAIM_MODULES", "").split(",") if m.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            _import_error_claim(name.removeprefix(f"{__name__}."), exc)
    return REGISTRY


__all__ = ["CALIBRATIONS", "KINDS", "REGISTRY", "calibrated", "calibration", "counterexample", "Claim", "Context", "Measurement", "claim", "run_claim", "load_all"]
