"""One edge of one op in isolation: is what its vjp passes to an argument the op's own derivative?

Along a random direction d of argument i, <vjp_i(g), d> must equal d/dt <g, f(.., x_i + t d, ..)>
at t = 0, which finite differences of the op alone estimate.  The verdict is the judge's, under
the node's tolerance: at a kink of the op (relu at 0) the vjp's one-sided derivative is no fault.
"""
from __future__ import annotations

import numpy as np

from ..engine import BackwardPass, evaluate_node, evaluation_failures
from ..graph import Graph, Node
from ..numeric import element_scale, one_sided_slopes, richardson_central
from ..numeric.stencils import BASE_STEP
from ..results import Status
from ..spec import Tolerance, stable_seed
from .verdict import element_status

LOCAL_STEP = 1e-3  # along a direction scaled to the argument's elements; Richardson removes the h² term


def local_fault(graph: Graph, backward: BackwardPass, values: list[np.ndarray], node: Node, position: int,
                tol: Tolerance) -> str:
    """What is wrong with the gradient node's vjp passes to its argument at position, or '' if nothing is."""
    if node.index in backward.faults:
        return backward.faults[node.index]
    passed = backward.edge_grads.get((node.index, position))
    g = backward.adjoints[node.index]
    if passed is None or g is None:
        return ""
    g = np.asarray(g, dtype=np.float64)
    args = [values[a] for a in node.args]
    x = np.asarray(args[position], dtype=np.float64)
    rng = np.random.default_rng(stable_seed(graph.spec.seed, "local", node.name, str(position)))
    direction = rng.choice([-1.0, 1.0], size=x.shape) * element_scale(x)

    def projected(t):
        shifted = list(args)
        shifted[position] = x + t * direction
        try:
            with np.errstate(all="ignore"):
                return float(np.sum(g * evaluate_node(node, shifted, np.float64)))
        except evaluation_failures(node):
            return float("nan")

    numeric, truncation = richardson_central(projected, LOCAL_STEP)
    if not np.isfinite(numeric):
        return ""  # the op cannot be evaluated around this point: no evidence either way
    analytic = float(np.sum(np.asarray(passed, dtype=np.float64) * direction))
    status = element_status(analytic, numeric, tol, truncation,
                            slopes=lambda: one_sided_slopes(projected, projected(0.0), BASE_STEP["central"]))
    if status == Status.FAIL:
        return (f"passes {analytic:.6g} to '{graph.nodes[node.args[position]].name}' along a random direction "
                f"where finite differences of the op alone give {numeric:.6g}")
    return ""
