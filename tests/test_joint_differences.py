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


def test_every_element_of_a_cnn_swept_together_changes_the_objective_as_each_node_alone():
    # every element of every node, as full mode sweeps them: the one-element copies of the convolution's output
    # meet the kernels' whole-channel changes at relu, where joining them would widen them 32-fold (swept
    # separately there), and both meet again downstream
    graph, forward, nodes = checked_nodes("nn/small_cnn.yaml")
    sources = {}
    for i in nodes:
        size = int(np.size(forward.values[i]))
        sources[i] = (np.tile(np.arange(size), 2), np.repeat([1e-3, -2e-3], size))
    together = Evaluator(graph, forward.values, forward.projection)
    swept = together.changes_at_sources(sources)
    alone = Evaluator(graph, forward.values, forward.projection)
    for i in nodes:
        np.testing.assert_allclose(swept[i], alone.changes_at(i, *sources[i]), rtol=1e-12, atol=1e-15,
                                   err_msg=graph.nodes[i].name)
        value = np.array(forward.values[i], dtype=np.float64)
        element, offset = int(sources[i][0][-1]), float(sources[i][1][-1])
        moved = value.copy()
        moved.reshape(-1)[element] += offset
        assert swept[i][-1] == pytest.approx(alone.objective_with(i, moved) - alone.f0, rel=1e-7, abs=1e-12)


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


# ---------------------------------------------------------------------------------------------- ties
def levels_of_search(monkeypatch, path):
    """check_spec in full mode, and the number of elements each level of its step search evaluated."""
    from gradcheck import CheckOptions, check_spec
    from gradcheck.numeric.differentiator import NodeDifferentiator as Differ

    levels: list[int] = []
    original = Differ.quotient_and_truncation

    def counted(self, elements, method, steps):
        levels.append(int(np.size(elements)))
        return original(self, elements, method, steps)

    monkeypatch.setattr(Differ, "quotient_and_truncation", counted)
    return check_spec(path, options=CheckOptions(mode="full")), levels


def write(tmp_path, x):
    path = tmp_path / "spec.yaml"
    path.write_text(f"inputs:\n  x: {x}\nnodes:\n  out: sum(tanh(max_pool2d(x, kernel=2)) * 3)\n")
    return path


def test_a_tie_is_judged_on_its_slopes_without_searching_shorter_steps(tmp_path, monkeypatch):
    # window 1 ties two ways at 0.5, window 2 three ways at 0.3: every stencil straddles the kink
    result, levels = levels_of_search(monkeypatch, write(tmp_path, "[[[[0.5, 0.5], [0.1, 0.2]], [[0.3, 0.3], [0.3, -0.2]]]]"))
    x = next(n for n in result.nodes if n.name == "x")
    assert result.status == "pass" and x.status == "kink" and x.kinks == 5
    for element in x.elements:
        tied = 0.5 if element.index[1] == 0 else 0.3
        assert element.right == pytest.approx(3 / np.cosh(tied) ** 2, rel=1e-8)   # d/dx 3 tanh(x), moving up
        assert element.left == 0.0                                                 # another tied entry stays max
        # the first step's central difference: the mean of the two slopes, within its bound (the jump)
        assert abs(element.numeric - 1.5 / np.cosh(tied) ** 2) <= element.numeric_error
    # the tied elements' search ended at the first level (else 7 more levels of them, each its own pass)
    assert len(levels) <= 2 and sum(levels[1:]) < 5


def test_a_near_tie_is_searched_down_to_a_step_that_crosses_no_decision(tmp_path, monkeypatch):
    # 1e-9 apart: the first step crosses the decision, a step below 1e-9 does not -- a derivative, not a kink
    result, levels = levels_of_search(monkeypatch, write(tmp_path, "[[[[0.5, 0.499999999], [0.1, 0.2]]]]"))
    x = next(n for n in result.nodes if n.name == "x")
    assert x.status == "pass" and x.kinks == 0
    assert x.numeric.reshape(-1)[0] == pytest.approx(3 / np.cosh(0.5) ** 2, rel=1e-6)
    assert abs(x.numeric.reshape(-1)[1]) < 1e-6
    assert len(levels) > 3


@pytest.mark.parametrize("spec", ["nn/small_cnn.yaml", "relu_kink.yaml", "svm_hinge.yaml", "nn/mlp_classifier.yaml"])
def test_the_branch_watch_of_several_nodes_swept_together_counts_what_each_node_counts(spec):
    from gradcheck.judge.kinks import BranchWatch

    graph, forward, nodes = checked_nodes(spec)
    watch = BranchWatch(graph, forward.values)
    rng = np.random.default_rng(11)
    # steps from far below to far above the values' spacing: some cross decisions, some do not
    steps = {i: 10.0 ** rng.uniform(-9, 0, int(np.size(forward.values[i]))) for i in nodes}
    elements = {i: rng.permutation(int(np.size(forward.values[i])))[: max(1, int(np.size(forward.values[i])) // 2)]
                for i in nodes[::2]}
    together = watch.element_flips_together(steps, (1.0, -1.0, 0.5), elements)
    crossed = 0
    for i in nodes:
        alone = watch.element_flips(i, steps[i], (1.0, -1.0, 0.5), elements.get(i))
        np.testing.assert_array_equal(together[i], alone, err_msg=graph.nodes[i].name)
        crossed += int(np.count_nonzero(alone))
    if spec == "nn/small_cnn.yaml":  # its pooling windows tie at relu's zeros: some steps cross
        assert crossed


# ---------------------------------------------------------------------------------------------- kept geometries
def test_a_kept_convolution_geometry_still_validates_every_new_shape_and_takes_lists():
    from gradcheck.ops.base import OpArgumentError
    from gradcheck.ops.registry import BUILTIN_OPS

    conv = BUILTIN_OPS["conv2d"].impl
    pool = BUILTIN_OPS["max_pool2d"].impl
    x, w, b = np.arange(36.0).reshape(1, 1, 6, 6), np.ones((2, 1, 3, 3)), np.array([0.5, -1.0])
    for _ in range(2):  # the second call reads the kept geometry
        out = conv.forward(x, w, b, stride=[2, 1], padding=(1, 0))
        assert out.shape == (1, 2, 3, 4)
        # output (0, 0, 0, 0): the 3x3 window at rows -1..1 (the first zero-padded), columns 0..2
        assert out[0, 0, 0, 0] == pytest.approx(0 + 1 + 2 + 6 + 7 + 8 + 0.5)
        assert pool.forward(x, kernel=[3, 2]).tolist() == [[[[13.0, 15.0, 17.0], [31.0, 33.0, 35.0]]]]
    conv.forward(np.ones((1, 1, 6, 6)), w, b)                # kept for these parameters and w ...
    with pytest.raises(OpArgumentError, match="channels"):
        conv.forward(np.ones((1, 2, 6, 6)), w, b)            # ... but x has two channels where w expects one
    pool.forward(np.ones((1, 1, 4, 4)), kernel=3)
    with pytest.raises(OpArgumentError, match="larger than"):
        pool.forward(np.ones((1, 1, 2, 2)), kernel=3)        # a window larger than the input


def searches_of(monkeypatch, path):
    """check_spec in full mode, and the number of elements each step search (error_balanced call) took."""
    from gradcheck import CheckOptions, check_spec

    searches: list[int] = []
    original = NodeDifferentiator.error_balanced

    def counted(self, elements, *args, **kwargs):
        searches.append(int(np.size(elements)))
        return original(self, elements, *args, **kwargs)

    monkeypatch.setattr(NodeDifferentiator, "error_balanced", counted)
    return check_spec(path, options=CheckOptions(mode="full")), searches


@pytest.mark.parametrize("activation,joined", [("tanh", True), ("relu", False)])
def test_nodes_too_large_for_one_sweep_join_the_step_search_unless_a_decision_downstream_is_watched(
        tmp_path, monkeypatch, activation, joined):
    # W's first level (6 copies of 256 elements along ~1,400 floats downstream) exceeds one sweep's budget: with no
    # branch downstream it still joins the other nodes' one search; behind relu it is searched on its own
    path = tmp_path / "mlp.yaml"
    path.write_text("seed: 1\ninputs:\n  X: {shape: [8, 16], init: normal, requires_grad: false}\n"
                    "  W: {shape: [16, 16], init: normal, std: 0.25}\n  V: {shape: [16, 3], init: normal, std: 0.25}\n"
                    f"nodes:\n  h: {activation}(X @ W)\n  out: sum(tanh(h @ V))\n")
    result, searches = searches_of(monkeypatch, path)
    assert result.status.value == "pass"
    elements = {node.name: int(np.size(node.analytic)) for node in result.nodes if node.checked == "full"}
    assert sum(searches) == sum(elements.values())
    assert (len(searches) == 1) == joined
    if not joined:
        assert elements["W"] in searches
