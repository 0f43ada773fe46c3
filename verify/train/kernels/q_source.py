"""q+(x), q-(x) of the exact GD statistics (Even et al. 2023, Thm 1), generated from theory.dln_gd for the kernels."""
from __future__ import annotations

import linecache
from functools import lru_cache

from sympy.printing.pycode import PythonCodePrinter

from numerics.compile import compiled
from theory import dln_gd as th

NAMES = ("q_plus", "q_minus")


class TritonPrinter(PythonCodePrinter):
    """Python source over ``tl``: integers, +, *, integer powers, log and Abs (anything else raises)."""

    def _print_log(self, e):
        return f"tl.log({self._print(e.args[0])})"

    def _print_Abs(self, e):
        return f"tl.abs({self._print(e.args[0])})"

    def _print_Pow(self, e, rational=False):
        base, k = e.args
        if not (k.is_Integer and k > 0):
            raise NotImplementedError(f"power {e} has no Triton form here")
        return "(" + " * ".join([f"({self._print(base)})"] * int(k)) + ")"

    def _print_Rational(self, e):
        raise NotImplementedError(f"constant {e}: Triton would type it float32")

    _print_Float = _print_Rational

    def _print_Function(self, e):
        raise NotImplementedError(f"function {e.func} has no Triton form here")


def triton_source() -> str:
    """Source of ``q_plus(x)``, ``q_minus(x)`` as Triton device functions, printed from theory.dln_gd."""
    d = th.gd()
    x = d.symbols["x"]
    printer = TritonPrinter()
    out = []
    for name in NAMES:
        expr = d[name]
        if expr.free_symbols != {x}:
            raise ValueError(f"theory.dln_gd[{name}] depends on {expr.free_symbols}, expected only x")
        out.append(f"def {name}(x):\n    return {printer.doprint(expr)}\n")
    return "\n\n".join(out)


@lru_cache(maxsize=None)
def triton_functions():
    """(q_plus, q_minus) decorated with ``triton.jit`` (the interpreter when TRITON_INTERPRET=1 at import)."""
    import triton
    import triton.language as tl

    src = triton_source()
    filename = "<verify.train.kernels.q_source: theory.dln_gd q+- for Triton>"
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)  # inspect.getsource
    ns = {"tl": tl, "triton": triton, "__name__": __name__}
    exec(compile(src, filename, "exec"), ns)
    return tuple(triton.jit(ns[name]) for name in NAMES)


@lru_cache(maxsize=None)
def numba_functions():
    """(q_plus, q_minus) as numba-compiled scalar functions of the numpy lambdification (numerics.compile)."""
    import numba

    return tuple(numba.njit(compiled(th.gd, name, ("x",), "numpy")) for name in NAMES)
