"""Perturbations carry their change: every registered op's change rule (or the recompute default)
against full re-evaluation of the op at the perturbed inputs, and the evaluator's changes against
re-evaluating the whole graph, on every shipped spec."""
from __future__ import annotations

import sys
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
    slices = {"softmax", "log_softmax", "logsumexp", "max", "layer_norm", "batch_norm", "max_pool2d", "avg_pool2d"}
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


def test_a_change_is_built_with_its_delta_by_position_or_by_keyword():
    # a custom propagate rule returns Change(shape, pins, delta): both spellings must hold the same delta
    delta = np.arange(6.0).reshape(2, 1, 3)
    pins = {0: np.array([1, 0])}
    for change in (Change((2, 3), pins, delta), Change((2, 3), pins, delta=delta),
                   Change(shape=(2, 3), pins=pins, delta=delta)):
        assert change.delta is delta and change.count == 2 and change.box == (1, 3)
        assert np.array_equal(change.full(), [[[0, 0, 0], [0, 1, 2]], [[3, 4, 5], [0, 0, 0]]])


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


@pytest.mark.parametrize("labels", ["classes", "soft targets"])
@pytest.mark.parametrize("pinned", [{0}, {1}, {0, 1}, set()], ids=["rows", "classes", "entries", "dense"])
def test_cross_entropy_change_on_any_box_equals_recomputing_the_loss(labels, pinned):
    """The change rule sums over the change's box only (a change pinned to one class is one term per row);
    each copy against the loss recomputed at logits + its change written out in full."""
    rng = np.random.default_rng(8)
    logits = 3 * rng.standard_normal((6, 5))
    if labels == "classes":
        targets = rng.integers(0, 5, 6)
    else:
        weights = rng.uniform(0.1, 1.0, (6, 5))
        targets = weights / weights.sum(axis=1, keepdims=True)
    count = 4
    pins = {a: rng.integers(0, logits.shape[a], count) for a in pinned}
    box = tuple(1 if a in pins else n for a, n in enumerate(logits.shape))
    change = Change.make(logits.shape, pins, 1e-3 * rng.standard_normal((count,) + box))
    info = BUILTIN_OPS["cross_entropy"]
    out = info.impl.forward(logits, targets)
    got = info.propagate([change, None], out, logits, targets)
    expected = [info.impl.forward(logits + change.full()[k], targets) - out for k in range(count)]
    np.testing.assert_allclose(got.delta, expected, rtol=1e-9, atol=1e-15)


def brute_force_flips(graph, values, index, offset):
    """The decisions of every branching op downstream, recomputed from a whole perturbed copy of the graph:
    how many of an op's outputs have a decision that moved (the most over its decision arrays), summed over the ops."""
    from gradcheck.engine import evaluate_node
    from gradcheck.judge.kinks import decisions_of

    moved = [np.asarray(v, dtype=np.float64).copy() if v.dtype.kind == "f" else v for v in values]
    moved[index] = moved[index] + offset
    for j in graph.downstream(index):
        node = graph.nodes[j]
        moved[j] = evaluate_node(node, [moved[a] for a in node.args], np.float64)
    total = 0
    for j in graph.downstream(index):
        node = graph.nodes[j]
        if node.op_info.branches is None:
            continue
        out_ndim = np.ndim(values[j])
        most = 0
        for before, after in zip(decisions_of(node, [values[a] for a in node.args]),
                                 decisions_of(node, [moved[a] for a in node.args]), strict=True):
            changed = before != after
            changed = changed.reshape(changed.shape[:out_ndim] + (-1,)).any(axis=-1)
            most = max(most, int(np.count_nonzero(changed)))
        total += most
    return total


def test_branch_watch_counts_what_recomputing_the_whole_graph_counts(tmp_path):
    """Perturbations carried as changes (decisions re-read on the changed box only) flag the same elements,
    with the same counts, as decisions recomputed on whole perturbed copies; the spec has relu boundaries,
    max-pool ties and a compound kink (one input feeding two tied windows)."""
    from gradcheck.judge.kinks import BranchWatch

    spec_path = tmp_path / "net.yaml"
    spec_path.write_text(
        "inputs:\n"
        "  x: {value: [[[[0.0, 1.0, 1.0, 0.5], [0.2, -0.3, 0.4, 1.0], [2.0, 2.0, -1.0, 0.0], [0.3, 0.1, 0.7, 0.7]]]]}\n"
        "  k: {value: [[[[1.0, 0.0], [0.0, 0.0]]], [[[0.5, -0.5], [0.25, 1.0]]]]}\n"
        "  kb: {value: [0.0, 0.1]}\n"
        "nodes:\n"
        "  c: conv2d(x, k, kb, stride=1, padding=1)\n"
        "  r: relu(c)\n"
        "  p: max_pool2d(r, kernel=2)\n"
        "  y: sum(p * p) + sum(maximum(x, 0.5))\n")
    graph = build_graph(load_spec(spec_path))
    with np.errstate(all="ignore"):
        values = forward(graph, "float64").values
    watch = BranchWatch(graph, values)
    seen = 0
    for node in graph.nodes:
        value = values[node.index]
        if value.dtype.kind != "f" or not watch.watches(node.index):
            continue
        steps = np.full(value.size, 1e-3)
        got = watch.element_flips(node.index, steps)
        expected = [max(brute_force_flips(graph, values, node.index, s * np.eye(value.size)[e].reshape(value.shape))
                        for s in (1e-3, -1e-3)) for e in range(value.size)]
        np.testing.assert_array_equal(got, expected, err_msg=node.name)
        seen += int(np.count_nonzero(got))
        direction = np.random.default_rng(node.index).standard_normal(value.shape)
        for s in (1e-3, 1e-9):
            moves = any(brute_force_flips(graph, values, node.index, t * direction) for t in (s, -s))
            assert watch.direction_flips(node.index, direction, (s, -s)) == moves, node.name
    assert seen > 0


def test_what_a_rule_derives_from_unperturbed_values_is_computed_once_per_array():
    """derived() caches on the array objects themselves: the same arrays again give the kept result without a
    call, another array (even with equal values: it may be changed in between) is computed afresh, and an entry
    goes with its array."""
    import gc

    from gradcheck.ops.changes import _DERIVED, derived

    calls = []

    def total(a, b):
        calls.append(1)
        return float(np.sum(a) + np.sum(b))

    a, b = np.arange(3.0), np.ones(2)
    assert derived(total, a, b) == derived(total, a, b) == 5.0 and len(calls) == 1
    other = a.copy()
    other[0] = 10.0
    assert derived(total, other, b) == 15.0 and len(calls) == 2
    key = (total, id(other), id(b))   # other entries (of arrays other tests left to the collector) may go too
    assert key in _DERIVED
    del other
    gc.collect()
    assert key not in _DERIVED and (total, id(a), id(b)) in _DERIVED


def test_cross_entropy_rule_reads_the_current_arrays_not_a_stale_cache():
    """Two loss evaluations on logits of one shape but different values (so any cache keyed on shapes, or on a
    dead array's id, would mix them up): each change against the loss recomputed."""
    info = BUILTIN_OPS["cross_entropy"]
    rng = np.random.default_rng(4)
    labels = np.array([0, 2, 1])
    change = Change.of_elements((3, 4), np.array([1, 6, 11]), np.array([1e-3, -2e-3, 5e-4]))
    for _ in range(3):
        logits = rng.standard_normal((3, 4))
        out = info.impl.forward(logits, labels)
        got = info.propagate([change, None], out, logits, labels)
        expected = [info.impl.forward(logits + change.full()[k], labels) - out for k in range(3)]
        np.testing.assert_allclose(got.delta, expected, rtol=1e-9, atol=1e-15)


FAULTS_OF_A_SECOND_PASS = """
import resource, sys
import numpy as np
from gradcheck.engine import forward
from gradcheck.graph import build_graph
from gradcheck.numeric import Evaluator
from gradcheck.spec import load_spec
graph = build_graph(load_spec(sys.argv[1]))
reference = forward(graph, "float64")
evaluator = Evaluator(graph, reference.values, reference.projection)
w1 = next(node.index for node in graph.nodes if node.name == "W1")
elements, offsets = np.tile(np.arange(1024), 3), np.repeat([-1e-5, 1e-5, 2e-5], 1024)
evaluator.changes_at(w1, elements, offsets)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
evaluator.changes_at(w1, elements, offsets)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc keeps freed memory on request")
def test_batches_of_changes_reuse_freed_memory_instead_of_faulting_it_in_again(tmp_path):
    """Each batch's changes are freed before the next is built: kept by the heap (evaluator.keep_freed_heap), a
    second pass over a node faults in next to no pages, where returning them to the kernel faulted ~3,600 (ten
    batches of ~250,000 floats, ~490 pages of 4 KB each).  In a fresh process: glibc's thresholds adapt to what
    the process freed before."""
    import os
    import subprocess

    labels = np.random.default_rng(0).integers(0, 10, 32).tolist()
    (tmp_path / "mlp.yaml").write_text(
        "inputs:\n  X: {shape: [32, 32], init: normal, requires_grad: false}\n"
        "  W1: {shape: [32, 32], init: normal, std: 0.17}\n  W2: {shape: [32, 10], init: normal, std: 0.17}\n"
        f"  labels: {{value: {labels}, dtype: int64}}\n"
        "nodes:\n  logits: tanh(X @ W1) @ W2\n  loss: cross_entropy(logits, labels)\n")
    root = Path(__file__).resolve().parent.parent
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    for name in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        environment.pop(name, None)
    faults = subprocess.run([sys.executable, "-c", FAULTS_OF_A_SECOND_PASS, str(tmp_path / "mlp.yaml")], env=environment,
                            capture_output=True, text=True, check=True).stdout
    assert int(faults) < 300


def decimal_batch_norm(x, gamma, beta, eps):
    """batch_norm of an (N, C) array in 50-digit decimal arithmetic: the reference the float64 rules are held to."""
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    n, channels = len(x), len(x[0])
    out = [[Decimal(0)] * channels for _ in range(n)]
    for c in range(channels):
        column = [x[i][c] for i in range(n)]
        mean = sum(column) / n
        variance = sum((v - mean) ** 2 for v in column) / n
        inv_std = 1 / (variance + Decimal(eps)).sqrt()
        for i in range(n):
            out[i][c] = (column[i] - mean) * inv_std * Decimal(gamma[c]) + Decimal(beta[c])
    return out


def test_batch_norm_changes_are_exact_differences_not_recomputed_ones():
    # a step of 1e-9 recomputed and subtracted loses 1e-16 / 1e-9 of the change to round-off; carried through the
    # statistics' own changes (BatchNorm.propagate), the change is right to a few ulps of itself
    from decimal import Decimal

    rng = np.random.default_rng(5)
    x, gamma, beta = 0.3 * rng.standard_normal((6, 3)), rng.uniform(0.5, 1.5, 3), rng.uniform(-0.2, 0.2, 3)
    elements, offsets = np.array([4, 13, 17]), np.array([1e-9, -3e-9, 2.5e-10])
    change = Change.of_elements(x.shape, elements, offsets)
    op = BUILTIN_OPS["batch_norm"]
    out = op.impl.forward(x, gamma, beta, eps=1e-5)
    node = Node(index=0, name="bn", kind="op", op=op, params={"eps": 1e-5})
    got = Evaluator.node_change(node, [change, None, None], [x, gamma, beta], out)
    exact_x = [[Decimal(v) for v in row] for row in x.tolist()]
    before = decimal_batch_norm(exact_x, gamma.tolist(), beta.tolist(), 1e-5)
    for k, (element, offset) in enumerate(zip(elements, offsets, strict=True)):
        row, column = divmod(int(element), x.shape[1])
        moved = [list(r) for r in exact_x]
        moved[row][column] += Decimal(float(offset))
        after = decimal_batch_norm(moved, gamma.tolist(), beta.tolist(), 1e-5)
        expected = np.array([float(after[i][column] - before[i][column]) for i in range(len(x))])
        np.testing.assert_allclose(got.full()[k, :, column], expected, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected)))
        assert not np.any(np.delete(got.full()[k], column, axis=1))  # the other channels do not change


@pytest.mark.parametrize("name,params,below", [("relu", {}, 0.0), ("leaky_relu", {"slope": 0.1}, 0.1), ("abs", {}, -1.0)])
def test_piecewise_linear_ops_change_by_their_slope_times_the_change(name, params, below):
    # x + 1e-20 rounds to x: recomputing would see no change at all; an entry that crosses 0 is recomputed
    x = np.array([1.0, -2.0, 1e-3, -1e-3])
    offsets = np.array([1e-20, -3e-20, -2e-3, 3e-3])
    info = BUILTIN_OPS[name]
    node = Node(index=0, name=name, kind="op", op=info, params=info.check_params(params))
    change = Change.of_elements(x.shape, np.arange(4), offsets)
    got = Evaluator.node_change(node, [change], [x], info.impl.forward(x, **node.params)).full()
    def f(v):
        return v if v > 0 else below * v
    expected = [1e-20, below * -3e-20, f(-1e-3) - f(1e-3), f(2e-3) - f(-1e-3)]
    np.testing.assert_allclose(np.diag(got), expected, rtol=1e-15)


def test_squared_error_changes_by_the_change_of_the_difference():
    # mean((p - t)^2) with p[i] moved by s changes by s (2 (p_i - t_i) + s) / n exactly (Fraction: rational arithmetic)
    from fractions import Fraction

    pred, target = np.array([[1.0], [2.0], [-0.25]]), np.array([[0.5], [-1.0], [3.0]])
    info = BUILTIN_OPS["mse"]
    node = Node(index=0, name="mse", kind="op", op=info, params={})
    offsets = np.array([1e-20, -2.5e-19, 1e-3])
    for moved in (0, 1):  # the prediction moved, then the target
        changes = [None, None]
        changes[moved] = Change.of_elements(pred.shape, np.arange(3), offsets)
        got = Evaluator.node_change(node, changes, [pred, target], info.impl.forward(pred, target)).full()
        for k, s in enumerate(offsets):
            d = Fraction(float(s)) * (1 if moved == 0 else -1)
            a = Fraction(float(pred[k, 0])) - Fraction(float(target[k, 0]))
            assert got[k] == pytest.approx(float(d * (2 * a + d) / 3), rel=1e-15, abs=0)


def test_a_one_element_max_pool_change_is_the_one_window_holding_it():
    pool = BUILTIN_OPS["max_pool2d"].impl
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 7))  # the last row and column lie past every 2x2 window: they change nothing
    x[0, 0, 0, 1] = x[0, 0, 0, 0]  # a tie
    out = pool.forward(x, kernel=2)
    elements = np.arange(x.size)
    offsets = rng.choice([0.5, -3.0, 1e-3], x.size)
    found = pool.propagate([Change.of_elements(x.shape, elements, offsets)], out, x, kernel=2)
    assert found.delta.size == x.size  # one output entry per copy, the window's
    recomputed = [pool.forward(x + offset * np.eye(x.size)[e].reshape(x.shape), kernel=2) - out
                  for e, offset in zip(elements, offsets, strict=True)]
    np.testing.assert_array_equal(found.full(), np.array(recomputed))


def decimal_cross_entropy(logits, classes):
    """mean over rows of log Σ_c e^{z_rc} - z_r[class], in 50-digit decimal arithmetic."""
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    total = Decimal(0)
    for row, label in zip(logits, classes, strict=True):
        total += sum(v.exp() for v in row).ln() - row[label]
    return total / len(logits)


@pytest.mark.parametrize("reach", [1e-6, 2e-2, 0.5], ids=["three terms", "seven terms", "entry by entry"])
@pytest.mark.parametrize("bias_op", ["add", "sub"])
@pytest.mark.parametrize("one_row", [False, True], ids=["column", "one element"])
def test_cross_entropy_after_a_matmul_sums_rank_one_changes_as_a_series(bias_op, reach, one_row, monkeypatch):
    """h @ W under a change u of h's column j changes by u W[j, :] (rank 1); + b or b - (·) keeps those factors,
    and cross_entropy sums e^x - 1's series over them, truncated below eps/4 of its rounding scale (or, where
    |u w| is too large for SERIES_TERMS terms, entry by entry): each copy against the loss in 50 digits, to a
    few ulps of Σ_r |u_r| (Σ_c p_rc |w_c| + |w_class|), the scale float64's rounding of the change is relative to."""
    from decimal import Decimal

    from gradcheck.ops import changes

    monkeypatch.setattr(changes, "SERIES_MIN_ENTRIES", 0)  # the series however few the entries (cheaper from 2048)
    rng = np.random.default_rng(3)
    h, weights, bias = rng.standard_normal((6, 5)), rng.uniform(-1, 1, (5, 4)), rng.standard_normal(4)
    weights[:, 0] = 1.0  # max |w_c| = 1: u's reach is max |u|
    classes = rng.integers(0, 4, 6)
    count = 5
    picks = rng.integers(0, 5, count)
    offsets = reach * rng.uniform(-1, 1, (count, 6))
    offsets[:, 0] = reach
    if one_row:  # h[rows[k], picks[k]] alone changes: the logits' change is pinned to that row
        rows = rng.integers(0, 6, count)
        offsets = np.zeros((count, 6))
        offsets[np.arange(count), rows] = reach
        change = Change.make(h.shape, {0: rows, 1: picks}, offsets[np.arange(count), rows][:, None, None])
    else:
        change = Change.make(h.shape, {1: picks}, offsets[:, :, None])
    matmul, bias_info, loss = BUILTIN_OPS["matmul"], BUILTIN_OPS[bias_op], BUILTIN_OPS["cross_entropy"]
    product = h @ weights
    product_change = matmul.propagate([change, None], product, h, weights)
    arguments = (product, bias) if bias_op == "add" else (bias, product)
    logits = bias_info.impl.forward(*arguments)
    logits_change = bias_info.propagate([product_change, None] if bias_op == "add" else [None, product_change],
                                        logits, *arguments)
    assert logits_change.outer is not None  # the factors reach the loss
    out = loss.impl.forward(logits, classes)
    got = loss.propagate([logits_change, None], out, logits, classes).delta

    sign = 1 if bias_op == "add" else -1
    exact = [[Decimal(v) for v in row] for row in logits.tolist()]
    before = decimal_cross_entropy(exact, classes.tolist())
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    for k in range(count):
        row_of_w = weights[picks[k]]
        moved = [[z + sign * Decimal(float(u)) * Decimal(float(w)) for z, w in zip(row, row_of_w.tolist(), strict=True)]
                 for row, u in zip(exact, offsets[k].tolist(), strict=True)]
        expected = float(decimal_cross_entropy(moved, classes.tolist()) - before)
        scale = np.sum(np.abs(offsets[k]) * (probabilities @ np.abs(row_of_w) + np.abs(row_of_w[classes]))) / 6
        assert abs(got[k] - expected) <= 8 * np.finfo(float).eps * scale, (k, got[k], expected)


def test_a_column_change_through_matmul_is_kept_as_factors_and_written_out_on_demand(monkeypatch):
    """A change of a's column j (rows free) reaches a @ b as the rank-1 u b[j, :]: held as factors, its delta
    written out only when read, equal to (a + du) @ b - a @ b; exactly zero copies are seen as zero from the factors."""
    from gradcheck.ops import changes

    monkeypatch.setattr(changes, "SERIES_MIN_ENTRIES", 0)  # factors however small the block
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    b[2] = 0.0  # a change of column 2 reaches nothing
    picks = np.array([0, 2, 1])
    columns = rng.standard_normal((3, 5))
    change = Change.make(a.shape, {1: picks}, columns[:, :, None])
    got = BUILTIN_OPS["matmul"].propagate([change, None], a @ b, a, b)
    assert got.outer is not None and got.written is None and got.floats() == 3 * 5 + 3  # the factors, not 3 * 5 * 4
    expected = np.stack([(a + np.outer(columns[k], np.eye(3)[picks[k]])) @ b - a @ b for k in range(3)])
    np.testing.assert_allclose(got.delta, expected, rtol=1e-13, atol=1e-14)
    assert got.copies(1, 2).is_zero() and not got.copies(0, 1).is_zero() and not got.is_zero()
    np.testing.assert_array_equal(got.copies(2, 3).delta, got.delta[2:3])


def test_the_rank_one_cross_entropy_series_carries_a_complex_step(monkeypatch):
    """complex-step's change of h's column j is u = i t v: through h @ W and + b it reaches cross_entropy as the
    factors (u, W[j, :]), whose series is the same polynomial in a complex u; Im(change) / t is then the directional
    derivative, Σ_r v_r Σ_c (p_rc - [c = class_r]) W[j, c] / rows (d CE / d z = (p - onehot) / rows), to rounding."""
    from gradcheck.ops import changes, complexmath

    def no_entry_by_entry(z):
        raise AssertionError("the rank-1 series was not taken")

    monkeypatch.setattr(changes, "SERIES_MIN_ENTRIES", 0)  # the factors and the series however few the entries
    rng = np.random.default_rng(5)
    h, weights, bias = rng.standard_normal((8, 6)), rng.uniform(-1, 1, (6, 5)), rng.standard_normal(5)
    classes = rng.integers(0, 5, 8)
    picks, t = np.array([0, 3, 5, 3]), 1e-20
    directions = rng.standard_normal((picks.size, 8))
    change = Change.make(h.shape, {1: picks}, (1j * t * directions)[:, :, None])
    matmul, add, loss = BUILTIN_OPS["matmul"], BUILTIN_OPS["add"], BUILTIN_OPS["cross_entropy"]
    product = h @ weights
    logits = product + bias
    logits_change = add.propagate([matmul.propagate([change, None], product, h, weights), None], logits, product, bias)
    assert logits_change.outer is not None and logits_change.outer.columns.dtype.kind == "c"
    out = loss.impl.forward(logits, classes)
    monkeypatch.setattr(complexmath, "expm1", no_entry_by_entry)
    got = loss.propagate([logits_change, None], out, logits, classes).delta
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    probabilities[np.arange(8), classes] -= 1.0
    for k, j in enumerate(picks):
        expected = float(directions[k] @ (probabilities @ weights[j])) / 8
        scale = float(np.abs(directions[k]) @ (np.abs(probabilities) @ np.abs(weights[j]))) / 8
        assert abs(got[k].imag / t - expected) <= 8 * np.finfo(float).eps * scale, (k, got[k].imag / t, expected)
