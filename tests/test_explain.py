"""`gradcheck explain`: the backward pass walked node by node, against the gates text's numbers.

The expected numbers are computed here from closed forms (sigmoid, its derivative, the chain
rule by hand), never copied from the program's output.
"""
from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck.cli import main
from gradcheck.engine import backward, forward
from gradcheck.explain import explain, walkthrough
from gradcheck.graph import build_graph
from gradcheck.ops import BUILTIN_OPS
from gradcheck.pipeline import run
from gradcheck.report.explain_text import render_json, render_markdown, render_text
from gradcheck.spec import load_spec

NEURON = """
    name: sigmoid neuron (gates)
    inputs: {w0: 2.0, x0: -1.0, w1: -3.0, x1: -2.0, w2: -3.0}
    nodes:
      dot: w0*x0 + w1*x1 + w2
      f: 1 / (1 + exp(-dot))
"""
W0, X0, W1, X1, W2 = 2.0, -1.0, -3.0, -2.0, -3.0


def explain_spec(path):
    return walkthrough(run(path, judge=False))


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def steps_of(path):
    graph = build_graph(load_spec(path))
    fwd = forward(graph, "float64")
    bwd = backward(graph, fwd, "float64")
    return {step.name: step for step in explain(graph, fwd, bwd)}


def passed(step, to):
    (argument,) = [a for a in step.arguments if a.name == to]
    return argument


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ------------------------------------------------------------------------------------------ the numbers

@pytest.fixture
def neuron(tmp_path):
    return write(tmp_path, NEURON)


def closed_forms():
    dot = W0 * X0 + W1 * X1 + W2                     # 1
    denominator = 1 + math.exp(-dot)                 # 1.37
    f = 1 / denominator                              # sigmoid(1) = 0.7311
    into_reciprocal = -1 / denominator ** 2          # d(1/x)/dx = -1/x^2: -0.53
    into_exp = math.exp(-dot) * into_reciprocal      # exp passes exp(x) * upstream: -0.20
    into_dot = -1 * into_exp                         # the negation: 0.20
    sigmoid_derivative = f * (1 - f)                 # the same 0.20 by the closed form of sigma'
    return dict(dot=dot, denominator=denominator, f=f, into_reciprocal=into_reciprocal, into_exp=into_exp,
                into_dot=into_dot, sigmoid_derivative=sigmoid_derivative)


def test_walkthrough_matches_the_gates_text(neuron):
    c = closed_forms()
    assert c["dot"] == 1.0 and c["f"] == pytest.approx(0.7311, abs=1e-4)
    assert c["into_dot"] == pytest.approx(c["sigmoid_derivative"], rel=1e-12)
    steps = steps_of(neuron)

    # the walk goes from the output back: f first, the inputs last
    assert list(steps)[0] == "f" and list(steps)[-5:] == ["w2", "x1", "w1", "x0", "w0"]
    f = steps["f"]
    assert f.op == "div" and f.value.scalar == pytest.approx(c["f"], rel=1e-12) and f.upstream.scalar == 1.0

    # "The gradient of the input of the 1/x will be -1/(1.37^2), -0.53"
    into = passed(f, "f/add#1")
    assert into.passed.scalar == pytest.approx(c["into_reciprocal"], rel=1e-12)
    assert round(into.passed.scalar, 2) == -0.53
    assert into.local == pytest.approx(-1 / c["denominator"] ** 2, rel=1e-12) and into.formula == "-1/x²"
    assert not passed(f, "f/const").differentiable  # nothing is passed to the constant 1

    # "The increment node does not change the gradient on its input": -0.53 again
    plus_one = steps["f/add#1"]
    assert plus_one.value.scalar == pytest.approx(c["denominator"], rel=1e-12)
    assert plus_one.upstream.scalar == pytest.approx(c["into_reciprocal"], rel=1e-12)
    assert passed(plus_one, "f/exp#1").passed.scalar == pytest.approx(c["into_reciprocal"], rel=1e-12)
    assert passed(plus_one, "f/exp#1").local == 1.0

    # "The exp node input gradient will be exp(-1) * -0.53", -0.2
    exp = steps["f/exp#1"]
    into_neg = passed(exp, "f/neg#1")
    assert into_neg.passed.scalar == pytest.approx(c["into_exp"], rel=1e-12)
    assert round(into_neg.passed.scalar, 2) == -0.20
    assert into_neg.local == pytest.approx(math.exp(-1.0), rel=1e-12) and into_neg.formula == "exp(x)"

    # "The negative gain node will be its input gradient (-1 * -0.2)", 0.2
    into_dot = passed(steps["f/neg#1"], "dot")
    assert into_dot.passed.scalar == pytest.approx(c["into_dot"], rel=1e-12) and into_dot.local == -1.0
    assert round(into_dot.passed.scalar, 1) == 0.2

    # "The sum node will distribute the gradients, so dw2 = 0.2"
    dot = steps["dot"]
    assert dot.upstream.scalar == pytest.approx(c["into_dot"], rel=1e-12)
    assert passed(dot, "w2").passed.scalar == pytest.approx(c["into_dot"], rel=1e-12)
    assert passed(steps["dot/add#1"], "dot/mul#1").passed.scalar == pytest.approx(c["into_dot"], rel=1e-12)

    # "dw0 will be (0.2 * -1), -0.2" and "dx0 will be (0.2 * 2), 0.4"
    product = steps["dot/mul#1"]
    dw0, dx0 = passed(product, "w0"), passed(product, "x0")
    assert dw0.passed.scalar == pytest.approx(c["into_dot"] * X0, rel=1e-12) and dw0.local == X0
    assert dx0.passed.scalar == pytest.approx(c["into_dot"] * W0, rel=1e-12) and dx0.local == W0
    assert (dw0.formula, dx0.formula) == ("x0", "w0")
    assert round(dw0.passed.scalar, 1) == -0.2 and round(dx0.passed.scalar, 1) == 0.4

    # the inputs close the walk with their gradients: sigma'(dot) times the other factor
    for name, other in {"w0": X0, "x0": W0, "w1": X1, "x1": W1, "w2": 1.0}.items():
        assert steps[name].kind == "input" and steps[name].arguments == []
        assert steps[name].upstream.scalar == pytest.approx(c["sigmoid_derivative"] * other, rel=1e-12), name


def test_text_reads_like_the_textbook(neuron):
    c = closed_forms()
    text = render_text(explain_spec(neuron))
    lines = text.splitlines()
    assert any(line.startswith("chain rule:") and "upstream gradient × local derivative" in line for line in lines)
    first = next(line for line in lines if "f = 1 / (1 + exp(-dot))" in line)
    assert f"= {c['f']:.4g}" in first and "upstream 1" in first
    assert f"passes {c['into_reciprocal']:.4g} to f/add#1 (local derivative -1/x² = {-1 / c['denominator'] ** 2:.4g})" in first
    exp_line = next(line for line in lines if "f/exp#1 = exp(-dot)" in line)
    assert f"passes {c['into_exp']:.4g} to f/neg#1 (local derivative exp(x) = {math.exp(-1):.4g})" in exp_line
    # the steps come in reverse order, numbered; the input gradients close the text
    order = [text.index(line) for line in ("f = 1 / (1", "f/add#1 = 1 + exp", "dot = w0*x0", "dot/mul#1 = w0*x0")]
    assert order == sorted(order)
    tail = text[text.index("gradients of the inputs:"):].splitlines()[1:]
    expected = {"w0": c["into_dot"] * X0, "x0": c["into_dot"] * W0, "w1": c["into_dot"] * X1,
                "x1": c["into_dot"] * W1, "w2": c["into_dot"]}
    assert [line.strip() for line in tail] == [f"∂f/∂{name} = {value:.4g}" for name, value in expected.items()]


def test_json_and_markdown_carry_the_same_steps(neuron):
    walk = explain_spec(neuron)
    data = json.loads(render_json(walk))
    assert data["version"] == 1 and data["output"] == "f" and data["chain_rule"].startswith("chain rule")
    assert [s["name"] for s in data["steps"]] == [s.name for s in walk.steps]
    first = data["steps"][0]
    assert first["arguments"][1]["passed"]["values"] == pytest.approx(closed_forms()["into_reciprocal"], rel=1e-12)
    assert data["input_gradients"]["x0"] == pytest.approx(closed_forms()["into_dot"] * W0, rel=1e-12)
    markdown = render_markdown(walk)
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert len(rows) == len(walk.op_steps) == 8
    assert "| `x0` | -1 | 0.3932 |" in markdown


# ------------------------------------------------------------------------------------------ fan-out, arrays

def test_fan_out_shows_the_contributions_that_add_up(tmp_path):
    # f = x*x + 3x at x = 2: x receives 2 + 2 (from x*x) + 3 (from 3x) = 7 = 2x + 3
    steps = steps_of(write(tmp_path, "inputs: {x: 2.0}\nnodes: {f: x * x + 3 * x}\n"))
    x = steps["x"]
    assert x.upstream.scalar == pytest.approx(2 * 2.0 + 3)
    assert sorted(c.passed.scalar for c in x.contributions) == pytest.approx([2.0, 2.0, 3.0])
    assert sum(c.passed.scalar for c in x.contributions) == pytest.approx(x.upstream.scalar)
    three_x = steps["f/mul#2"]
    assert passed(three_x, "x").formula == "3" and passed(three_x, "x").local == pytest.approx(3.0)


def test_large_arrays_are_summarised_small_ones_shown(tmp_path):
    path = write(tmp_path, """
        inputs:
          W: {shape: [3, 4], init: normal}
          v: [0.5, -1.0, 2.0]
        nodes:
          h: tanh(v @ W)
          loss: sum(h * h)
    """)
    walk = explain_spec(path)
    steps = {s.name: s for s in walk.steps}
    W = steps["W"]
    assert W.upstream.values is None and W.upstream.shape == [3, 4]
    graph = build_graph(load_spec(path))
    fwd = forward(graph, "float64")
    grad_w = backward(graph, fwd, "float64").adjoints[graph.by_name["W"]]
    assert W.upstream.norm == pytest.approx(float(np.linalg.norm(grad_w)), rel=1e-12)
    h = steps["h"]  # 4 elements: in full, with the elementwise local derivative 1 - tanh^2
    assert h.value.values == pytest.approx(np.tanh(np.array([0.5, -1.0, 2.0]) @ fwd.values[graph.by_name["W"]]).tolist())
    assert passed(h, "h/matmul#1").local == pytest.approx((1 - np.asarray(h.value.values) ** 2).tolist(), rel=1e-9)
    text = render_text(walk)
    assert "3×4 array, norm" in text and "∂loss/∂W = 3×4 array, norm" in text
    matmul = passed(steps["h/matmul#1"], "W")
    assert matmul.formula_kind == "rule" and matmul.local is None and "3×4 array" in matmul.passed.text()


def test_a_non_scalar_output_says_it_is_reduced(tmp_path):
    walk = explain_spec(write(tmp_path, "inputs: {x: [1.0, 2.0]}\nnodes: {y: exp(x)}\n"))
    assert walk.objective == "sum(v * y)"
    assert "reduced" in walk.steps[0].note
    assert "∂L/∂x" in render_text(walk)


def test_formulas_are_known_for_the_core_elementwise_ops():
    for op in ("add", "sub", "mul", "div", "neg", "exp", "log", "tanh", "sigmoid", "relu"):
        assert BUILTIN_OPS[op].local_derivative is not None


def test_a_custom_op_can_describe_its_derivative(tmp_path):
    (tmp_path / "mine.py").write_text(textwrap.dedent('''
        import numpy as np
        class Cube:
            local_derivative = "3x²"
            def forward(self, x):
                return x ** 3
            def vjp(self, g, out, x):
                return (3 * g * x ** 2,)
    '''))
    path = write(tmp_path, 'inputs: {x: 2.0}\nops: {cube: "mine:Cube"}\nnodes: {f: cube(x)}\n')
    argument = passed(steps_of(path)["f"], "x")
    assert argument.formula == "3x²" and argument.local == pytest.approx(12.0)


# ------------------------------------------------------------------------------------------ the command

def test_cli_explain_text_json_markdown(neuron, tmp_path):
    result = cli("explain", neuron)
    assert result.exit_code == 0, result.output
    assert "local derivative -1/x²" in result.output and "gradients of the inputs" in result.output
    assert "\x1b[" not in result.output  # not a terminal: no colour codes
    data = json.loads(cli("explain", neuron, "--format", "json").stdout)
    assert data["steps"][0]["name"] == "f"
    out = tmp_path / "walk.md"
    assert cli("explain", neuron, "--format", "markdown", "--output", out).exit_code == 0
    assert out.read_text().startswith("# Backward pass of")


def test_cli_explain_spec_errors_exit_2_with_a_location(tmp_path):
    bad = write(tmp_path, "inputs: {x: 1.0}\nnodes:\n  y: x * q\n", name="bad.yaml")
    result = cli("explain", bad)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{bad}:3:") and ": error: " in result.stderr and "'q'" in result.stderr
    assert "Traceback" not in result.output + result.stderr and result.stdout == ""
    missing = cli("explain", tmp_path / "nope.yaml")
    assert missing.exit_code == 2 and "error:" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_explain_help_documents_the_exit_status():
    result = cli("explain", "--help")
    assert result.exit_code == 0 and "Exit status" in result.output and "--format" in result.output
