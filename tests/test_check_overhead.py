"""The fixed cost of a check cut without changing what it finds: branch decisions of every stencil point read in one
call, and the same answer as reading them one point at a time."""
from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest

from gradcheck.engine import backward, forward
from gradcheck.graph import build_graph
from gradcheck.judge.kinks import decisions_of
from gradcheck.judge.local import OpCheck
from gradcheck.numeric import Evaluator, NodeDifferentiator, element_scale, shared_scale, stencils
from gradcheck.pipeline import load

SPEC = """
    inputs:
      x: {value: [[[[0.004, -1.0, 2.0], [0.5, 0.497, -0.3], [1.5, -2.0, 0.9]]]]}
    nodes:
      r: relu(x)
      p: max_pool2d(x, kernel=2, stride=1)
      loss: sum(r * r) + sum(p * p)
"""


def op_check(tmp_path, name: str) -> tuple[OpCheck, np.ndarray]:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    graph = build_graph(load(path))
    with np.errstate(all="ignore"):
        reference = forward(graph, "float64")
        grads = backward(graph, reference, "float64")
    node = next(n for n in graph.nodes if n.name == name)
    return OpCheck(graph, node, grads, reference.values, graph.spec.tolerance), reference.values[node.args[0]]


def moved_one_by_one(check: OpCheck, x, direction, steps) -> bool:
    reference = decisions_of(check.node, check.args)
    return any(any(np.any(m != r) for m, r in zip(decisions_of(check.node, [x + t * direction]), reference, strict=True))
               for t in steps)


# relu: x[0,0,0,0] = 0.004 crosses 0 when moved by -0.01 (not by -0.001); max_pool2d: the window holding 0.5 and
# 0.497 changes its winner when they move 0.003 closer (a step of 1e-2 does, 1e-3 does not)
@pytest.mark.parametrize("name", ["r", "p"])
@pytest.mark.parametrize("steps, moves", [((1e-2, -1e-2, 2.5e-3, -2.5e-3), True), ((1e-3, -1e-3, 2.5e-4, -2.5e-4), False)])
def test_decisions_of_every_stencil_point_in_one_call_equal_those_read_one_by_one(tmp_path, name, steps, moves):
    check, x = op_check(tmp_path, name)
    direction = np.zeros_like(x)
    direction[0, 0, 0, 0] = -1.0
    direction[0, 0, 1, 0], direction[0, 0, 1, 1] = -1.0, 1.0
    reference = decisions_of(check.node, check.args)
    calls = []
    branches = check.node.op_info.branches

    def counted(*args, **params):
        calls.append(np.shape(args[0]))
        return branches(*args, **params)

    check.node.op = dataclasses.replace(check.node.op_info, branches=counted)
    assert check.decisions_move(0, x, direction, steps, reference) is moves
    assert calls == [(len(steps),) + x.shape]  # one call for every point
    assert moved_one_by_one(check, x, direction, steps) is moves


def test_a_node_s_step_scale_is_computed_once_and_shared_by_its_local_checks_and_its_differentiator(tmp_path):
    check, x = op_check(tmp_path, "r")
    medians = []
    median = stencils._median

    def counted(values):
        medians.append(values.size)
        return median(values)

    stencils._median = counted
    try:
        from_check = check.scale_of(0)
        graph, reference = check.graph, check.values
        differ = NodeDifferentiator(Evaluator(graph, reference, None), check.node.args[0], "central", None)
        again = shared_scale(x)
    finally:
        stencils._median = median
    assert from_check is differ.scale is again and medians == [x.size]
    # the value element_scale gives: max(|x_i|, median |x|); read-only, so no user of it can change it for the others
    magnitude = np.abs(x).reshape(-1)
    assert np.array_equal(from_check.reshape(-1), np.maximum(magnitude, np.sort(magnitude)[magnitude.size // 2]))
    assert np.array_equal(from_check, element_scale(x)) and not from_check.flags.writeable
    assert shared_scale(x.copy()) is not from_check  # another array (same values) has its own entry


def test_the_local_comparison_names_the_first_cotangent_that_disagrees(tmp_path):
    check, x = op_check(tmp_path, "r")
    direction = np.full(x.shape, 1e-3)
    jd = np.where(x > 0, direction, 0.0)  # relu's J d, exactly
    error = np.zeros(x.shape)
    right = [np.where(x > 0, g, 0.0) for g in check.cotangents]
    assert check.compare(right, check.cotangents, direction, jd, error) == ""
    # a gradient wrong only for the second random cotangent: that one is named, with its own inner products
    wrong = [right[0], right[1], right[2] + 1.0]
    message = check.compare(wrong, check.cotangents, direction, jd, error)
    analytic = float(np.sum(wrong[2] * direction))
    assert "a random cotangent" in message and f"{analytic:.6g}" in message
    assert "the cotangent the graph gives" in check.compare([right[0] * 1.5], check.cotangents[:1], direction, jd, error)
    assert check.compare([np.full(x.shape, np.nan)], check.cotangents[:1], direction, jd, error) != ""
