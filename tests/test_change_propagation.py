"""Perturbations carry their change: every registered op's change rule (or the recompute default)
against full re-evaluation of the op at the perturbed inputs, and the evaluator's changes against
re-evaluating the whole graph, on every shipped spec."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcheck.engine import forward
from gradcheck.graph import Node, build_graph
from gradcheck.numeric import Evaluator
from gradcheck.ops import BUILTIN_OPS
from gradcheck.ops.changes import Change, gather
from gradcheck.spec import load_spec

from .test_ops_registry import cases_for, op_case_ids

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))
COPIES = 5


def one_element_changes(x, rng, scale=1e-3):
    """COPIES one-element perturbations of x: a Change, and the perturbed copies written out in full."""
    x = np.asarray(x, dtype=np.float64)
    elements = rng.integers(0, x.size, COPIES) if x.size else np.zeros(0, dtype=int)
    offsets = scale * rng.standard_normal(COPIES)
    copies = np.repeat(x[None], COPIES, axis=0).reshape(COPIES, -1)
    copies[np.arange(COPIES), elements] += offsets
    return Change.of_elements(x.shape, elements, offsets), copies.reshape((COPIES,) + x.shape)


def dense_changes(x, rng, scale=1e-3):
    x = np.asarray(x, dtype=np.float64)
    delta = scale * rng.standard_normal((COPIES,) + x.shape)
    return Change.dense(delta), x[None] + delta


def expected_changes(info, inputs, params, perturbed: dict[int, np.ndarray]) -> np.ndarray:
    """forward at each perturbed copy, minus forward at the inputs: the definition of the change."""
    out = np.asarray(info.impl.forward(*inputs, **params), dtype=np.float64)
    results = []
    for k in range(COPIES):
        args = [perturbed[i][k] if i in perturbed else x for i, x in enumerate(inputs)]
        results.append(np.asarray(info.impl.forward(*args, **params), dtype=np.float64) - out)
    return np.stack(results)


@pytest.mark.parametrize("kind", ["one element", "dense"])
@pytest.mark.parametrize("name,case", op_case_ids(), ids=lambda v: str(v))
def test_change_propagation_equals_full_re_evaluation(name, case, kind):
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    node = Node(index=0, name=name, kind="op", op=info, params=params)
    out = np.asarray(info.impl.forward(*inputs, **params))
    floats = [i for i, x in enumerate(inputs) if np.asarray(x).dtype.kind == "f" and i not in info.integer_args]
    if not floats:
        pytest.skip(f"{name}: no float argument")
    rng = np.random.default_rng(11 + case)
    make = one_element_changes if kind == "one element" else dense_changes
    for chosen in dict.fromkeys([(i,) for i in floats] + [tuple(floats)]):
        changes, perturbed = [None] * len(inputs), {}
        for i in chosen:
            changes[i], perturbed[i] = make(inputs[i], rng)
        changed = Evaluator.node_change(node, changes, list(inputs), out)
        expected = expected_changes(info, inputs, params, perturbed)
        got = np.zeros_like(expected) if changed is None else changed.full()
        assert got.shape == expected.shape, f"{name} {chosen}: change of shape {got.shape}, expected {expected.shape}"
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=f"{name}, arguments {chosen} changed")


RULES = {name for name, info in BUILTIN_OPS.items() if info.propagate is not None}


def test_the_ops_the_issue_names_have_a_change_rule():
    linear = {"matmul", "sum", "mean", "reshape", "transpose", "getitem", "concat", "add", "sub", "identity"}
    elementwise = {"sin", "tanh", "exp", "mul", "relu", "sigmoid", "where", "clip", "gelu"}
    slices = {"softmax", "log_softmax", "logsumexp", "max", "layer_norm", "max_pool2d", "avg_pool2d"}
    linear |= {"conv2d"}
    losses = {"cross_entropy", "mse", "hinge", "logistic_loss", "huber"}
    assert linear | elementwise | slices | losses <= RULES


def test_a_one_element_matmul_change_stays_one_row():
    """W moved at (i, j): X @ W changes in column j only, by s X[:, i] (the rank-1 update)."""
    rng = np.random.default_rng(3)
    X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    change = Change.of_elements(W.shape, np.array([1 * 5 + 2, 0 * 5 + 4]), np.array([0.5, -2.0]))
    result = BUILTIN_OPS["matmul"].propagate([None, change], X @ W, X, W)
    assert set(result.pins) == {1} and result.pins[1].tolist() == [2, 4]
    np.testing.assert_array_equal(result.delta[:, :, 0], np.stack([0.5 * X[:, 1], -2.0 * X[:, 0]]))


def test_elementwise_ops_recompute_only_the_changed_entries():
    calls = []

    class Counting:
        def forward(self, x):
            calls.append(np.size(x))
            return np.sin(x)

    x = np.linspace(0, 1, 1000).reshape(10, 100)
    change = Change.of_elements(x.shape, np.array([5, 999]), np.array([1e-3, 2e-3]))
    from gradcheck.ops.changes import elementwise_change

    result = elementwise_change(Counting().forward, [change], np.sin(x), (x,), {})
    assert calls == [2]  # one entry per copy
    np.testing.assert_allclose(result.full().reshape(2, -1)[[0, 1], [5, 999]],
                               [np.sin(x.flat[5] + 1e-3) - np.sin(x.flat[5]), np.sin(1 + 2e-3) - np.sin(1)])


def test_gather_reads_each_copys_pinned_indices():
    base = np.arange(24.0).reshape(2, 3, 4)
    pins = {0: np.array([1, 0]), 2: np.array([3, 1])}
    np.testing.assert_array_equal(gather(base, pins, 2)[:, 0, :, 0], [base[1, :, 3], base[0, :, 1]])


def test_a_custom_op_without_a_rule_is_recomputed():
    from gradcheck.ops.registry import custom_op_info

    class Cube:
        def forward(self, x):
            return x ** 3

        def vjp(self, g, out, x):
            return (3 * g * x ** 2,)

    info = custom_op_info("cube", Cube(), "tests:Cube")
    assert info.propagate is None
    x = np.array([1.0, 2.0, 3.0])
    node = Node(index=0, name="c", kind="op", op=info)
    change = Change.of_elements(x.shape, np.array([2]), np.array([0.1]))
    result = Evaluator.node_change(node, [change], [x], x ** 3)
    np.testing.assert_allclose(result.full()[0], [0, 0, 3.1 ** 3 - 27])


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_evaluator_changes_equal_re_evaluating_the_graph(path):
    """On every shipped spec, for a sample of elements of every float node: objectives_at (change propagation)
    equals objective_with (the whole downstream recomputed from a full copy)."""
    spec = load_spec(path)
    if spec.ops:
        pytest.skip("custom ops run contained")
    graph = build_graph(spec)
    with np.errstate(all="ignore"):
        reference = forward(graph, "float64")
    evaluator = Evaluator(graph, reference.values, reference.projection)
    rng = np.random.default_rng(5)
    for node in graph.nodes:
        value = reference.values[node.index]
        if value.dtype.kind != "f" or not value.size or not graph.reaches_output[node.index]:
            continue
        elements = rng.integers(0, value.size, 3)
        offsets = 1e-4 * np.maximum(np.abs(value.reshape(-1)[elements]), 1.0) * np.array([1, -1, 1])
        with np.errstate(all="ignore"):
            got = evaluator.objectives_at(node.index, elements, offsets)
            expected = []
            for element, offset in zip(elements, offsets, strict=True):
                shifted = value.astype(np.float64).copy()
                shifted.reshape(-1)[element] += offset
                expected.append(evaluator.objective_with(node.index, shifted))
        scale = max(abs(evaluator.f0), evaluator.path_magnitude(node.index), 1.0)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11 * scale, err_msg=f"{path.stem}: node {node.name}")
        direction = rng.standard_normal(value.shape)
        along = evaluator.objectives_along(node.index, direction, np.array([1e-4, -1e-4]))
        expected_along = [evaluator.objective_with(node.index, value + s * direction) for s in (1e-4, -1e-4)]
        np.testing.assert_allclose(along, expected_along, rtol=0, atol=1e-11 * scale, err_msg=f"{path.stem}: {node.name}")
