"""Verified derivations kept on disk: each is built and checked once per version of theory/ and sympy, then loaded.

Every process (each Dask worker included) otherwise rebuilds and re-checks the same sympy derivations. The key
hashes every theory/*.py source, the sympy and Python versions, so any edit rebuilds and re-checks. The cache
lives in ``$IMPLICIT_BIAS_CACHE`` (``off`` disables it), else ``$XDG_CACHE_HOME/implicit-bias-verify``.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

import sympy as sp

ENV = "IMPLICIT_BIAS_CACHE"
_THEORY = Path(__file__).resolve().parent
F = TypeVar("F", bound=Callable)


@functools.lru_cache(maxsize=None)
def source_key() -> str:
    """Hash of theory/*.py, sympy's and Python's versions: a derivation cached under another key is never read."""
    h = hashlib.sha256()
    for path in sorted(_THEORY.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(f"sympy {sp.__version__} python {sys.version}".encode())
    return h.hexdigest()[:20]


def cache_dir() -> Path | None:
    """Where verified derivations are kept, or None when ``$IMPLICIT_BIAS_CACHE`` is off."""
    value = os.environ.get(ENV, "")
    if value.lower() in ("off", "0", "no", "false"):
        return None
    if value:
        return Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "implicit-bias-verify"


def _entry(fn: Callable, args: tuple) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    tag = "-".join(repr(a) for a in args)
    return root / "derivations" / source_key() / f"{fn.__module__}.{fn.__qualname__}({tag}).pickle"


def _load(path: Path):
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
        return None


def _store(path: Path, value) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(f.name, path)
    except OSError:
        pass


def derivation(fn: F) -> F:
    """Memoize a derivation builder in memory and on disk (keyed by :func:`source_key` and the arguments)."""
    signature = inspect.signature(fn)

    @functools.lru_cache(maxsize=None)
    def build(args: tuple):
        path = _entry(fn, args)
        value = _load(path) if path is not None and path.exists() else None
        if value is None:
            value = fn(*args)
            if path is not None:
                _store(path, value)
        return value

    @functools.wraps(fn)
    def built(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return build(tuple(bound.arguments.values()))

    built.cache_clear = build.cache_clear  # type: ignore[attr-defined]
    return built  # type: ignore[return-value]
