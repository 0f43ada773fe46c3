"""Every module in this package registers its claims on import; ``load_all`` imports them all."""
from __future__ import annotations

import importlib
import pkgutil

from .registry import REGISTRY, Claim, Context, Measurement, claim, run_claim


def load_all() -> dict[str, Claim]:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name != "registry":
            importlib.import_module(f"{__name__}.{mod.name}")
    return REGISTRY


__all__ = ["REGISTRY", "Claim", "Context", "Measurement", "claim", "run_claim", "load_all"]
