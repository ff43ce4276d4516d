"""Issue 12 (small graphs): the element steps of several nodes swept downstream together, and the step search of
several nodes run as one (JointDifferentiator), give what each node gives on its own."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcheck.numeric import Evaluator, NodeDifferentiator
from gradcheck.numeric.differentiator import JointDifferentiator
from gradcheck.pipeline import run
from gradcheck.spec import Overrides

REPO = Path(__file__).resolve().parents[1]
SPECS = ["nn/small_cnn.yaml", "nn/mlp_classifier.yaml", "gates.yaml", "relu_kink.yaml", "svm_hinge.yaml"]


def checked_nodes(spec):
    checked = run(REPO / "specs" / spec, Overrides(), judge=False)
    graph, forward = checked.graph, checked.analytic
    nodes = [n.index for n in graph.nodes if forward.values[n.index].dtype.kind == "f" and np.size(forward.values[n.index])
             and graph.reaches_output[n.index]]
    return graph, forward, nodes


@pytest.mark.parametrize("spec", SPECS)
def test_element_steps_of_several_nodes_swept_together_change_the_objective_as_each_alone(spec):
    graph, forward, nodes = checked_nodes(spec)
    rng = np.random.default_rng(5)
    sources = {}
    for i in nodes:
        size = int(np.size(forward.values[i]))
        elements = rng.integers(0, size, 4)
        sources[i] = (elements, rng.choice([1e-3, -1e-3, 2e-3], 4))
    together = Evaluator(graph, forward.values, forward.projection)
    swept = together.changes_at_sources(sources)
    alone = Evaluator(graph, forward.values, forward.projection)
    scale = max(abs(alone.f0), 1.0)
    for i in nodes:
        # the objective moved by hand: the independent reference of each change
        value = np.array(forward.values[i], dtype=np.float64)
        by_hand = []
        for element, offset in zip(*sources[i], strict=True):
            moved = value.copy()
            moved.reshape(-1)[element] += offset
            by_hand.append(alone.objective_with(i, moved) - alone.f0)
        np.testing.assert_allclose(swept[i], by_hand, rtol=1e-7, atol=1e-12 * scale, err_msg=graph.nodes[i].name)
        np.testing.assert_allclose(swept[i], alone.changes_at(i, *sources[i]), rtol=1e-9, atol=1e-14 * scale)
    assert together.evaluations == 4 * len(nodes)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("method", ["central", "five-point", "forward"])
def test_one_step_search_over_several_nodes_finds_each_nodes_own_estimates(spec, method):
    graph, forward, nodes = checked_nodes(spec)
    evaluator = Evaluator(graph, forward.values, forward.projection)
    differs = [NodeDifferentiator(evaluator, i, method, None) for i in nodes]
    # one node's search to the float64 floor, the others' until their bounds settle a tolerance of their own
    resolutions = [None] + [(1e-7 * (k + 1), 1e-5) for k in range(len(differs) - 1)]
    joint = JointDifferentiator(differs).gradients(resolutions)
    for differ, resolution, found in zip(differs, resolutions, joint, strict=True):
        own = differ.gradient(resolution)
        name = graph.nodes[differ.index].name
        assert found.values.shape == own.values.shape, name
        np.testing.assert_allclose(found.values, own.values, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(found.steps, own.steps, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(found.error_bound, own.error_bound, rtol=1e-6, atol=1e-15, err_msg=name)


def test_joint_differences_refuse_nodes_of_different_schemes():
    graph, forward, nodes = checked_nodes("gates.yaml")
    evaluator = Evaluator(graph, forward.values, forward.projection)
    with pytest.raises(ValueError):
        JointDifferentiator([NodeDifferentiator(evaluator, nodes[0], "central", None),
                             NodeDifferentiator(evaluator, nodes[1], "five-point", None)])
