"""Issue 8: kinks of ops that declare no ``branches`` (custom ops) are seen also where the analytic value equals
the central difference, in every mode and with every method; smooth functions with large curvature and smooth
joins are not kinks.  The one-sided slopes expected are those of the closed forms in tests/data/undeclared_kinks.py."""
from __future__ import annotations

import importlib.util
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck import CheckOptions, check_op, check_spec
from gradcheck.cli import main
from gradcheck.spec import Overrides

OPS = Path(__file__).resolve().parent / "data" / "undeclared_kinks.py"
METHODS = ("central", "forward", "backward", "five-point", "richardson", "complex-step")


def write(tmp_path, text, name="spec.yaml"):
    shutil.copy(OPS, tmp_path / "undeclared_kinks.py")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def checked(path, mode="full", method=None, strict=False, **options):
    return check_spec(path, Overrides(method=method), CheckOptions(mode=mode, strict=strict, **options))


def node(result, name):
    return next(n for n in result.nodes if n.name == name)


def kink_element(result, name, index):
    return next(e for e in node(result, name).elements if e.status == "kink" and e.index == index)


ABS = """
    inputs: {x: [0.0, 1.5, -2.0]}
    ops: {myabs: "undeclared_kinks:Abs"}
    nodes: {y: "sum(myabs(x))"}
"""


@pytest.mark.parametrize("mode,method", [("full", m) for m in METHODS] + [("auto", "central"), ("fast", "central"),
                                                                          ("fast", "richardson")])
def test_a_custom_abs_at_zero_is_a_kink_where_its_vjp_equals_the_central_difference(tmp_path, mode, method):
    path = write(tmp_path, ABS)
    result = checked(path, mode, method)
    assert result.status == "pass" and node(result, "x").status == "kink"
    element = kink_element(result, "x", (0,))
    assert (element.right, element.left) == pytest.approx((1.0, -1.0), abs=1e-6)
    assert "'myabs'" in node(result, "x").message  # the op without declared branches is named
    assert checked(path, mode, method, strict=True).status == "fail"


@pytest.mark.parametrize("mode", ["full", "auto", "fast"])
def test_declared_branches_that_miss_the_decision_do_not_hide_the_kink(tmp_path, mode):
    """A custom op's branches are its author's claim: a constant for abs reports no decision changing at 0,
    and the kink is still measured (it passed, also under --strict, while only ops without branches were)."""
    path = write(tmp_path, ABS.replace("undeclared_kinks:Abs", "undeclared_kinks:AbsMissingItsDecision"))
    result = checked(path, mode)
    assert result.status == "pass" and node(result, "x").status == "kink"
    assert "whose `branches` report no decision changing there: 'myabs'" in node(result, "x").message
    assert checked(path, mode, strict=True).status == "fail"
    wrong = write(tmp_path, ABS.replace("undeclared_kinks:Abs", "undeclared_kinks:AbsMissingItsDecisionWrongAtZero"))
    assert checked(wrong, mode).status == "fail"


def test_a_piecewise_linear_op_whose_average_slope_is_its_vjp_is_a_kink(tmp_path):
    # 3 * vee(x) at 1: slopes 6 and -3, the central difference (6 - 3) / 2 = 1.5 = the vjp's 3 * 0.5
    path = write(tmp_path, """
        inputs: {x: [1.0, 2.0, 0.0]}
        ops: {vee: "undeclared_kinks:Vee"}
        nodes: {y: "sum(vee(x) * 3)"}
    """)
    for method in ("central", "five-point"):
        result = checked(path, method=method)
        element = kink_element(result, "x", (0,))
        assert (element.right, element.left) == pytest.approx((6.0, -3.0), abs=1e-6)
        assert [e.index for e in node(result, "x").elements] == [(0,)]  # 2 and 0 are away from the kink


def test_a_one_sided_vjp_that_a_forward_difference_matches_is_a_kink(tmp_path):
    path = write(tmp_path, """
        inputs: {x: [0.0, 0.7]}
        ops: {relu: "undeclared_kinks:ReluRightAtZero"}
        nodes: {y: "sum(relu(x) * 2)"}
    """)
    result = checked(path, method="forward")
    element = kink_element(result, "x", (0,))
    assert (element.right, element.left) == pytest.approx((2.0, 0.0), abs=1e-6)
    assert checked(path, method="forward", strict=True).status == "fail"


def test_a_tie_of_a_custom_max_splitting_its_gradient_is_a_kink_for_both_arguments(tmp_path):
    path = write(tmp_path, """
        inputs: {a: [1.0, 2.0], b: [1.0, 0.5]}
        ops: {mx: "undeclared_kinks:PairMax"}
        nodes: {y: "sum(mx(a, b))"}
    """)
    result = checked(path)
    for name in ("a", "b"):
        element = kink_element(result, name, (0,))
        assert (element.right, element.left) == pytest.approx((1.0, 0.0), abs=1e-6)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_vjp_outside_the_slopes_at_an_undeclared_kink_fails(tmp_path, mode):
    path = write(tmp_path, """
        inputs: {x: [0.0, 1.5]}
        ops: {myabs: "undeclared_kinks:AbsWrongAtZero"}
        nodes: {y: "sum(myabs(x))"}
    """)
    result = checked(path, mode)
    assert result.status == "fail" and node(result, "x").status == "fail"


@pytest.mark.parametrize("mode,options", [("fast", {}), ("auto", {"full_limit": 100})])
def test_one_kink_in_a_1000_element_node_checked_by_probes_is_found(tmp_path, mode, options):
    x = np.linspace(-2.0, 2.0, 1000) + 1e-3  # no element at 0 ...
    x[617] = 0.0                              # ... but this one
    path = write(tmp_path, f"""
        inputs: {{x: {x.tolist()}}}
        ops: {{myabs: "undeclared_kinks:Abs"}}
        nodes: {{y: "sum(myabs(x) * 2)"}}
    """)
    result = checked(path, mode, **options)
    x_result = node(result, "x")
    assert x_result.status == "kink" and x_result.kinks == 1
    element = kink_element(result, "x", (617,))
    assert (element.right, element.left) == pytest.approx((2.0, -2.0), abs=1e-6)


def test_auto_mode_does_not_vouch_for_a_node_behind_a_kink_the_local_check_met(tmp_path):
    # with no global budget the middle node h is vouched for by the local checks; myabs's check meets its kink
    # at h = 0 and cannot judge it, so h is checked itself
    path = write(tmp_path, """
        inputs: {x: [1.0, 2.5]}
        ops: {myabs: "undeclared_kinks:Abs"}
        nodes:
          h: x - 1
          y: "sum(myabs(h) * 2)"
    """)
    result = checked(path, "auto", global_budget=0)
    assert node(result, "h").status == "kink" and node(result, "h").checked != "local"


SMOOTH = [
    ("xrelu", "XRelu", "[0.0, -1.0, 0.5]"),          # a smooth join at 0
    ("huber", "Huber", "[1.0, -1.0, 0.3, 2.0]"),     # the boundaries of the quadratic part
    ("myexp", "Exp", "[35.0, 30.0]"),                # large curvature: f'' = f = 1.6e15
    ("mysin", "Sin", "[1000000.0, 3000000.0]"),      # far from zero: the relative step spans periods
    ("smoothabs", "SmoothAbs", "[0.0, 1.0, -1.0]"),  # the jump measured at the central step is 0.17 at 0, but
]                                                    # falls 64-fold as the step does


@pytest.mark.parametrize("name,op,values", SMOOTH)
def test_smooth_custom_ops_with_large_curvature_or_smooth_joins_pass_under_strict(tmp_path, name, op, values):
    path = write(tmp_path, f"""
        inputs: {{x: {values}}}
        ops: {{{name}: "undeclared_kinks:{op}"}}
        nodes: {{y: "sum({name}(x) * 0.5)"}}
    """)
    for mode, method in [("full", "central"), ("full", "five-point"), ("full", "forward"), ("full", "complex-step"),
                         ("fast", "central")]:
        result = checked(path, mode, method, strict=True)
        assert result.status == "pass", (mode, method, [(n.name, n.status, n.message) for n in result.nodes])
        assert all(n.kinks == 0 for n in result.nodes)


def test_strict_turns_an_undeclared_kink_into_exit_1_and_its_smooth_twin_stays_0(tmp_path):
    kinked = write(tmp_path, ABS)
    smooth = write(tmp_path, """
        inputs: {x: [0.0, 1.5, -2.0]}
        ops: {xrelu: "undeclared_kinks:XRelu"}
        nodes: {y: "sum(xrelu(x))"}
    """, name="smooth.yaml")
    runner = CliRunner()
    assert runner.invoke(main, ["run", str(kinked), "-q"]).exit_code == 0
    assert runner.invoke(main, ["run", str(kinked), "-q", "--strict"]).exit_code == 1
    assert runner.invoke(main, ["run", str(smooth), "-q", "--strict"]).exit_code == 0


def test_check_op_on_a_custom_op_at_its_undeclared_kink():
    loader = importlib.util.spec_from_file_location("undeclared_kinks", OPS)
    assert loader is not None and loader.loader is not None
    ops = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(ops)
    result = check_op(ops.Abs, np.array([0.0, 1.0, -2.0]), strict=True)
    assert result.status == "fail" and result.node("x").status == "kink"


def test_the_kink_line_gives_the_slopes_the_analytic_value_lies_within_and_names_the_op(tmp_path):
    # custom abs with vjp sign(x): at x = 0 the analytic 0 lies between the slopes 1 and -1 of |x|
    shown = CliRunner().invoke(main, ["run", str(write(tmp_path, ABS))]).output
    line = " ".join(next(text for text in shown.split("\n\n") if "kink at" in text).split())
    assert "analytic 0 lies within the one-sided slopes" in line
    assert "op(s) downstream without declared branches: 'myabs'" in line
