"""Matrix-factorization predictors (theory.matrix compiled): commuting sensing, deep end-to-end, nuclear norms."""
from .mf_commuting import (CommutingBasis, CommutingPrediction, CommutingTrajectory, MinTraceLP, commuting_basis,
                           commuting_limit, commuting_trajectory, min_trace_commuting)
from .mf_deep import (EndToEnd, balance_gap, balanced_factors, effective_rank, end_to_end_rhs,
                      integrate_end_to_end, psd_power, require_balanced, singular_value_rhs)
from .mf_nuclear import (CertifiedMinTrace, MinNuclearNorm, Regularized, min_nuclear_norm, min_trace_certified,
                         nuclear_norm, nuclear_regularized_completion, nuclear_regularized_cvxpy, svt)
from .mf_svd2 import Svd2Flow, from_svd2, integrate_svd2, to_svd2

__all__ = ["CertifiedMinTrace", "CommutingBasis", "CommutingPrediction", "CommutingTrajectory", "EndToEnd",
           "MinNuclearNorm", "MinTraceLP", "Regularized", "Svd2Flow", "balance_gap", "balanced_factors",
           "commuting_basis", "commuting_limit", "commuting_trajectory", "effective_rank", "end_to_end_rhs",
           "from_svd2", "integrate_end_to_end", "integrate_svd2", "min_nuclear_norm", "min_trace_certified",
           "min_trace_commuting", "nuclear_norm", "nuclear_regularized_completion", "nuclear_regularized_cvxpy",
           "psd_power", "require_balanced", "singular_value_rhs", "svt", "to_svd2"]
