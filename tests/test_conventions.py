"""Issue 9, point 2: the op conventions layer authors already write, declared in a spec's ops: (and in check_op).

Textbook layers with planted bugs are caught and named; correct ones pass; the cache backward receives is the
one its own forward returned; stateful layers never accumulate gradients across calls; a loss whose gradient is
declared with respect to the logits is checked as such.  Expected gradients come from closed forms.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import gradcheck
from gradcheck.cli import main
from gradcheck.errors import SpecError
from gradcheck.ops.conventions import CallCache, LayerOp, PairOp

LAYERS = '''
import numpy as np

CALLS = {"forward": 0}


def affine_forward(x, w, b):
    CALLS["forward"] += 1
    return x @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def affine_backward_bad_db(dout, cache):          # planted: db forgets to sum over the batch
    x, w, b = cache
    return dout @ w.T, x.T @ dout, dout[0]


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward_bad(dout, x):                   # planted: lets the gradient through where x < 0 too
    return dout * (x > -1)


def scale_forward(x, scale_param):
    scale_param["seen"] = True                    # a forward that changes its param dict must not leak it
    return x * scale_param["factor"], (scale_param["factor"],)


def scale_backward(dout, cache):
    return dout * cache[0]


class Dense:
    def __init__(self, activation="tanh"):
        self.activation = activation
        self.parameters = {}
        self.gradients = {"W": 0.0, "b": 0.0}

    def forward(self, X):
        self.X, self.Z = X, X @ self.parameters["W"] + self.parameters["b"]
        return np.tanh(self.Z)

    def backward(self, dY):
        dZ = dY * (1 - np.tanh(self.Z) ** 2)
        self.gradients["W"] += self.X.T @ dZ       # accumulates, as libraries do
        self.gradients["b"] += dZ.sum(axis=0)
        return dZ @ self.parameters["W"].T


class DenseBadW(Dense):
    def backward(self, dY):                       # planted: dW without the activation's derivative
        dX = super().backward(dY)
        self.gradients["W"] = self.X.T @ dY
        return dX


class Scaler:
    """Attributes for parameters, a method for their gradients."""

    def forward(self, x, retain_derived=True):
        self.x = x
        return x * self.s

    def backward(self, dy):
        self.ds = np.sum(dy * self.x, keepdims=True).reshape(self.s.shape)
        return dy * self.s

    def get_grads(self):
        return [self.ds]


class CrossEntropy:
    def loss(self, y, y_pred):
        return -np.sum(y * np.log(y_pred))

    def grad(self, y, y_pred):
        return y_pred - y
'''


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "layers.py").write_text(LAYERS)
    return tmp_path


def spec_at(folder, text: str):
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


# ------------------------------------------------------------------------------------------ pairs with a cache


def test_a_correct_pair_passes_with_the_closed_form_gradients(folder):
    path = spec_at(folder, """
        ops:
          affine: {forward: "layers:affine_forward", backward: "layers:affine_backward"}
        inputs:
          x: [[1, 2], [3, 4]]
          w: [[1, 0, -1], [2, 1, 0]]
          b: [0.5, -0.5, 1]
        nodes:
          loss: sum(affine(x, w, b))
    """)
    result = gradcheck.check(path)
    assert result.status == "pass"
    np.testing.assert_allclose(result.node("b").analytic, [2, 2, 2])               # two rows
    np.testing.assert_allclose(result.node("w").analytic, [[4, 4, 4], [6, 6, 6]])  # column sums of x
    np.testing.assert_allclose(result.node("x").analytic, [[0, 3], [0, 3]])        # row sums of w


def test_a_planted_bug_in_a_pair_is_named_at_the_op_and_the_argument(folder):
    path = spec_at(folder, """
        ops:
          affine: {forward: "layers:affine_forward", backward: "layers:affine_backward_bad_db"}
        inputs:
          x: {shape: [3, 2], init: normal}
          w: {shape: [2, 4], init: normal}
          b: {shape: [4], init: normal}
        nodes:
          h: affine(x, w, b)
          loss: sum(h * h)
    """)
    result = gradcheck.check(path)
    assert result.status == "fail"
    assert result.node("b").status == "fail"
    assert result.node("x").status == result.node("w").status == "pass"
    assert [(s.op, s.argument, s.argument_node) for s in result.suspects] == [("affine", 2, "b")]
    assert run_cli(path).exit_code == 1


def test_backward_gets_the_cache_its_own_forward_returned():
    seen = []

    def forward(x):
        token = object()
        return 2 * x, {"x": x, "token": token}

    def backward(dout, cache):
        seen.append(cache)
        return 2 * dout

    op = PairOp(forward, backward)
    x = np.array([1.0, 2.0])
    op.forward(x)
    first_cache = op.calls.entries[(id(x),)][2]
    op.vjp(np.ones(2), None, x)
    assert seen[-1] is first_cache and seen[-1]["x"] is x
    op.vjp(np.ones(2), None, x)  # taken once: a second backward gets a fresh forward's cache, never a used one
    assert seen[-1] is not first_cache and seen[-1]["x"] is x
    other = np.array([5.0, 6.0])
    op.vjp(np.ones(2), None, other)  # arrays its forward never saw: forward runs for them
    assert seen[-1]["x"] is other


def test_the_check_does_not_rerun_forward_for_the_backward_pass(folder, monkeypatch):
    import sys

    path = spec_at(folder, """
        ops:
          affine: {forward: "layers:affine_forward", backward: "layers:affine_backward"}
        inputs:
          x: [[1.0, 2.0]]
          w: [[1.0], [2.0]]
          b: [0.0]
        nodes:
          loss: sum(affine(x, w, b))
    """)
    gradcheck.check(path, mode="fast")  # loads the module
    layers = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(folder / "layers.py"))
    reruns = []
    original = PairOp.vjp

    def counting(self, g, out, *inputs, **params):
        before = layers.CALLS["forward"]
        grads = original(self, g, out, *inputs, **params)
        reruns.append(layers.CALLS["forward"] - before)
        return grads

    monkeypatch.setattr(PairOp, "vjp", counting)
    assert gradcheck.check(path, mode="fast").status == "pass"
    # the backward pass takes the cache its forward left; the op-local checks call the vjp again (random
    # cotangents, a second call for determinism), and each of those runs forward at most once for a fresh cache
    assert reruns and reruns[0] == 0 and all(count <= 1 for count in reruns)


def test_cache_is_bounded():
    cache = CallCache(size=3)
    arrays = [np.full(1, float(i)) for i in range(5)]
    for array in arrays:
        cache.put([array], {}, "item")
    assert len(cache.entries) == 3
    assert cache.take([arrays[0]], {}) is not "item"  # noqa: F632 - evicted: the sentinel comes back
    assert cache.take([arrays[4]], {}) == "item"
    assert cache.take([arrays[3]], {"k": 1}) is not "item"  # noqa: F632 - other params: not this call's


def test_a_relu_pair_with_a_wrong_mask_fails_at_the_negative_elements(folder):
    path = spec_at(folder, """
        ops:
          relu: {forward: "layers:relu_forward", backward: "layers:relu_backward_bad"}
        inputs:
          x: [-0.5, 1.0, -2.0, 3.0]
        nodes:
          y: sum(relu(x) * x)
    """)
    x = gradcheck.check(path).node("x")
    assert x.status == "fail"
    # d/dx relu(x)·x = 2x for x > 0 and 0 below; the bug adds relu(x)=0 ... only where -1 < x < 0 (x = -0.5)
    assert x.worst_index == (0,) and x.failing == 1


def test_a_param_dict_reaches_forward_as_a_mapping_and_never_leaks_between_calls(folder):
    path = spec_at(folder, """
        ops:
          scale: {forward: "layers:scale_forward", backward: "layers:scale_backward", constants: [scale_param]}
        inputs:
          x: [1.0, 2.0]
        nodes:
          y: "sum(scale(x, scale_param={factor: 3.0}))"
    """)
    result = gradcheck.check(path)
    assert result.status == "pass"
    np.testing.assert_allclose(result.node("x").analytic, [3.0, 3.0])


def test_python_dict_syntax_and_lists_are_keyword_constants_too(folder):
    path = spec_at(folder, """
        ops:
          scale: {forward: "layers:scale_forward", backward: "layers:scale_backward", constants: [scale_param]}
        inputs:
          x: [1.0, 2.0]
        nodes:
          y: "sum(scale(x, scale_param={'factor': 2.0, 'tags': ['a', 1], 'nested': {'k': [1, 2]}}))"
    """)
    assert gradcheck.check(path).node("x").analytic.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("expression, column, fragment", [
    ("sum(scale(x, scale_param={x + 1: 2}))", 33, "keys must be names or strings"),
    ("sum(scale(x, scale_param={factor: x}))", 41, "must be a constant"),
    ("sum(scale(x, scale_param={factor: 1, factor: 2}))", 44, "key 'factor' is given twice"),
])
def test_bad_mapping_constants_are_located_errors(folder, expression, column, fragment):
    path = spec_at(folder, f"""
        ops:
          scale: {{forward: "layers:scale_forward", backward: "layers:scale_backward", constants: [scale_param]}}
        inputs:
          x: [1.0, 2.0]
        nodes:
          y: "{expression}"
    """)
    result = run_cli(path)
    assert result.exit_code == 2
    assert f"spec.yaml:7:{column}: error:" in result.output and fragment in result.output


def test_without_constants_the_arity_error_names_the_parameters(folder):
    path = spec_at(folder, """
        ops:
          scale: {forward: "layers:scale_forward", backward: "layers:scale_backward"}
        inputs:
          x: [1.0, 2.0]
        nodes:
          y: "sum(scale(x, scale_param={factor: 3.0}))"
    """)
    result = run_cli(path)
    assert result.exit_code == 2 and "scale() takes 2 array argument(s) (x, scale_param)" in result.output


def test_forward_without_a_cache_is_a_clear_failure(folder):
    (folder / "nocache.py").write_text("def f(x):\n    return x * 2\n\ndef b(dout, cache):\n    return dout\n")
    path = spec_at(folder, """
        ops:
          twice: {forward: "nocache:f", backward: "nocache:b"}
        inputs:
          x: [1.0]
        nodes:
          y: twice(x)
    """)
    result = run_cli(path)
    assert result.exit_code == 2 and "not the pair (out, cache)" in result.output


# ------------------------------------------------------------------------------------------ stateful layers


DENSE = """
    ops:
      dense: {layer: "layers:%s", params: [W, b], store: parameters, grads: gradients}
    inputs:
      X: {shape: [3, 4], init: normal}
      W: {shape: [4, 2], init: normal, std: 0.5}
      b: {shape: [2], init: normal}
    nodes:
      h: dense(X, W, b)
      loss: sum(h * h)
"""


def test_a_stateful_layer_passes_although_it_accumulates_its_gradients(folder):
    result = gradcheck.check(spec_at(folder, DENSE % "Dense"))
    assert result.status == "pass", result.message()
    assert [n.name for n in result.nodes[:3]] == ["X", "W", "b"]


def test_one_layer_object_reused_across_calls_would_accumulate_and_fail():
    """What the fresh object per forward call prevents: the same Dense reused doubles dW on its second backward."""
    import types

    module = types.ModuleType("layers_module")
    exec(LAYERS, module.__dict__)
    shared = module.Dense()
    op = LayerOp(lambda: shared, ["W", "b"], store="parameters")
    X, W, b = np.ones((2, 3)), np.full((3, 1), 0.1), np.zeros(1)
    out = op.forward(X, W, b)
    first = op.vjp(np.ones_like(out), out, X, W, b)[1].copy()
    op.forward(X, W, b)
    second = op.vjp(np.ones_like(out), out, X, W, b)[1]
    np.testing.assert_allclose(second, 2 * first)  # the reused object accumulated
    fresh = LayerOp(module.Dense, ["W", "b"], store="parameters")
    for _ in range(2):
        fresh.forward(X, W, b)
        np.testing.assert_allclose(fresh.vjp(np.ones_like(out), out, X, W, b)[1], first)


def test_a_planted_bug_in_a_stateful_layer_fails_at_its_parameter(folder):
    result = gradcheck.check(spec_at(folder, DENSE % "DenseBadW"))
    assert result.status == "fail"
    assert result.node("W").status == "fail" and result.node("b").status == "pass" and result.node("X").status == "pass"
    assert any(s.argument_node == "W" for s in result.suspects)


def test_layer_parameters_as_attributes_and_gradients_from_a_method(folder):
    path = spec_at(folder, """
        ops:
          scaler: {layer: "layers:Scaler", params: [s], grads: "get_grads()"}
        inputs:
          x: [1.0, 2.0, 3.0]
          s: [0.5]
        nodes:
          y: sum(scaler(x, s))
    """)
    result = gradcheck.check(path)
    assert result.status == "pass", result.message()
    assert [n.name for n in result.nodes[:2]] == ["x", "s"]         # forward's inputs, then the parameters
    np.testing.assert_allclose(result.node("s").analytic, [6.0])    # d/ds sum(s x) = sum x
    np.testing.assert_allclose(result.node("x").analytic, [0.5] * 3)


def test_a_layer_factory_function_gives_forward_inputs_from_the_layer_it_makes(tmp_path):
    class Bilinear:
        def forward(self, a, b):
            self.a, self.b = a, b
            return np.sum(a * b * self.w)

        def backward(self, g):
            self.dw = np.full_like(self.w, g * np.sum(self.a * self.b))
            return g * self.b * self.w, g * self.a * self.w

    def make(scale=1.0):
        return Bilinear()

    result = gradcheck.check_op({"layer": make, "params": ["w"], "grads": ["dw"]}, np.array([1.0, 2.0]),
                                np.array([3.0, -1.0]), np.array([0.5]))
    assert result.ok, result.message()
    assert [n.name for n in result.nodes[:3]] == ["a", "b", "w"]
    np.testing.assert_allclose(result.node("w").analytic, [1.0 * 3.0 + 2.0 * -1.0])  # d/dw w Σ a b = Σ a b


def test_a_missing_parameter_gradient_is_reported_against_the_op():
    class ForgetsBias:
        def forward(self, x):
            self.x = x
            return x * self.w + self.b

        def backward(self, g):
            self.gradients = {"w": g * self.x}  # no "b"
            return g * self.w

    result = gradcheck.check_op({"layer": ForgetsBias, "params": ["w", "b"]}, np.array([1.0, 2.0]), np.array([3.0, 4.0]),
                                np.array([0.5, 0.5]))
    assert not result.ok
    out = result.nodes[-1]
    assert "vjp raised KeyError" in out.message and "has no gradient for b (it holds w)" in out.message


def test_a_layer_inject_function_sets_parameters_its_own_way(folder):
    (folder / "inject.py").write_text(textwrap.dedent("""
        import numpy as np

        class Private:
            def __init__(self):
                self._w = None
            def _set_weight(self, w):
                self._w = w
            def forward(self, x):
                self.x = x
                return x * self._w
            def backward(self, dy):
                self.grads = {"w": dy * self.x}
                return dy * self._w

        def set_params(layer, values):
            layer._set_weight(values["w"])
    """))
    path = spec_at(folder, """
        ops:
          private: {layer: "inject:Private", params: [w], inject: "inject:set_params", grads: grads}
        inputs:
          x: [1.0, -2.0]
          w: [3.0, 4.0]
        nodes:
          y: sum(private(x, w))
    """)
    result = gradcheck.check(path)
    assert result.status == "pass", result.message()
    np.testing.assert_allclose(result.node("w").analytic, [1.0, -2.0])


# ------------------------------------------------------------------------------------------ a loss w.r.t. an upstream


LOSS = """
    ops:
      xent: {forward: "layers:CrossEntropy.loss", gradient: "layers:CrossEntropy.grad", wrt: y_pred%s}
    inputs:
      y: {value: [[0, 1, 0], [1, 0, 0]], requires_grad: false}
      z: [[0.2, -1.0, 0.5], [1.5, 0.3, -0.7]]
    nodes:
      loss: %s
"""


def test_a_loss_declared_with_respect_to_the_logits_passes_with_p_minus_y(folder):
    result = gradcheck.check(spec_at(folder, LOSS % (", upstream: softmax", "xent(y, z)")))
    assert result.status == "pass"
    z = np.array([[0.2, -1.0, 0.5], [1.5, 0.3, -0.7]])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.node("z").analytic, p - np.array([[0, 1, 0], [1, 0, 0]]), atol=1e-12)


def test_the_same_loss_undeclared_is_caught_as_the_bug_it_then_is(folder):
    result = gradcheck.check(spec_at(folder, LOSS % ("", "xent(y, softmax(z))")))
    assert result.status == "fail"
    assert any(s.op == "xent" for s in result.suspects)


@pytest.mark.parametrize("entry, fragment", [
    ('{forward: "layers:CrossEntropy.loss", gradient: "layers:CrossEntropy.grad", wrt: probs}',
     "'wrt:' must name an argument of forward (y, y_pred)"),
    ('{forward: "layers:CrossEntropy.loss", gradient: "layers:CrossEntropy.grad", upstream: sofmax}',
     "(did you mean 'softmax'?)"),
    ('{forward: "layers:affine_forward", backwards: "layers:affine_backward"}', "must declare a convention"),
    ('{forward: "layers:affine_forward", backward: "layers:affine_backward", cache: 1}',
     "unknown key 'cache' for a pair op"),
    ('{layer: "layers:Dense", param: [W]}', "unknown key 'param' (did you mean 'params'?)"),
    ('{forward: "layers:affine_forward", backward: "layers:nothing"}', "has no attribute 'nothing'"),
    ('{forward: "layers:affine_forward", backward: 3}', "'backward:' names 3, which cannot be called"),
])
def test_a_bad_declaration_is_one_located_error(folder, entry, fragment):
    path = spec_at(folder, f"""
        ops:
          op: {entry}
        inputs:
          x: [1.0]
        nodes:
          y: op(x)
    """)
    result = run_cli(path)
    assert result.exit_code == 2, result.output
    assert "spec.yaml:3:" in result.output and fragment in result.output, result.output


# ------------------------------------------------------------------------------------------ dict specs


def test_parse_spec_accepts_a_dict_with_numpy_values():
    result = gradcheck.check({"inputs": {"x": np.array([1.0, 2.0]), "n": np.array([1, 0])},
                              "nodes": {"y": "sum(x * x * n)"}, "seed": np.int64(3)})
    assert result.status == "pass" and result.seed == 3
    np.testing.assert_allclose(result.node("x").analytic, [2.0, 0.0])  # d/dx x² n = 2 x n
    assert result.node("n").status == "skip"


def test_a_dict_spec_error_names_the_field():
    with pytest.raises(SpecError, match="unknown key 'noodles'.*did you mean 'nodes'") as caught:
        gradcheck.check({"inputs": {"x": 1.0}, "noodles": {"y": "x"}})
    assert caught.value.location.path == "<dict>" and caught.value.location.line is None


def test_a_dict_spec_holds_op_objects_and_conventions_with_functions():
    class Cube:
        def forward(self, x):
            return x ** 3

        def vjp(self, g, out, x):
            return (g * 3 * x ** 2,)

    def pair_forward(x):
        return np.sin(x), x

    def pair_backward(dout, x):
        return dout * np.cos(x)

    result = gradcheck.check({"ops": {"cube": Cube(), "sine": {"forward": pair_forward, "backward": pair_backward}},
                              "inputs": {"x": [0.5, -1.0]}, "nodes": {"y": "sum(cube(x) + sine(x))"}})
    assert result.status == "pass"
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(result.node("x").analytic, 3 * x ** 2 + np.cos(x))


def test_an_op_object_is_refused_in_a_yaml_spec(folder):
    path = spec_at(folder, """
        ops:
          op: 3
        inputs:
          x: [1.0]
        nodes:
          y: op(x)
    """)
    result = run_cli(path)
    assert result.exit_code == 2 and 'must be given as "module:attribute"' in result.output


def test_the_report_never_replaces_the_module_a_convention_names(folder):
    path = spec_at(folder, """
        ops:
          affine: {forward: "layers:affine_forward", backward: "layers:affine_backward"}
        inputs:
          x: [[1.0]]
          w: [[2.0]]
          b: [0.0]
        nodes:
          y: sum(affine(x, w, b))
    """)
    before = (folder / "layers.py").read_text()
    result = CliRunner().invoke(main, ["run", str(path), "--format", "json", "--output", str(folder / "layers.py")])
    assert result.exit_code == 2 and "which this run reads" in result.output
    assert (folder / "layers.py").read_text() == before
