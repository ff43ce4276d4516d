"""The reverse-mode engine: adjoints accumulate over fan-out and diamonds; faults are named."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from gradcheck import check_spec
from gradcheck.engine import backward, forward
from gradcheck.graph import build_graph
from gradcheck.spec import load_spec


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def gradients(path):
    graph = build_graph(load_spec(path))
    fwd = forward(graph, "float64")
    bwd = backward(graph, fwd, "float64")
    return {node.name: bwd.adjoints[node.index] for node in graph.nodes}, fwd


def test_fan_out_accumulates(tmp_path):
    # f = x*x + 3x  ->  df/dx = 2x + 3 = 7 at x = 2; x is used three times
    grads, fwd = gradients(write(tmp_path, """
        inputs: {x: 2.0}
        nodes: {f: x * x + 3 * x}
    """))
    assert fwd.objective == pytest.approx(10.0)
    assert grads["x"] == pytest.approx(7.0)


def test_diamond_accumulates(tmp_path):
    # a = exp(x); b = sin(a); c = cos(a); f = b * c  ->  df/dx = cos(2a) * a
    grads, _ = gradients(write(tmp_path, """
        inputs: {x: 0.3}
        nodes:
          a: exp(x)
          b: sin(a)
          c: cos(a)
          f: b * c
    """))
    a = np.exp(0.3)
    assert grads["a"] == pytest.approx(np.cos(2 * a), rel=1e-12)
    assert grads["x"] == pytest.approx(np.cos(2 * a) * a, rel=1e-12)


def test_broadcast_gradient_sums_back(tmp_path):
    # f = sum(W * b) with b broadcast over rows: df/db_j = sum_i W_ij
    grads, _ = gradients(write(tmp_path, """
        inputs:
          W: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
          b: [0.5, -1.0, 2.0]
        nodes: {f: sum(W * b)}
    """))
    assert grads["b"] == pytest.approx([5.0, 7.0, 9.0])
    assert grads["W"] == pytest.approx(np.array([[0.5, -1.0, 2.0]] * 2))


def test_non_scalar_output_is_projected_and_said(tmp_path):
    result = check_spec(write(tmp_path, """
        inputs: {x: [1.0, 2.0, 3.0]}
        nodes: {y: x * x}
    """))
    assert result.status == "pass"
    assert any("sum(v * y)" in note for note in result.notes)
    grads, fwd = gradients(tmp_path / "spec.yaml")
    assert grads["x"] == pytest.approx(2 * np.array([1.0, 2.0, 3.0]) * fwd.projection)


def test_same_seed_same_report(tmp_path):
    path = write(tmp_path, """
        seed: 7
        inputs: {W: {shape: [3, 4], init: normal, std: 0.5}}
        nodes: {y: tanh(W)}
    """)
    first, second = check_spec(path), check_spec(path)
    assert np.array_equal(first.nodes[0].analytic, second.nodes[0].analytic)
    third = load_spec(path)
    assert third.inputs["W"].value.std() == pytest.approx(0.5, rel=0.6)


LAYERS = '''
import numpy as np

class Swish:
    """x * sigmoid(x)"""
    def forward(self, x):
        return x / (1 + np.exp(-x))
    def vjp(self, g, out, x):
        s = 1 / (1 + np.exp(-x))
        return (g * (s + x * s * (1 - s)),)

class WrongSwish(Swish):
    def vjp(self, g, out, x):
        s = 1 / (1 + np.exp(-x))
        return (g * s,)          # forgets the x * s * (1 - s) term

class WrongShape(Swish):
    def vjp(self, g, out, x):
        return (np.sum(g),)

class Raises(Swish):
    def vjp(self, g, out, x):
        raise RuntimeError("boom")

class WrongMul:
    def forward(self, a, b):
        return a * b
    def vjp(self, g, out, a, b):
        return g * b, g * b      # second gradient should be g * a
'''


@pytest.fixture
def custom_dir(tmp_path):
    (tmp_path / "layers.py").write_text(LAYERS)
    return tmp_path


def custom_spec(folder, op, expr="sum(act(h))"):
    return write(folder, f"""
        inputs:
          x: [[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]]
          W: [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.6]]
        ops: {{act: "layers:{op}"}}
        nodes:
          h: x @ W
          out: {expr}
    """, name=f"{op}.yaml")


def test_correct_custom_op_passes(custom_dir):
    result = check_spec(custom_spec(custom_dir, "Swish"))
    assert result.status == "pass", [(n.name, n.status) for n in result.nodes]
    assert result.suspects == []


@pytest.mark.parametrize("op,message", [("WrongSwish", "random direction"), ("WrongShape", "shape ()"),
                                        ("Raises", "RuntimeError: boom")])
def test_broken_custom_op_is_the_suspect(custom_dir, op, message):
    result = check_spec(custom_spec(custom_dir, op))
    assert result.status == "fail"
    status = {n.name: n.status for n in result.nodes}
    assert status["out/act#1"] == "pass"       # its own output gradient is right
    assert status["h"] == "fail"               # what it passes on is not
    assert [(s.node, s.op, s.argument) for s in result.suspects] == [("out/act#1", "act", 0)]
    assert message in result.suspects[0].message


def test_suspect_argument_number_and_fan_out(custom_dir):
    # h feeds two consumers; only the custom mul's second argument is wrong
    path = write(custom_dir, """
        inputs:
          a: [0.5, -1.0, 2.0]
          b: [1.5, 0.3, -0.2]
        ops: {badmul: "layers:WrongMul"}
        nodes:
          h: tanh(b)
          out: sum(badmul(a, h)) + sum(h * a)
    """, name="fan.yaml")
    result = check_spec(path)
    assert result.status == "fail"
    assert [(s.op, s.argument, s.argument_node) for s in result.suspects] == [("badmul", 1, "h")]


def test_custom_op_exception_in_forward_is_a_located_error(custom_dir):
    (custom_dir / "bad.py").write_text("class Bad:\n    def forward(self, x):\n        raise ValueError('nope')\n"
                                       "    def vjp(self, g, out, x):\n        return (g,)\n")
    path = write(custom_dir, """
        inputs: {x: 1.0}
        ops: {bad: "bad:Bad"}
        nodes:
          y: bad(x)
    """, name="badfwd.yaml")
    result = check_spec(path)
    assert result.status == "error"
    assert result.error.line == 5
    assert "custom op bad" in result.error.message and "ValueError: nope" in result.error.message
