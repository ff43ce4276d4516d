"""Directional probes (issue 8 point 7, issue 12 fast mode): tolerances from one element's resolution, random
direction magnitudes against cancelling errors, branch crossings retried at shorter steps, one sweep for the
first probe of every node."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from gradcheck import CheckOptions, check_spec
from gradcheck.numeric import Evaluator, NodeDifferentiator
from gradcheck.numeric.differentiator import joint_operand_magnitude
from gradcheck.pipeline import run
from gradcheck.spec import Overrides

REPO = Path(__file__).resolve().parents[1]
FAST = CheckOptions(mode="fast")

OPS = '''
import numpy as np

class FastSinOneOff:             # element 1234 off by 1e-6
    def forward(self, x): return np.sin(60 * x)
    def vjp(self, g, out, x):
        grad = 60 * g * np.cos(60 * x)
        grad[1234] += 1e-6
        return (grad,)

class SinOneElement:             # element 1234 off by 0.1 %
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x):
        grad = g * np.cos(x)
        grad[1234] *= 1.001
        return (grad,)

class Affine:
    def forward(self, x, w): return x @ w
    def vjp(self, g, out, x, w): return g @ w.T, x.T @ g

class SinTwoOff:                 # +1e-3 at element 3, -1e-3 at element 7: a ±1 direction cancels them half the time
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x):
        grad = g * np.cos(x)
        grad[3] += 1e-3
        grad[7] -= 1e-3
        return (grad,)
'''


def write(tmp_path, text, name="spec.yaml"):
    (tmp_path / "probe_ops.py").write_text(OPS)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def node(result, name):
    return next(n for n in result.nodes if n.name == name)


@pytest.mark.parametrize("seed", range(6))
def test_two_opposite_errors_of_equal_size_do_not_cancel_in_a_probe(tmp_path, seed):
    # every x_i = 1: every element has the same step scale, so d_3 e_3 + d_7 e_7 = 0 for equal random signs
    # (probability 1/2 per probe) -- unless the directions' magnitudes are random too
    path = write(tmp_path, f"""
        seed: {seed}
        inputs: {{x: {{shape: [64], init: ones}}}}
        ops: {{f: "probe_ops:SinTwoOff"}}
        nodes: {{y: "sum(f(x))"}}
    """)
    x = node(check_spec(path, options=FAST), "x")
    assert x.checked == "probes"
    assert x.status == "fail" and x.worst_index in ((3,), (7,))


def test_a_probe_is_judged_against_one_elements_tolerance_not_the_sum_of_them(tmp_path):
    # sin(60 x): at the first step the estimate's error (~5e-6) hides element 1234's error of 1e-6 (4.5 times
    # its tolerance, 2.2e-7) though it is far below the 2000 tolerances summed (~4e-4); the probe must retry at
    # the step balancing truncation and round-off, where it sees it -- with a single probe allowed
    path = write(tmp_path, """
        tolerance: {atol: 1.0e-7, rtol: 1.0e-5}
        inputs: {x: {shape: [2000], init: normal}}
        ops: {f: "probe_ops:FastSinOneOff"}
        nodes: {y: "mean(f(x))"}
    """)
    x = node(check_spec(path, options=CheckOptions(mode="fast", probes=1)), "x")
    assert x.checked == "probes" and x.status == "fail" and x.worst_index == (1234,)


def test_a_probe_that_cannot_resolve_one_elements_tolerance_leaves_the_node_to_the_full_check(tmp_path):
    path = write(tmp_path, """
        tolerance: {atol: 1.0e-13, rtol: 0}
        inputs: {x: {shape: [300], init: normal}}
        nodes: {y: "sum(sin(x) * x)"}
    """)
    x = node(check_spec(path, options=FAST), "x")
    assert x.checked == "full"


def test_a_probe_crossing_a_branch_decision_is_retried_at_a_shorter_step(tmp_path):
    # |x_i| = 1e-3 for ten elements (the step scale is the median, 1): a probe at the first step moves each
    # x_i by up to 6e-3 and crosses relu's kink; at a step 16 times shorter it crosses none -- still a
    # probe, no failure
    values = np.where(np.arange(400) % 2, 1.0, -1.0) * np.where(np.arange(400) < 10, 1e-3, 1.0)
    path = write(tmp_path, f"""
        inputs: {{x: {values.tolist()}}}
        nodes: {{y: "sum(relu(x) * x) + sum(relu(x))"}}
    """)
    result = check_spec(path, options=FAST)
    assert result.status == "pass"
    assert node(result, "x").checked == "probes" and node(result, "x").status == "pass"


def test_scalar_nodes_upstream_of_a_branch_are_probed(tmp_path):
    # a 0-d node's probe must not read as crossing maximum's branch decision (p = 4 > a = 3 everywhere nearby)
    result = check_spec(REPO / "specs" / "gates.yaml", options=FAST)
    assert result.status == "pass"
    assert {n.name: n.checked for n in result.nodes if n.name in "abcsp"} == dict.fromkeys("abcsp", "probes")


def test_round_off_of_products_that_cancel_to_zero_does_not_read_as_a_disagreement(tmp_path):
    # X @ W = 0 exactly and tanh(0) = 0: every value downstream is 0, yet the products x_ij w_j, recomputed by
    # the op's forward at each step, leave their ulps in the perturbed output; a probe's round-off bound must
    # count them
    path = write(tmp_path, """
        inputs: {X: [[1.0, 2.0], [2.0, 4.0]], W: [[0.5], [-0.25]]}
        ops: {affine: "probe_ops:Affine"}
        nodes: {loss: "sum(tanh(affine(X, W)))"}
    """)
    result = check_spec(path, options=FAST)
    assert result.status == "pass"
    assert node(result, "X").checked == "probes" and node(result, "W").checked == "probes"


def test_one_probe_suffices_where_its_bound_makes_cancelling_errors_unlikely(tmp_path):
    path = write(tmp_path, """
        inputs: {x: {shape: [500], init: normal}, w: {shape: [500], init: normal}}
        nodes: {y: "sum(tanh(x * w))"}
    """)
    x = node(check_spec(path, options=FAST), "x")
    assert x.checked == "probes" and x.message.startswith("checked by 1 random directional probe ")


@pytest.mark.parametrize("spec", ["nn/mlp_classifier.yaml", "nn/transformer_block.yaml", "nn/small_cnn.yaml",
                                  "gates.yaml", "conventions/stateful_layer.yaml"])
def test_one_sweep_for_several_nodes_gives_what_each_node_gives_alone(spec):
    checked = run(REPO / "specs" / spec, Overrides(), judge=False)
    graph, forward = checked.graph, checked.analytic
    nodes = [n.index for n in graph.nodes if forward.values[n.index].dtype.kind == "f" and np.size(forward.values[n.index])
             and graph.reaches_output[n.index]]
    rng = np.random.default_rng(3)
    steps = np.array([1e-3, -1e-3, 5e-4])
    sources = {i: (rng.standard_normal((2,) + np.shape(forward.values[i])), np.array([0, 0, 1]), steps) for i in nodes}
    together = Evaluator(graph, forward.values, forward.projection)
    swept = together.changes_along_sources(sources)
    alone = Evaluator(graph, forward.values, forward.projection)
    scale = max(abs(alone.f0), 1.0)
    for i in nodes:
        expected = alone.changes_along_each(i, *sources[i])
        np.testing.assert_allclose(swept[i], expected, rtol=1e-9, atol=1e-13 * scale, err_msg=graph.nodes[i].name)
    assert together.evaluations == alone.evaluations == 3 * len(nodes)


# ---------------------------------------------------------------------------------------------- joint probes
JOINT = "at once, its derivative the sum of theirs"


def named_index(graph, name):
    return next(n.index for n in graph.nodes if n.name == name)


def test_moving_several_nodes_at_once_adds_each_move_to_the_value_its_moved_arguments_give(tmp_path):
    path = write(tmp_path, """
        inputs: {x: [0.3, -1.2, 0.8, 2.0], w: [1.5, 0.4, -0.7, 0.2]}
        nodes: {u: "x * w", y: "sum(tanh(u))"}
    """)
    checked = run(path, Overrides(), judge=False)
    graph, values = checked.graph, checked.analytic.values
    x, w, u = (np.asarray(values[named_index(graph, n)]) for n in "xwu")
    dx, du = np.array([1.0, -2.0, 0.5, 1.5]), np.array([-0.3, 0.7, 2.0, -1.0])
    steps = np.array([1e-2, -1e-2, 3e-3])
    evaluator = Evaluator(graph, values, checked.analytic.projection)
    found = evaluator.changes_along_together({named_index(graph, "x"): dx, named_index(graph, "u"): du}, steps)
    # u = x * w recomputed from the moved x, then moved itself: tanh((x + s dx) w + s du), summed, minus sum tanh(x w)
    expected = [np.sum(np.tanh((x + s * dx) * w + s * du)) - np.sum(np.tanh(u)) for s in steps]
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-15)
    assert evaluator.evaluations == steps.size


def test_moving_a_matmuls_right_operand_and_its_product_at_once(tmp_path):
    path = write(tmp_path, """
        inputs: {X: {shape: [4, 3], init: normal}, W: {shape: [3, 5], init: normal}}
        nodes: {P: "X @ W", y: "sum(tanh(P))"}
    """)
    checked = run(path, Overrides(), judge=False)
    graph, values = checked.graph, checked.analytic.values
    X, W = (np.asarray(values[named_index(graph, n)]) for n in "XW")
    rng = np.random.default_rng(0)
    dW, dP = rng.standard_normal(W.shape), rng.standard_normal((4, 5))
    steps = np.array([1e-2, -1e-2, 5e-3, -2.5e-3])
    evaluator = Evaluator(graph, values, checked.analytic.projection)
    found = evaluator.changes_along_together({named_index(graph, "W"): dW, named_index(graph, "P"): dP}, steps)
    expected = [np.sum(np.tanh(X @ (W + s * dW) + s * dP)) - np.sum(np.tanh(X @ W)) for s in steps]
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-15)


def test_a_joint_probe_that_agrees_is_the_first_probe_of_every_node_in_it(tmp_path):
    path = write(tmp_path, """
        inputs: {x: {shape: [500], init: normal}, w: {shape: [500], init: normal}}
        nodes: {y: "sum(tanh(x * w))"}
    """)
    result = check_spec(path, options=FAST)
    probed = [n for n in result.nodes if n.checked == "probes"]
    assert len(probed) == 5 and result.status == "pass"  # x, w, x * w, its tanh and y
    assert all(JOINT in n.message for n in probed)
    # the six evaluations of the joint probe, and no node needed another
    assert result.evaluations == 6


def test_an_error_behind_a_joint_probe_is_found_by_the_probes_of_each_node(tmp_path):
    # element 1234 of x's gradient is off by 0.1 %: the joint probe of x, u, tanh(u)·u disagrees; each node's
    # own probe then tells that x is wrong (and where) and u is right
    path = write(tmp_path, """
        inputs: {x: {shape: [2000], init: normal}}
        ops: {f: "probe_ops:SinOneElement"}
        nodes: {u: "f(x)", y: "sum(tanh(u) * u)"}
    """)
    result = check_spec(path, options=CheckOptions(mode="fast"))
    assert node(result, "x").status == "fail" and node(result, "x").worst_index == (1234,)
    u = node(result, "u")
    assert u.status == "pass" and u.checked == "probes" and JOINT not in u.message


def test_nodes_with_a_branch_decision_downstream_are_probed_on_their_own(tmp_path):
    # a joint move's crossings of relu's kink are not watched: a takes its own probes, b and what follows relu
    # take the joint one
    path = write(tmp_path, """
        inputs: {a: {shape: [300], init: normal}, b: {shape: [300], init: normal}}
        nodes: {r: "relu(a)", t: "tanh(b)", y: "sum(r * t)"}
    """)
    result = check_spec(path, options=FAST)
    assert result.status == "pass"
    assert JOINT not in node(result, "a").message
    assert JOINT in node(result, "b").message and JOINT in node(result, "r").message


def test_a_joint_probe_that_cannot_resolve_every_nodes_tolerance_leaves_each_to_its_own(tmp_path):
    # t's tolerance is far below what any float64 probe resolves: the joint probe does not count for x
    path = write(tmp_path, """
        inputs: {x: {shape: [300], init: normal}}
        nodes: {t: {expr: "sin(x)", atol: 1.0e-15, rtol: 0}, y: "sum(t * x)"}
    """)
    result = check_spec(path, options=FAST)
    x = node(result, "x")
    assert x.checked == "probes" and x.status == "pass" and JOINT not in x.message


@pytest.mark.parametrize("spec", ["nn/transformer_block.yaml", "nn/small_cnn.yaml"])
def test_a_joint_probes_round_off_is_relative_to_the_largest_magnitude_any_of_its_nodes_meets(spec):
    checked = run(REPO / "specs" / spec, Overrides(), judge=False)
    graph, forward = checked.graph, checked.analytic
    evaluator = Evaluator(graph, forward.values, forward.projection)
    nodes = [n.index for n in graph.nodes if forward.values[n.index].dtype.kind == "f" and graph.reaches_output[n.index]]
    rng = np.random.default_rng(1)
    for _ in range(5):
        moved = {int(i) for i in rng.choice(nodes, size=3, replace=False)}
        own = max(NodeDifferentiator(evaluator, i, "central", None).operand_magnitude for i in moved)
        assert joint_operand_magnitude(evaluator, moved) == own
