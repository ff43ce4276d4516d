"""Per-check work that depends only on a loaded spec's text is done once per spec, and never goes stale."""
from __future__ import annotations

import dataclasses
import textwrap

import numpy as np

from gradcheck.engine import forward
from gradcheck.graph import build_graph
from gradcheck.pipeline import load

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


def test_a_spec_built_twice_gives_the_same_graph(tmp_path):
    spec = loaded(tmp_path)
    assert shape_of(build_graph(spec)) == shape_of(build_graph(spec))


def test_an_expression_edited_in_place_is_parsed_again(tmp_path):
    spec = loaded(tmp_path)
    build_graph(spec)
    spec.nodes["y"] = dataclasses.replace(spec.nodes["y"], expr="cos(x) * 2")
    graph = build_graph(spec)
    assert [n.op_name for n in graph.nodes if n.parent == "y" or n.name == "y"][:1] == ["cos"]
    with np.errstate(all="ignore"):
        values = forward(graph, "float64").values
    np.testing.assert_allclose(values[graph.by_name["loss"]], 2 * np.cos([0.5, -1.0, 2.0]).sum(), rtol=1e-15)


def test_input_values_are_read_at_every_build(tmp_path):
    spec = loaded(tmp_path)
    build_graph(spec)
    spec.inputs["x"].value = np.array([0.1, 0.2, 0.3])
    graph = build_graph(spec)
    with np.errstate(all="ignore"):
        values = forward(graph, "float64").values
    np.testing.assert_allclose(values[graph.by_name["loss"]], 2 * np.sin([0.1, 0.2, 0.3]).sum(), rtol=1e-15)
