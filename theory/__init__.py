"""Symbolic derivations (sympy): every model's dynamics, conserved quantities, potentials and limits.

Each public function returns a :class:`~theory.derivation.Derivation` whose identities were verified
while it was built; a failed step raises :class:`~theory.derivation.DerivationError`.
"""
from .derivation import Derivation, DerivationError, is_zero

__all__ = ["Derivation", "DerivationError", "is_zero"]
