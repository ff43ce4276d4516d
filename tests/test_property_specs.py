"""Issue #4, part 4: property-based tests.

(a) Random VALID specs: random expression trees of smooth ops over scalar and vector inputs, rendered to
    expression text.  gradcheck must pass them, and its analytic input gradients must agree with an
    independent five-point finite difference of the same function, evaluated by a small numpy
    evaluator written here (not gradcheck's engine or numeric module).
(b) Random INVALID specs: text mutations of valid specs and junk expressions.  The command line must
    end with exit 0, 1 or 2 — never a traceback, never an uncaught exception, never an internal error
    — and an exit 2 must name the file (and a line wherever the fault has one).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradcheck import check_spec
from gradcheck.cli import main
from tests.reference import numeric_gradient

INPUT_SHAPES = {"a": (), "b": (), "u": (3,), "v": (3,)}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------ expression trees

@dataclass(frozen=True)
class Term:
    """An expression as text and as a function of the input values (a dict name -> array)."""

    text: str
    fn: Callable
    names: frozenset


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.logaddexp(0.0, x)


def leaf(name: str) -> Term:
    return Term(name, lambda env, name=name: env[name], frozenset([name]))


UNARY = {
    # name: (template, numpy function); every template keeps the function smooth and finite on any input
    "tanh": ("tanh({})", np.tanh),
    "sigmoid": ("sigmoid({})", _sigmoid),
    "sin": ("sin({})", np.sin),
    "cos": ("cos({})", np.cos),
    "softplus": ("softplus({})", _softplus),
    "square": ("square(tanh({}))", lambda x: np.tanh(x) ** 2),
    "exp-bounded": ("exp(sin({}))", lambda x: np.exp(np.sin(x))),
    "log-positive": ("log(1.5 + square({}))", lambda x: np.log(1.5 + x * x)),
    "neg": ("-({})", np.negative),
    "scale": ("0.5 * ({})", lambda x: 0.5 * x),
    "sum": ("sum({})", np.sum),
    "mean": ("mean({})", np.mean),
}

BINARY = {
    "add": ("({}) + ({})", np.add),
    "sub": ("({}) - ({})", np.subtract),
    "mul": ("({}) * ({})", np.multiply),
    "div-positive": ("({}) / (1.5 + square({}))", lambda x, y: x / (1.5 + y * y)),
    "div-exp": ("({}) / exp(cos({}))", lambda x, y: x / np.exp(np.cos(y))),
}


def unary(op: str, term: Term) -> Term:
    template, fn = UNARY[op]
    return Term(template.format(term.text), lambda env: fn(term.fn(env)), term.names)


def binary(op: str, left: Term, right: Term) -> Term:
    template, fn = BINARY[op]
    return Term(template.format(left.text, right.text), lambda env: fn(left.fn(env), right.fn(env)),
                left.names | right.names)


def terms(names=tuple(INPUT_SHAPES)):
    base = st.sampled_from(names).map(leaf)
    return st.recursive(
        base,
        lambda children: st.one_of(
            st.builds(unary, st.sampled_from(sorted(UNARY)), children),
            st.builds(binary, st.sampled_from(sorted(BINARY)), children, children),
        ),
        max_leaves=6,
    )


# Zero, or magnitudes from 1e-3: an input of 1e-295 next to O(1) intermediates makes any step relative to
# |x| vanish in rounding (sigmoid(a) + a - sigmoid(a) is exactly 0 for tiny a), which is a question of step
# policy, not of the backward pass; it is checked separately (test_tiny_inputs_do_not_crash).
values = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1.5), st.floats(min_value=-1.5, max_value=-1e-3))


@st.composite
def valid_specs(draw):
    """(spec text, input values, a function of the inputs that equals the spec's output)."""
    first = draw(terms())
    second = draw(terms(tuple(INPUT_SHAPES) + ("h",)))
    out_term = Term(f"sum({second.text})", lambda env: np.sum(second.fn(env)), second.names)
    names = sorted(out_term.names - {"h"})
    env_values = {}
    for name in names:
        shape = INPUT_SHAPES[name]
        if shape:
            env_values[name] = np.array([draw(values) for _ in range(shape[0])])
        else:
            env_values[name] = np.array(draw(values))
    uses_h = "h" in out_term.names
    if uses_h:
        names = sorted(set(names) | first.names)
        for name in first.names - set(env_values):
            shape = INPUT_SHAPES[name]
            env_values[name] = np.array([draw(values) for _ in range(shape[0])]) if shape else np.array(draw(values))
    lines = ["inputs:"]
    for name in names:
        lines.append(f"  {name}: {_yaml_value(env_values[name])}")
    lines.append("nodes:")
    if uses_h:
        lines.append(f"  h: {_yaml_string(first.text)}")
    lines.append(f"  out: {_yaml_string(out_term.text)}")
    if uses_h:
        def function(env):
            return out_term.fn({**env, "h": first.fn(env)})
    else:
        function = out_term.fn
    return "\n".join(lines) + "\n", env_values, function


def _yaml_value(value: np.ndarray) -> str:
    return repr(value.tolist()) if value.ndim else repr(float(value))


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=100, **SETTINGS)
@given(valid_specs())
def test_random_valid_specs_pass_and_agree_with_an_independent_reference(tmp_path_factory, case):
    text, env_values, function = case
    path = tmp_path_factory.mktemp("valid") / "random.yaml"
    path.write_text(text)
    result = check_spec(path)
    assert result.error is None, f"{result.error}\n{text}"
    assert result.status == "pass", "\n".join(
        f"{n.name} {n.status} {n.max_abs_error:.3g} {n.max_rel_error:.3g}" for n in result.nodes) + "\n" + text
    analytic = {n.name: n.analytic for n in result.nodes if n.op == "input"}
    # the output value itself, by our evaluator
    assert math.isclose(float(result.output_value), float(function(env_values)), rel_tol=1e-12, abs_tol=1e-12), text
    for name, value in env_values.items():
        def partial(x, name=name):
            return function({**env_values, name: x})

        reference = numeric_gradient(partial, value)
        got = np.asarray(analytic[name], dtype=np.float64)
        assert got.shape == reference.shape, (name, got.shape, reference.shape, text)
        scale = max(1.0, float(np.max(np.abs(reference))) if reference.size else 1.0)
        assert np.allclose(got, reference, rtol=1e-6, atol=1e-7 * scale), (
            f"d out / d {name}: analytic {got}, five-point {reference}\n{text}")


# ------------------------------------------------------------------------------------------ invalid specs

SEED_SPECS = [
    "inputs:\n  x: [1.0, -2.0, 0.5]\n  w: {value: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]}\n  b: 0.1\n"
    "nodes:\n  z: w @ x + b\n  h: tanh(z)\n  out: {expr: sum(square(h)), atol: 1e-6}\n"
    "tolerance: {atol: 1e-6, rtol: 1e-4}\nnumeric: {method: central}\n",
    "name: neuron\ndtype: float64\nseed: 3\ninputs:\n  w0: 2.0\n  x0: -1.0\n  w1: -3.0\n  x1: -2.0\n  w2: -3.0\n"
    "nodes:\n  dot: w0*x0 + w1*x1 + w2\n  f: sigmoid(dot)\noutput: f\nexpect: {output: 0.7311, atol: 1e-3}\n",
    "inputs:\n  p: {shape: [2, 3], init: normal, std: 0.5}\n  y: {value: [1, 0], dtype: int64}\n"
    "nodes:\n  s: sum(p, axis=1)\n  loss: mean(softplus(-s))\n",
]

TOKENS = [":", " ", "\n", "  ", "[", "]", "{", "}", ",", "-", "- ", "&a ", "*a", "!!python/name:os.system ", "!!str ",
          "\t", "'", '"', "#", "nan", ".inf", "1e999", "-1", "0", "[]", "{}", "~", "null", "yes", "__class__", "(", ")",
          "x.y", "lambda: 1", "---\n", "...\n", "\x07", "\x00", "é", "\u202e", "@", "**", "sum(", "axis=9", "tnah",
          "inputs:", "nodes:", "output: q\n", "<<: *a\n", "%TAG ! x\n", "? ", "|", ">", "=", "ω", "9" * 500,
          "!!bool ", "!!int ", "!!seq ", "!!map ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "<<: ", "\\0"]


@st.composite
def mutated_text(draw):
    text = draw(st.sampled_from(SEED_SPECS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "swap-lines", "duplicate-line"]))
        position = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:position] + draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=5))) + text[position:]
        elif kind == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 10)):]
        elif kind == "replace":
            text = text[:position] + draw(st.sampled_from(TOKENS)) + text[position + 1:]
        elif kind == "truncate":
            text = text[:position]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "swap-lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
    return text


def assert_clean_run(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
    result = CliRunner().invoke(main, ["run", "--mode", "fast", str(path)])
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, content)
    assert result.exception is None or isinstance(result.exception, SystemExit), (repr(result.exception), content)
    assert "Traceback" not in result.output, (result.output, content)
    assert "internal error" not in result.output, (result.output, content)
    if result.exit_code == 2:
        errors = [row for row in result.stderr.splitlines() if ": error:" in row]
        assert len(errors) == 1, (result.stderr, content)
        assert errors[0].startswith(f"{path}:"), (errors[0], content)
        assert errors[0][len(f"{path}:"):].split(":")[0].isdigit(), (errors[0], content)  # a line number
    return result


@settings(max_examples=400, **SETTINGS)
@given(mutated_text())
def test_mutated_specs_never_crash(tmp_path_factory, text):
    assert_clean_run(tmp_path_factory.mktemp("mutated") / "spec.yaml", text)


@settings(max_examples=200, **SETTINGS)
@given(st.text(max_size=60))
def test_junk_expressions_never_crash(tmp_path_factory, expression):
    quoted = yaml.safe_dump(expression, width=10_000).split("\n...")[0].strip()
    text = "inputs:\n  x: [1.0, 2.0]\n  s: 0.5\nnodes:\n  y: " + quoted + "\n"
    assume("\n" not in text.split("  y: ", 1)[1].strip())
    assert_clean_run(tmp_path_factory.mktemp("junk") / "spec.yaml", text)


EXPR_TOKENS = ["x", "s", "y", "1", "2.5", "-", "+", "*", "/", "**", "@", "(", ")", "[", "]", ",", ":", "tanh", "sum",
               "mean", "exp", "log", "sigmoid", "softplus", "relu", "reshape", "transpose", "getitem", "matmul",
               "axis=", "keepdims=", "True", "None", "...", "0", "-1", "5", "1e308", "1e-308", ".", "__class__", "lambda",
               "if", "else", "=", "'a'", "shape=", "(2,)", "(1, 2)", " "]


@settings(max_examples=300, **SETTINGS)
@given(st.lists(st.sampled_from(EXPR_TOKENS), min_size=1, max_size=12))
def test_token_soup_expressions_never_crash(tmp_path_factory, tokens):
    expression = "".join(tokens)
    text = "inputs:\n  x: [1.0, 2.0]\n  s: 0.5\nnodes:\n  y: " + _yaml_string(expression) + "\n"
    path = tmp_path_factory.mktemp("soup") / "spec.yaml"
    result = assert_clean_run(path, text)
    if result.exit_code == 2:
        # the expression's line (5), or an input it leaves without a path to the output (2, 3)
        assert any(f"{path}:{line}:" in result.stderr for line in (2, 3, 5)), result.stderr


@settings(max_examples=100, **SETTINGS)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(tmp_path_factory, content):
    assert_clean_run(tmp_path_factory.mktemp("bytes") / "spec.yaml", content)


@pytest.mark.parametrize("text", SEED_SPECS)
def test_the_seed_specs_are_valid(tmp_path, text):
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 0, result.output


@settings(max_examples=60, **SETTINGS)
@given(valid_specs(), st.sampled_from([5e-324, 1e-310, 1e-300, 1e-150, 1e150, 1e300]))
def test_tiny_and_huge_inputs_do_not_crash(tmp_path_factory, case, magnitude):
    """Extreme magnitudes may legitimately fail or error (overflow) -- but never crash the run."""
    text, env_values, _ = case
    document = yaml.safe_load(text)
    document["inputs"] = {name: (np.asarray(value) * magnitude).tolist() for name, value in env_values.items()}
    assert_clean_run(tmp_path_factory.mktemp("extreme") / "spec.yaml", yaml.safe_dump(document))
