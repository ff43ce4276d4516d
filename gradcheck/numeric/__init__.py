"""The numeric reference: finite differences of the objective, always in float64, as returned estimates.

Perturbing node k re-evaluates only what lies downstream of k (and on the way to the output);
everything else is read from the cached float64 forward values.

- ``stencils``: the difference formulas, pure functions of a callable and a step;
- ``evaluator``: the objective with one node's value replaced;
- ``differentiator``: a node's finite-difference gradient -> :class:`Estimate`, one element -> :class:`ElementEstimate`.
"""
from .differentiator import ElementEstimate, Estimate, NodeDifferentiator, shared_scale
from .evaluator import Evaluator
from .stencils import MACHINE_EPS, Slopes, element_scale, one_sided_slopes, richardson_central

__all__ = ["MACHINE_EPS", "ElementEstimate", "Estimate", "Evaluator", "NodeDifferentiator", "Slopes", "element_scale",
           "one_sided_slopes", "richardson_central", "shared_scale"]
