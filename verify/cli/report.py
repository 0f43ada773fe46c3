"""The report's environment block (versions, device, seed, git revision)."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any


def git_revision() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def environment(device: str, seed: int, quick: bool) -> dict[str, Any]:
    import mpmath
    import numpy
    import scipy
    import sympy
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "sympy": sympy.__version__,
            "mpmath": mpmath.__version__, "torch": torch.__version__, "device": device, "seed": seed,
            "mode": "quick" if quick else "full", "git": git_revision()}
