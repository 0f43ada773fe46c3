"""Numeric predictors compiled from the derivations in ``theory``; plain numpy arrays in and out."""
from .dln import (bregman_limit, flow_limit, isotropic_trajectory, min_l1, min_l2, potential,
                  shape_limit)
from .newton import Prediction, dual_newton

__all__ = ["Prediction", "bregman_limit", "dual_newton", "flow_limit", "isotropic_trajectory", "min_l1",
           "min_l2", "potential", "shape_limit"]
