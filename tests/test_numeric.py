"""The numeric reference and the comparison: steps, domains, kinks, float32, modes, methods."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from gradcheck import CheckOptions, Overrides, check_spec


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def node(result, name):
    return next(n for n in result.nodes if n.name == name)


@pytest.mark.parametrize("expr,value", [
    ("sum(relu(x))", "[-1.0, 0.0, 2.0]"),         # analytic 0, central difference 1/2
    ("sum(maximum(x, 0.5))", "[0.5, 2.0]"),       # a tie: analytic 1, central 1/2
    ("sum(leaky_relu(x, slope=0.1))", "[0.0, 1.0]"),
    ("hinge(x, 1.0)", "[1.0, 0.2]"),              # exactly at the margin
])
def test_kinks_are_not_failures(tmp_path, expr, value):
    result = check_spec(write(tmp_path, f"inputs: {{x: {value}}}\nnodes: {{f: '{expr}'}}\n"))
    x = node(result, "x")
    assert x.status == "kink", (x.status, x.worst_analytic, x.worst_numeric)
    assert result.status == "pass"
    strict = check_spec(tmp_path / "spec.yaml", options=CheckOptions(strict=True))
    assert strict.status == "fail"


@pytest.mark.parametrize("expr,value", [("sum(abs(x))", "[0.0, 1.5]"), ("max(x)", "[1.0, 3.0, 3.0]")])
def test_symmetric_kinks_where_the_subgradient_matches_pass(tmp_path, expr, value):
    # abs'(0) = 0 and a max tie split 1/2 : 1/2 equal the central difference: nothing to flag
    result = check_spec(write(tmp_path, f"inputs: {{x: {value}}}\nnodes: {{f: '{expr}'}}\n"))
    assert result.status == "pass" and node(result, "x").status in ("pass", "kink")


def test_a_wrong_gradient_at_a_kink_is_still_a_failure(tmp_path):
    # the derivative of relu at 0 may be 0 or 1 (or between); 3 is wrong
    (tmp_path / "ops.py").write_text(textwrap.dedent("""
        import numpy as np
        class BadRelu:
            def forward(self, x):
                return np.maximum(x, 0)
            def vjp(self, g, out, x):
                return (g * np.where(x > 0, 1.0, 3.0),)
    """))
    result = check_spec(write(tmp_path, """
        inputs: {x: [0.0, -1.0]}
        ops: {badrelu: "ops:BadRelu"}
        nodes: {f: sum(badrelu(x))}
    """))
    x = node(result, "x")
    assert x.status == "fail" and x.failing == 2
    assert result.suspects[0].op == "badrelu"


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_steps_scale_with_the_value(tmp_path, scale):
    # log and 1/x at inputs of size 1e-4 or 1e4: a fixed step would fail one of them
    result = check_spec(write(tmp_path, f"""
        inputs: {{x: [{scale}, {2 * scale}, {3 * scale}]}}
        nodes: {{f: sum(log(x) + 1 / x + x ** 3)}}
    """))
    assert result.status == "pass", [(n.name, n.max_rel_error) for n in result.nodes]
    x = node(result, "x")
    expected = 1 / x.value - 1 / x.value ** 2 + 3 * x.value ** 2
    np.testing.assert_allclose(x.numeric, expected, rtol=1e-6)


def test_steps_stay_inside_the_domain(tmp_path):
    result = check_spec(write(tmp_path, """
        inputs: {x: [1e-9, 4.0]}
        nodes: {f: sum(sqrt(x)) + sum(log(x))}
    """))
    x = node(result, "x")
    assert np.all(np.isfinite(x.numeric))
    assert result.status == "pass", (x.analytic, x.numeric)


def test_float32_pass_compares_against_float64_reference(tmp_path):
    path = write(tmp_path, """
        dtype: float32
        inputs:
          W: {shape: [8, 5], init: normal, std: 0.5}
          x: {shape: [4, 8], init: normal}
        nodes:
          h: tanh(x @ W)
          loss: mean(h * h)
    """)
    result = check_spec(path)
    assert result.status == "pass"
    assert result.output_value.dtype == np.float32
    w = node(result, "W")
    # issue 8: correctness is judged in float64 with float64 tolerances, the float32 pass's precision separately
    assert w.atol == 1e-6 and w.rtol == 1e-4
    assert w.max_abs_error < 1e-8          # the float64 gradient against the float64 reference
    assert "within" in w.precision and "atol 0.0001, rtol 0.01" in w.precision
    strict64 = check_spec(path, Overrides(atol=1e-12, rtol=1e-12))
    assert strict64.status == "fail"       # float32 noise a float64 tolerance flags, as a precision failure
    assert "float32 gradient off the float64 one" in node(strict64, "W").precision


def test_fast_mode_probes_and_localises_a_wrong_element(tmp_path):
    (tmp_path / "ops.py").write_text(textwrap.dedent("""
        import numpy as np
        class AlmostTanh:
            def forward(self, x):
                return np.tanh(x)
            def vjp(self, g, out, x):
                grad = g * (1 - out * out)
                grad[3, 17] *= 1.5      # one wrong element
                return (grad,)
    """))
    path = write(tmp_path, """
        inputs: {x: {shape: [40, 50], init: normal}}
        ops: {t: "ops:AlmostTanh"}
        nodes: {f: sum(t(x) ** 2)}
    """)
    result = check_spec(path, options=CheckOptions(mode="fast"))
    x = node(result, "x")
    assert x.checked == "probes"
    assert x.status == "fail" and x.worst_index == (3, 17)
    assert result.evaluations < 200          # 2000 elements, found with probes + bisection
    good = check_spec(write(tmp_path, "inputs: {x: {shape: [40, 50], init: normal}}\nnodes: {f: sum(tanh(x) ** 2)}\n",
                            name="good.yaml"), options=CheckOptions(mode="fast"))
    assert good.status == "pass" and node(good, "x").checked == "probes"


@pytest.mark.parametrize("method", ["central", "forward", "backward", "five-point", "richardson", "complex-step"])
def test_every_method_checks_a_smooth_function(tmp_path, method):
    path = write(tmp_path, f"""
        numeric: {{method: {method}}}
        inputs: {{x: [0.3, -1.2, 2.5], w: [[0.5, -0.1, 0.2]]}}
        nodes: {{f: sum(sigmoid(w * x) * exp(x) / (1 + x * x))}}
    """)
    result = check_spec(path)
    assert result.status == "pass", method
    x = node(result, "x")
    accuracy = {"forward": 1e-6, "backward": 1e-6, "central": 1e-9, "five-point": 1e-10, "richardson": 1e-10,
                "complex-step": 1e-14}[method]
    assert x.max_abs_error < accuracy, (method, x.max_abs_error)


def test_complex_step_falls_back_through_non_analytic_ops(tmp_path):
    (tmp_path / "ops.py").write_text("import numpy as np\nclass Sq:\n    def forward(self, x):\n        return x * x\n"
                                     "    def vjp(self, g, out, x):\n        return (2 * g * x,)\n")
    result = check_spec(write(tmp_path, """
        numeric: {method: complex-step}
        inputs: {x: [0.3, 1.2]}
        ops: {sq: "ops:Sq"}
        nodes: {f: sum(sq(x))}
    """))
    assert result.status == "pass"
    assert any("complex-step cannot pass through op 'sq'" in note for note in result.notes)


def test_complex_safety_may_depend_on_the_op_parameters(tmp_path):
    # the 'modulus' form squares |x|: right on reals, but under complex-step |x + ih|^2 has no imaginary part
    (tmp_path / "ops.py").write_text(textwrap.dedent("""
        import numpy as np
        class Square:
            @staticmethod
            def complex_safe(params):
                return params["form"] == "product"
            def forward(self, x, form="product"):
                return x * x if form == "product" else np.abs(x) ** 2
            def vjp(self, g, out, x, form="product"):
                return (2 * g * x,)
    """))
    x = np.array([0.3, -1.2, 2.5])
    for form, falls_back in (("product", False), ("modulus", True)):
        result = check_spec(write(tmp_path, f"""
            numeric: {{method: complex-step}}
            inputs: {{x: {x.tolist()}}}
            ops: {{sq: "ops:Square"}}
            nodes: {{f: "sum(sq(x, form='{form}') * sin(x))"}}
        """))
        assert result.status == "pass", form
        assert any("complex-step cannot pass through op 'sq'" in note for note in result.notes) == falls_back, form
        exact = 2 * x * np.sin(x) + x * x * np.cos(x)
        numeric = np.asarray(node(result, "x").numeric, dtype=np.float64)
        accuracy = 1e-12 if falls_back else 4e-16  # Richardson behind the real-only form; complex-step's few ulps
        assert np.max(np.abs(numeric - exact) / np.maximum(1, np.abs(exact))) < accuracy, form


def test_a_complex_safe_hook_that_raises_falls_back_and_says_so(tmp_path):
    (tmp_path / "ops.py").write_text(textwrap.dedent("""
        class Square:
            @staticmethod
            def complex_safe(params):
                return params["no such keyword"]
            def forward(self, x):
                return x * x
            def vjp(self, g, out, x):
                return (2 * g * x,)
    """))
    result = check_spec(write(tmp_path, """
        numeric: {method: complex-step}
        inputs: {x: [0.3, -1.2]}
        ops: {sq: "ops:Square"}
        nodes: {f: sum(sq(x))}
    """))
    assert result.status == "pass"
    assert any("op 'sq' (its complex_safe hook raised KeyError" in note for note in result.notes), result.notes


def test_a_custom_op_that_raises_at_a_perturbed_point_is_differenced_from_the_side_it_allows(tmp_path):
    # any exception of the op's own code outside its domain is the op's failure there, not gradcheck's
    (tmp_path / "ops.py").write_text(textwrap.dedent("""
        import numpy as np
        class SquareUpToOne:
            def forward(self, x):
                if np.any(x > 1.0):
                    raise RuntimeError("defined up to 1 only")
                return x * x
            def vjp(self, g, out, x):
                return (2 * g * x,)
    """))
    result = check_spec(write(tmp_path, """
        inputs: {x: [1.0, 0.5]}
        ops: {sq: "ops:SquareUpToOne"}
        nodes: {f: sum(sq(x))}
    """))
    assert result.status == "pass", result.error
    assert np.all(np.isfinite(node(result, "x").numeric))


def test_a_bug_below_the_numeric_reference_is_an_internal_error_not_a_nan(tmp_path, monkeypatch):
    import gradcheck.numeric.evaluator as evaluator

    def buggy(node, args, dtype, params=None):
        raise TypeError("a bug in gradcheck")

    monkeypatch.setattr(evaluator, "evaluate_node", buggy)
    # tanh and sum carry perturbations by their change rules, not by forward: a bug there must surface too
    # (node by node, or several sources' copies at once: the joint sweep a one-level step search takes)
    monkeypatch.setattr(evaluator.Evaluator, "node_change", staticmethod(lambda *args: buggy(None, None, None)))
    monkeypatch.setattr(evaluator.Evaluator, "boxed_change", staticmethod(lambda *args: buggy(None, None, None)))
    result = check_spec(write(tmp_path, "inputs: {x: [0.3, 1.2]}\nnodes: {f: sum(tanh(x))}\n"))
    assert result.status == "error"
    assert "internal error: TypeError" in result.error.message and "please report" in result.error.message


def test_a_bug_in_a_change_rule_is_an_internal_error_not_a_nan(tmp_path, monkeypatch):
    from gradcheck.ops import BUILTIN_OPS

    def buggy(*args, **params):
        raise TypeError("a bug in a change rule")

    monkeypatch.setattr(BUILTIN_OPS["tanh"], "propagate", buggy)
    result = check_spec(write(tmp_path, "inputs: {x: [0.3, 1.2]}\nnodes: {f: sum(tanh(x))}\n"))
    assert result.status == "error"
    assert "internal error: TypeError" in result.error.message


def test_estimates_are_returned_with_their_steps_and_error_bounds(tmp_path):
    from gradcheck.engine import forward
    from gradcheck.graph import build_graph
    from gradcheck.numeric import Evaluator, NodeDifferentiator
    from gradcheck.spec import load_spec

    graph = build_graph(load_spec(write(tmp_path, "inputs: {x: [0.5, 2.0]}\nnodes: {f: sum(x * x * x)}\n")))
    reference = forward(graph, "float64")
    differ = NodeDifferentiator(Evaluator(graph, reference.values, reference.projection), graph.by_name["x"],
                                "central", None)
    estimate = differ.gradient()
    assert estimate.values == pytest.approx([0.75, 12.0], rel=1e-8)       # 3 x²
    assert estimate.steps.shape == (2,) and np.all(estimate.steps > 0)
    assert np.all(estimate.error_bound > 0) and np.all(estimate.error_bound < 1e-6)
    refined = differ.refined(1, estimate.steps[1])
    assert refined.value == pytest.approx(12.0, rel=1e-10) and refined.step >= 10 * estimate.steps[1]
    right, left = differ.one_sided(0)
    assert right > 0.75 > left                                              # convex: the right slope is steeper
