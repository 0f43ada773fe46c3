"""Numeric predictors compiled from the derivations in ``theory``; plain numpy arrays in, results with certificates out
(numerics.result)."""
from .dln import (bregman_limit, flow_limit, isotropic_trajectory, min_l1, min_l2, potential,
                  shape_limit)
from .newton import Prediction, dual_newton
from .result import Certified, Result, Trajectory

__all__ = ["Certified", "Prediction", "Result", "Trajectory", "bregman_limit", "dual_newton", "flow_limit",
           "isotropic_trajectory", "min_l1", "min_l2", "potential", "shape_limit"]
