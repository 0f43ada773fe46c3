"""The report: records plus environment, written atomically (temp file + rename)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
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


@contextmanager
def atomic_file(path: Path, mode: str = "w"):
    """A file that appears at ``path`` whole or not at all (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, payload: dict[str, Any]) -> None:
    with atomic_file(path) as fh:
        json.dump(payload, fh, indent=2, allow_nan=False)
