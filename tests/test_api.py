"""Issue 9, point 1: the Python API -- check_op, check, assert_gradients -- reads like torch's gradcheck and
JAX's check_grads, and returns the result data the command line renders (to_dict() is the JSON report).

Expected values come from closed forms: swish'(x) = σ(x) + xσ(x)(1 - σ(x)), relu' at 0 one-sided, p - y.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gradcheck
from gradcheck.cli import main
from gradcheck.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class Swish:
    """swish x·σ(x)"""

    def forward(self, x):
        return x * sigmoid(x)

    def vjp(self, g, out, x):
        s = sigmoid(x)
        return (g * (s + x * s * (1 - s)),)


class SwishForgetsTerm(Swish):
    def vjp(self, g, out, x):                     # planted: drops x·σ(x)(1-σ(x))
        return (g * sigmoid(x),)


class SwishWrongJvp(Swish):
    def jvp(self, tangents, out, x):              # planted: the forward-mode rule forgets the same term
        return tangents[0] * sigmoid(x)


class Relu:
    def forward(self, x):
        return np.maximum(x, 0)

    def vjp(self, g, out, x):
        return (g * (x > 0),)


X = np.array([[-1.5, 0.3, 2.0], [0.7, -0.2, 1.1]])


def test_check_op_on_a_correct_op_object_passes_and_returns_the_result_data():
    result = gradcheck.check_op(Swish(), X)
    assert isinstance(result, gradcheck.SpecResult) and isinstance(result, gradcheck.CheckResult)
    assert result.ok and result.status == gradcheck.Status.PASS
    assert [n.name for n in result.nodes] == ["x", "out"]
    assert result.node("x").checked == "full" and result.node("x").shape == (2, 3)


def test_a_wrong_vjp_fails_at_the_worst_element_with_the_closed_form_values():
    result = gradcheck.check_op(SwishForgetsTerm(), X)
    assert not result.ok and result.status == "fail"
    x = result.node("x")
    # the projection v is random: the wrong gradient is v·σ(x), the right one v·swish'(x); the worst element
    # is where |v·xσ(x)(1-σ(x))| is largest
    v = result.nodes[-1].analytic
    missing = np.abs(v * X * sigmoid(X) * (1 - sigmoid(X)))
    assert x.worst_index == np.unravel_index(np.argmax(missing), X.shape)
    np.testing.assert_allclose(x.worst_analytic, (v * sigmoid(X))[x.worst_index], rtol=1e-9)
    s = sigmoid(X)
    np.testing.assert_allclose(x.worst_numeric, (v * (s + X * s * (1 - s)))[x.worst_index], rtol=1e-6)
    assert [(s.op, s.argument) for s in result.suspects] == [("SwishForgetsTerm", 0)]


def test_assert_gradients_is_one_line_and_says_what_the_table_says():
    gradcheck.assert_gradients(Swish(), X)
    with pytest.raises(AssertionError) as caught:
        gradcheck.assert_gradients(SwishForgetsTerm(), X)
    message = str(caught.value)
    assert message.startswith("gradcheck: op 'SwishForgetsTerm' failed")
    assert "x (input): gradient wrong at [" in message and "6 of 6 elements fail" in message
    assert "suspect: op 'SwishForgetsTerm' at node out passes a wrong gradient to its argument 0 (x)" in message


def test_the_jvp_is_checked_when_the_op_has_one():
    result = gradcheck.check_op(SwishWrongJvp(), X)
    assert [(j.op, j.status) for j in result.jvps] == [("SwishWrongJvp", "fail")]
    assert not result.ok
    assert "jvp of op 'SwishWrongJvp'" in result.message()


def test_a_kink_is_a_warning_and_strict_makes_it_a_failure():
    x = np.array([-1.0, 0.0, 2.0])
    result = gradcheck.assert_gradients(Relu(), x)  # passes: relu at 0 is a kink, not a bug
    node = result.node("x")
    assert node.status == "kink" and node.worst_index == (1,)
    with pytest.raises(AssertionError, match=r"kink at \[1\]"):
        gradcheck.assert_gradients(Relu(), x, strict=True)


def test_builtin_ops_by_name_with_keywords_and_integer_data():
    z = np.array([[0.2, -1.0, 0.5], [1.5, 0.3, -0.7]])
    assert gradcheck.check_op("softmax", z, axis=0).ok
    labels = np.array([2, 0])
    result = gradcheck.check_op("cross_entropy", z, labels)
    assert result.ok and result.node("labels").status == "skip"
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.node("logits").analytic, (p - np.eye(3)[labels]) / 2, atol=1e-12)  # mean over 2


def test_an_op_keyword_named_like_an_option_goes_in_params():
    x, gamma, beta = np.array([[1.0, 2.0, 4.0]]), np.ones(3), np.zeros(3)
    result = gradcheck.check_op("layer_norm", x, gamma, beta, params={"eps": 1e-3})
    assert result.ok and "eps=0.001" in result.nodes[-1].text


def test_wrt_leaves_other_arguments_unchecked():
    result = gradcheck.check_op("mul", np.array([1.0, 2.0]), np.array([3.0, 4.0]), wrt=[1])
    assert [n.status for n in result.nodes[:2]] == ["skip", "pass"]


def test_options_mirror_the_command_line():
    slightly_off = type("SlightlyOff", (Swish,), {"vjp": lambda self, g, out, x: (Swish.vjp(self, g, out, x)[0] + 1e-3,)})
    assert not gradcheck.check_op(slightly_off(), X).ok
    assert gradcheck.check_op(slightly_off(), X, atol=1e-2).ok
    result = gradcheck.check_op(Swish(), X, method="five-point", mode="fast", dtype="float32", seed=7)
    assert (result.method, result.mode, result.dtype, result.seed) == ("five-point", "fast", "float32", 7)
    assert result.node("x").checked == "probes"
    with pytest.raises(ValueError, match="mode must be one of"):
        gradcheck.check_op(Swish(), X, mode="quick")


def test_check_op_takes_every_convention_with_functions():
    def affine_forward(x, w):
        return x @ w, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout

    class Dense:
        def forward(self, x):
            self.x = x
            return x @ self.W

        def backward(self, dy):
            self.grads = {"W": self.x.T @ dy}
            return dy @ self.W.T

    def loss(y, p):
        return -np.sum(y * np.log(p))

    def grad(y, p):
        return p - y

    x, w = np.array([[1.0, -2.0]]), np.array([[0.5, 1.0, -1.0], [2.0, 0.0, 1.0]])
    pair = gradcheck.check_op({"forward": affine_forward, "backward": affine_backward}, x, w)
    assert pair.ok and [n.name for n in pair.nodes] == ["x", "w", "out"] and pair.op == "affine"
    np.testing.assert_allclose(pair.node("w").analytic, x.T @ pair.nodes[-1].analytic)  # d<v, x w>/dw = xᵀ v
    assert gradcheck.check_op({"layer": Dense, "params": ["W"], "grads": "grads"}, x, w).ok
    y = np.array([[0.0, 1.0, 0.0]])
    assert gradcheck.check_op({"forward": loss, "gradient": grad, "upstream": "softmax"}, y, x @ w, wrt=[1]).ok
    assert not gradcheck.check_op({"forward": loss, "gradient": grad}, y, np.array([[0.2, 0.5, 0.3]]), wrt=[1]).ok


def test_a_class_is_instantiated_and_module_attribute_is_imported(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text(textwrap.dedent('''
        import numpy as np
        class Cube:
            def forward(self, x):
                return x ** 3
            def vjp(self, g, out, x):
                return (3 * g * x ** 2,)
    '''))
    monkeypatch.chdir(tmp_path)
    assert gradcheck.check_op("mine:Cube", X).ok
    monkeypatch.syspath_prepend(str(tmp_path))
    import mine

    assert gradcheck.check_op(mine.Cube, X).ok


def test_unknown_ops_and_non_constant_keywords_are_clear_errors():
    with pytest.raises(SpecError, match="no built-in op 'sofmax' \\(did you mean 'softmax'\\?\\)"):
        gradcheck.check_op("sofmax", X)
    with pytest.raises(TypeError, match="keyword 'axis' must be a constant"):
        gradcheck.check_op("softmax", X, axis=np.array([0]))
    with pytest.raises(SpecError, match="a function is an op through a convention"):
        gradcheck.check_op(np.sin, X)


def test_an_op_whose_forward_raises_is_a_spec_error_naming_it():
    class Broken(Swish):
        def forward(self, x):
            raise RuntimeError("shapes do not fit")

    with pytest.raises(SpecError, match="custom op Broken.*raised RuntimeError: shapes do not fit"):
        gradcheck.check_op(Broken(), X)


# ------------------------------------------------------------------------------------------ check(spec)


SPEC = """\
name: neuron
inputs:
  w: [2.0, -3.0]
  x: [-1.0, -2.0]
nodes:
  f: 1 / (1 + exp(-sum(w * x)))
"""


def test_check_takes_a_path_yaml_text_and_a_dict_alike(tmp_path):
    path = tmp_path / "neuron.yaml"
    path.write_text(SPEC)
    document = {"name": "neuron", "inputs": {"w": [2.0, -3.0], "x": [-1.0, -2.0]},
                "nodes": {"f": "1 / (1 + exp(-sum(w * x)))"}}
    results = [gradcheck.check(path), gradcheck.check(str(path)), gradcheck.check(SPEC), gradcheck.check(document)]
    assert all(r.ok for r in results)
    f = 1 / (1 + np.exp(-4.0))  # w·x = -2 + 6
    for result in results:
        np.testing.assert_allclose(result.node("w").analytic, f * (1 - f) * np.array([-1.0, -2.0]), rtol=1e-12)
    def without_places(value):  # a dict has no lines; a path and timings differ
        if isinstance(value, dict):
            return {k: without_places(v) for k, v in value.items() if k not in ("path", "seconds", "line")}
        return [without_places(v) for v in value] if isinstance(value, list) else value

    reports = [without_places(r.to_dict(values=True)) for r in results]
    assert reports[1:] == reports[:-1]
    assert results[0].node("f").line == 6 and results[3].node("f").line is None


def test_to_dict_is_exactly_the_json_report(tmp_path):
    path = tmp_path / "neuron.yaml"
    path.write_text(SPEC)
    for flags, values in (([], False), (["--values"], True)):
        cli = json.loads(CliRunner().invoke(main, ["run", str(path), "--format", "json", *flags]).stdout)
        api = gradcheck.check(path).to_dict(values=values)
        for document in (cli, api):
            for spec in document["specs"]:
                spec.pop("seconds")
        assert api == cli


def test_check_raises_a_located_spec_error(tmp_path):
    with pytest.raises(SpecError) as caught:
        gradcheck.check("inputs:\n  x: 1.0\nnodes:\n  y: tnah(x)\n")
    assert caught.value.location.line == 4 and "did you mean 'tanh'" in caught.value.message
    with pytest.raises(SpecError, match="cannot read the spec"):
        gradcheck.check(tmp_path / "missing.yaml")


def test_assert_gradients_on_a_spec(tmp_path):
    gradcheck.assert_gradients(SPEC)
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs:\n  x: 1.0\nnodes:\n  y: x * x\nexpect:\n  output: 2.0\n")
    with pytest.raises(AssertionError, match=r"expect output: expected 2, got 1"):
        gradcheck.assert_gradients(bad)


def test_a_spec_whose_requirement_is_missing_is_skipped_not_failed():
    result = gradcheck.check({"requires": ["no_such_module_gc"], "inputs": {"x": 1.0}, "nodes": {"y": "x"}})
    assert result.status == "skip" and result.ok and "no_such_module_gc" in result.notes[0]


def test_importing_gradcheck_stays_cheap():
    code = ("import sys, gradcheck; gradcheck.__all__; "
            "assert not {'numpy', 'yaml', 'rich', 'click', 'torch', 'jax'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_the_public_names_are_exported():
    for name in ("check", "check_op", "assert_gradients", "CheckResult", "SpecResult", "NodeResult", "Status",
                 "Suspect", "JvpResult", "RunResult", "SpecError"):
        assert name in gradcheck.__all__ and getattr(gradcheck, name) is not None


def test_integer_and_boolean_arrays_are_data():
    x, mask = np.array([1.0, -2.0, 3.0]), np.array([True, False, True])
    result = gradcheck.check_op("where", mask, x, np.zeros(3))
    assert result.ok and result.node("cond").status == "skip"
    v = result.nodes[-1].analytic  # the random cotangent: d<v, where(mask, a, b)>/da = v where the mask holds
    np.testing.assert_allclose(result.node("a").analytic, np.where(mask, v, 0.0))
