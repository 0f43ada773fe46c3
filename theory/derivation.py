"""A derivation: named sympy expressions built from a model's definition, with every step checked."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


class DerivationError(AssertionError):
    """A step of a derivation did not verify."""


def _factor_roots(expr: sp.Expr) -> sp.Expr:
    return expr.replace(lambda e: e.is_Pow and not e.exp.is_integer, lambda e: sp.factor(e.base) ** e.exp)


def _zero_candidates(expr: sp.Expr):
    yield sp.simplify(expr)
    yield sp.simplify(_factor_roots(sp.simplify(expr.rewrite(sp.exp))))
    yield sp.simplify(sp.expand(expr.rewrite(sp.exp)))
    yield sp.simplify(sp.powsimp(sp.expand_power_base(sp.expand(expr), force=True), force=True))
    yield sp.nsimplify(sp.simplify(sp.expand_log(sp.expand(expr.rewrite(sp.log)), force=True)))


def is_zero(expr) -> bool:
    """True when sympy proves ``expr`` identically zero (several simplification strategies)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    for candidate in _zero_candidates(expr):
        if candidate == 0:
            return True
    return False


@dataclass
class Derivation:
    """Named expressions of one model plus the identities verified while building them."""

    name: str
    source: str
    symbols: dict[str, sp.Symbol] = field(default_factory=dict)
    expressions: dict[str, sp.Expr] = field(default_factory=dict)
    identities: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> sp.Expr:
        return self.expressions[key]

    def __contains__(self, key: str) -> bool:
        return key in self.expressions

    def define(self, key: str, expr) -> sp.Expr:
        self.expressions[key] = sp.sympify(expr)
        return self.expressions[key]

    def check_zero(self, label: str, expr) -> None:
        """Record ``label`` as verified if ``expr`` simplifies to 0; raise otherwise."""
        if not is_zero(expr):
            raise DerivationError(f"{self.name}: identity '{label}' failed: {sp.simplify(expr)} != 0")
        self.identities.append(label)

    def check_equal(self, label: str, lhs, rhs) -> None:
        self.check_zero(label, sp.sympify(lhs) - sp.sympify(rhs))

    def check_true(self, label: str, condition: bool, detail: str = "") -> None:
        """Record a verified fact that is not a zero test (a limit's value, a series coefficient)."""
        if not bool(condition):
            raise DerivationError(f"{self.name}: '{label}' failed {detail}")
        self.identities.append(label)

    def check_numeric(self, label: str, expr, subs_list, tol: float = 1e-25, dps: int = 40) -> None:
        """Last resort for identities sympy cannot close: zero at high precision at the given points."""
        for subs in subs_list:
            val = sp.N(sp.sympify(expr).subs(subs), dps)
            if not abs(complex(val)) <= tol:
                raise DerivationError(f"{self.name}: '{label}' = {val} at {subs}")
        self.identities.append(label + " (checked at high precision on sample points)")
