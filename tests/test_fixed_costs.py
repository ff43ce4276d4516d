"""Fixed costs cut without changing what a check finds: work that depends only on a loaded spec's text done once
per spec (and never stale), sizing done once, a reshape that keeps a change as small as it was."""
from __future__ import annotations

import dataclasses
import math
import textwrap

import numpy as np
import pytest

from gradcheck.engine import ForwardError, forward
from gradcheck.errors import SpecError
from gradcheck.graph import build_graph
from gradcheck.judge import CheckOptions
from gradcheck.ops import BUILTIN_OPS
from gradcheck.ops.changes import Change
from gradcheck.pipeline import load, run_loaded
from gradcheck.spec import MAX_TOTAL_ELEMENTS

SPEC = """
    inputs:
      x: {value: [0.5, -1.0, 2.0]}
    nodes:
      y: sin(x) * 2
      loss: sum(y)
"""


def loaded(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return load(path)


def shape_of(graph):
    return [(n.name, n.op_name, n.args, n.text) for n in graph.nodes]


def loss_of(graph) -> float:
    """The graph's float64 forward value of its node 'loss'."""
    with np.errstate(all="ignore"):
        return forward(graph, "float64").values[graph.by_name["loss"]]


def test_a_spec_built_twice_gives_the_same_graph(tmp_path):
    """The same nodes, parameters and values, in new objects: what a check keeps on a node (the custom-op
    declarations it verified) belongs to that check's graph only."""
    spec = loaded(tmp_path)
    first, second = build_graph(spec), build_graph(spec)
    assert shape_of(first) == shape_of(second)
    assert [n.params for n in first.nodes] == [n.params for n in second.nodes]
    assert [n.op_name for n in second.nodes if n.kind == "op"] == ["sin", "mul", "sum"]
    assert not {id(n) for n in first.nodes} & {id(n) for n in second.nodes}
    first.nodes[-1].declarations["marked"] = 1.0
    assert second.nodes[-1].declarations == {}
    np.testing.assert_allclose(loss_of(second), 2 * np.sin([0.5, -1.0, 2.0]).sum(), rtol=1e-15)


def test_an_expression_edited_in_place_is_parsed_again(tmp_path):
    spec = loaded(tmp_path)
    build_graph(spec)
    spec.nodes["y"] = dataclasses.replace(spec.nodes["y"], expr="cos(x) * 2")
    graph = build_graph(spec)
    assert [n.op_name for n in graph.nodes if n.parent == "y" or n.name == "y"][:1] == ["cos"]
    np.testing.assert_allclose(loss_of(graph), 2 * np.cos([0.5, -1.0, 2.0]).sum(), rtol=1e-15)


def test_input_values_are_read_at_every_build(tmp_path):
    spec = loaded(tmp_path)
    build_graph(spec)
    spec.inputs["x"].value = np.array([0.1, 0.2, 0.3])
    graph = build_graph(spec)
    np.testing.assert_allclose(loss_of(graph), 2 * np.sin([0.1, 0.2, 0.3]).sum(), rtol=1e-15)


def lying_op_spec(tmp_path, declared: str) -> object:
    """A custom op that returns a (rows, 1) column whatever it declares, broadcast against a (1, rows) row:
    the product is over the element limit."""
    rows = math.isqrt(MAX_TOTAL_ELEMENTS) + 1
    (tmp_path / "column.py").write_text(textwrap.dedent(f'''
        import numpy as np

        class Column:
            {declared}
            def forward(self, x):
                return np.ones(({rows}, 1)) * x
            def vjp(self, g, out, x):
                return (np.sum(g),)
    '''))
    (tmp_path / "spec.yaml").write_text(
        f'inputs:\n  x: 1.0\n  r: {{shape: [1, {rows}], init: ones}}\nops: {{column: "column:Column"}}\n'
        "nodes:\n  y: sum(column(x) * r)\n")
    return load(tmp_path / "spec.yaml")


@pytest.mark.parametrize("declared", [
    "pass",  # no result_shape: the sizing before the pass cannot know the product's shape
    "result_shape = staticmethod(lambda arg_shapes, params: (1, 1))",  # a declared shape the forward does not keep
])
def test_an_op_sized_on_shapes_the_pass_does_not_give_is_sized_again_before_it_is_built(tmp_path, declared):
    spec = lying_op_spec(tmp_path, declared)
    with pytest.raises(ForwardError, match="would have shape"):
        run_loaded(spec, CheckOptions(mode="fast"))


def test_a_pass_that_gives_a_node_more_elements_than_it_was_sized_by_is_sized_again_against_the_budget(tmp_path):
    (tmp_path / "long.py").write_text(textwrap.dedent('''
        import numpy as np

        class Long:
            result_shape = staticmethod(lambda arg_shapes, params: (1,))
            def forward(self, x):
                return np.ones(1_000_000) * x
            def vjp(self, g, out, x):
                return (np.sum(g),)
    '''))
    (tmp_path / "spec.yaml").write_text('inputs:\n  x: 1.0\nops: {long: "long:Long"}\nnodes:\n  y: sum(long(x))\n')
    spec = load(tmp_path / "spec.yaml")
    with pytest.raises(SpecError, match="more than the memory budget"):
        run_loaded(spec, CheckOptions(mode="fast", memory_budget=16 * 2**20))


def recomputed_reshape(x: np.ndarray, change: Change, shape) -> np.ndarray:
    """Each copy's perturbed array reshaped, minus the unperturbed one reshaped: the definition of the change."""
    return np.stack([np.reshape(x + full, shape) - np.reshape(x, shape) for full in change.full()])


RESHAPE = BUILTIN_OPS["reshape"]


def test_a_one_element_change_stays_one_element_through_a_reshape():
    x = np.arange(24.0).reshape(2, 3, 4)
    flat = np.array([0, 5, 23, 17])
    change = Change.of_elements(x.shape, flat, np.array([0.5, -1.0, 2.0, 3.0]))
    result = RESHAPE.propagate([change], x.reshape(4, 6), x, shape=(4, 6))
    assert result.delta.size == 4  # one element per copy, not the whole array
    np.testing.assert_array_equal(np.ravel_multi_index(tuple(result.pins[a] for a in (0, 1)), (4, 6)), flat)
    np.testing.assert_array_equal(result.full(), recomputed_reshape(x, change, (4, 6)))


def test_a_change_of_rows_stays_rows_through_a_reshape_that_keeps_the_leading_axis():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 2, 2))
    rows = np.array([2, 0])
    change = Change.make(x.shape, {0: rows}, rng.standard_normal((2, 1, 2, 2, 2)))
    result = RESHAPE.propagate([change], x.reshape(3, 8), x, shape=(3, 8))
    assert set(result.pins) == {0} and result.pins[0].tolist() == [2, 0] and result.delta.shape == (2, 1, 8)
    np.testing.assert_allclose(result.full(), recomputed_reshape(x, change, (3, 8)), rtol=0, atol=1e-14)


def test_a_change_pinned_on_an_axis_the_reshape_merges_is_written_out_whole():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4))
    change = Change.make(x.shape, {1: np.array([1, 3])}, rng.standard_normal((2, 3, 1)))
    result = RESHAPE.propagate([change], x.reshape(12), x, shape=(12,))
    np.testing.assert_allclose(result.full(), recomputed_reshape(x, change, (12,)), rtol=0, atol=1e-14)
