"""Compile derived sympy expressions to numpy, torch and mpmath callables (cached)."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import sympy as sp

BACKENDS = ("numpy", "torch", "mpmath")


def _modules(backend: str):
    if backend == "numpy":
        return ["scipy", "numpy"]
    if backend == "torch":
        import torch

        return [{"asinh": torch.asinh, "acosh": torch.acosh, "atanh": torch.atanh}, "torch"]
    if backend == "mpmath":
        return ["mpmath"]
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def lambdify(expr: sp.Expr, args: tuple[sp.Symbol, ...], backend: str = "numpy") -> Callable:
    """``sympy.lambdify`` with the package's backends; use :func:`compiled` for derivation expressions."""
    return sp.lambdify(args, expr, modules=_modules(backend))


@lru_cache(maxsize=None)
def compiled(derivation: Callable, key: str, args: tuple[str, ...], backend: str = "numpy",
             deriv_args: tuple = ()) -> Callable:
    """Compiled ``derivation(*deriv_args)[key]`` as a function of the named symbols ``args``."""
    d = derivation(*deriv_args)
    expr = d[key]
    syms = tuple(d.symbols[a] if a in d.symbols else sp.Symbol(a) for a in args)
    free = {str(x) for x in expr.free_symbols}
    missing = free - {str(x) for x in syms}
    if missing:
        raise ValueError(f"{d.name}[{key}] depends on {sorted(missing)} not in args {args}")
    return lambdify(expr, syms, backend)
