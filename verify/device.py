"""Device choice: CUDA when present, else CPU; overridable."""
from __future__ import annotations

import torch


def pick_device(name: str | None = None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use 'cpu' or 'auto'")
    return dev
