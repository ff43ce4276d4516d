"""A second opinion without tolerances: the Taylor remainder test.

Along a random direction v of an input x, with the analytic gradient a = d objective / d x,

    r(h) = |f(x + h v) - f(x) - h <a, v>|

is O(h^2) when a is the gradient (the first-order Taylor term cancels) and O(h) when it is not (what is left
is h <grad f - a, v>).  The observed order is the slope of log r against log h over a range of h, read where
r stands clear of the objective's round-off: ~2 for a right gradient, ~1 for a wrong one.  Where every
remainder is at round-off level (f is linear along v) the gradient is exact along v and the test passes.
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph
from ..numeric import MACHINE_EPS, Evaluator, element_scale
from ..results import Status, TaylorResult
from ..spec import stable_seed

STEPS = tuple(2.0 ** -k for k in range(4, 16))   # relative to each element's scale
PASSING_ORDER = 1.8                               # a right gradient shows ~2, a wrong one ~1


def taylor_tests(graph: Graph, evaluator: Evaluator, adjoints, checked: list[int]) -> list[TaylorResult]:
    return [taylor_test(graph, evaluator, adjoints, index) for index in checked]


def taylor_test(graph: Graph, evaluator: Evaluator, adjoints, index: int) -> TaylorResult:
    node = graph.nodes[index]
    x = np.asarray(evaluator.values[index], dtype=np.float64)
    rng = np.random.default_rng(stable_seed(graph.spec.seed, "taylor", node.name))
    # the steps are relative to the elements' size, but never longer than 1: sin at 1e6 varies on a scale of 1
    direction = rng.choice([-1.0, 1.0], size=x.shape) * np.minimum(element_scale(x), 1.0)
    adjoint = adjoints[index]
    analytic = np.zeros(x.shape) if adjoint is None else np.asarray(adjoint, dtype=np.float64)
    slope = float(np.sum(analytic * direction))
    f0 = evaluator.f0
    remainders = np.array([abs(float(np.real(evaluator.objective_with(index, x + h * direction))) - f0 - h * slope)
                           for h in STEPS])
    steps = np.array(STEPS)
    floor = 64 * MACHINE_EPS * (abs(f0) + abs(slope) + evaluator.path_magnitude(index))
    usable = np.isfinite(remainders) & (remainders > floor)
    if not np.isfinite(slope) or not np.all(np.isfinite(remainders)):
        return TaylorResult(node.name, Status.FAIL, float("nan"), remainders.tolist(), list(STEPS),
                            "the objective or the gradient is not finite along the test direction")
    if usable.sum() < 3:
        return TaylorResult(node.name, Status.PASS, float("nan"), remainders.tolist(), list(STEPS),
                            "remainders at round-off level: the gradient is exact along the test direction")
    # the longest usable steps, where the remainder is furthest above round-off; the median of the slopes
    # between neighbours is robust to one remainder that happens to cross zero
    chosen = np.flatnonzero(usable)[:6]
    slopes = np.diff(np.log(remainders[chosen])) / np.diff(np.log(steps[chosen]))
    order = float(np.median(slopes))
    status = Status.PASS if order >= PASSING_ORDER else Status.FAIL
    message = (f"observed order {order:.2f} (≈ 2 for a right gradient, ≈ 1 for a wrong one) over h = "
               f"{steps[chosen][0]:.3g} … {steps[chosen][-1]:.3g}")
    return TaylorResult(node.name, status, order, remainders.tolist(), list(STEPS), message)
