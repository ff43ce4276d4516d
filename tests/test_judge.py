"""The judge: one element-wise verdict (pass / fail / kink) behind full checks, suspects and every renderer."""
from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck import check_spec
from gradcheck.cli import main
from gradcheck.judge.verdict import MAX_LISTED_ELEMENTS, classify, element_status, outcome
from gradcheck.numeric import Slopes
from gradcheck.results import Status
from gradcheck.spec import Tolerance

TOL = Tolerance(atol=1e-6, rtol=1e-4)


# ------------------------------------------------------------------------------------------ closed-form verdicts
def test_a_value_within_atol_plus_rtol_passes():
    # allowed error at reference 2: 1e-6 + 1e-4 * 2 = 2.01e-4
    assert element_status(2.0 + 2.0e-4, 2.0, TOL) == Status.PASS
    assert element_status(2.0 + 2.1e-4, 2.0, TOL) == Status.FAIL


def test_a_wrong_value_fails_even_with_slopes_that_agree():
    assert element_status(3.0, 2.0, TOL) == Status.FAIL
    assert element_status(3.0, 2.0, TOL, slopes=Slopes(2.0, 2.0)) == Status.FAIL


def test_a_value_between_disagreeing_one_sided_slopes_is_a_kink():
    # relu at 0: right slope 1, left slope 0, central difference 1/2; 0, 1 and anything between are one-sided
    for analytic in (0.0, 1.0, 0.25):
        assert element_status(analytic, 0.5, TOL, slopes=Slopes(1.0, 0.0)) == Status.KINK
    assert element_status(0.0, 0.5, TOL, slopes=Slopes(0.0, 1.0)) == Status.KINK


def test_a_value_outside_the_slopes_is_a_fail():
    assert element_status(3.0, 0.5, TOL, slopes=Slopes(1.0, 0.0)) == Status.FAIL
    assert element_status(-0.1, 0.5, TOL, slopes=Slopes(1.0, 0.0)) == Status.FAIL


def test_slopes_are_only_asked_for_when_the_values_disagree():
    asked = []
    assert element_status(2.0, 2.0, TOL, slopes=lambda: asked.append(1) or Slopes(1.0, 0.0)) == Status.PASS
    assert not asked
    assert element_status(0.0, 0.5, TOL, slopes=lambda: asked.append(1) or Slopes(1.0, 0.0)) == Status.KINK
    assert asked == [1]


def test_nan_fails_on_either_side():
    assert element_status(float("nan"), 0.5, TOL, slopes=Slopes(1.0, 0.0)) == Status.FAIL
    assert element_status(0.5, float("nan"), TOL) == Status.FAIL
    assert element_status(0.5, 0.5, TOL, slopes=Slopes(float("nan"), 0.0)) == Status.PASS
    assert element_status(0.0, 0.5, TOL, slopes=Slopes(float("nan"), 1.0)) == Status.FAIL


def test_a_reference_too_noisy_for_the_tolerance_is_inconclusive_never_a_pass():
    # |a - n| = 1e-3 > 1e-6 + 1e-4 * 1: fails; if the reference itself may be 2e-3 off it cannot tell (issue 8:
    # a tolerance widened by the reference's error bound used to turn "cannot tell" into "pass")
    assert element_status(1.001, 1.0, TOL) == Status.FAIL
    assert element_status(1.001, 1.0, TOL, error_bound=2e-3) == Status.INCONCLUSIVE
    # a bound within the tolerance still widens what passes: 1.0001 is 1e-4 off, allowed 1e-6 + 1e-4 + 5e-5
    assert element_status(1.00015, 1.0, TOL, error_bound=5e-5) == Status.PASS
    assert element_status(1.00015, 1.0, TOL) == Status.FAIL
    failing, kinks, inconclusive = classify(np.array([1.001, 1.001]), np.array([1.0, 1.0]), TOL, np.array([0.0, 2e-3]))
    assert failing.tolist() == [True, False] and kinks.tolist() == [False, False]
    assert inconclusive.tolist() == [False, True]


def test_classify_is_element_wise():
    analytic = np.array([1.0, 3.0, 0.0, np.nan])
    numeric = np.array([1.0, 1.0, 0.5, 1.0])
    slopes = Slopes(np.array([1.0, 1.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0, 1.0]))
    failing, kinks, inconclusive = classify(analytic, numeric, TOL, 0.0, slopes)
    assert not inconclusive.any()
    assert failing.tolist() == [False, True, False, True]
    assert kinks.tolist() == [False, False, True, False]


def test_classify_gives_each_element_the_verdict_element_status_gives_it():
    # every pairing of a passing, a borderline, a failing and a NaN value with exact, resolving, too noisy and NaN
    # error bounds, and of the reference 0 (where only atol allows anything) and NaN
    cases = [(a, n, e) for n in (1.0, 0.0, np.nan) for a in (n, n + 1.5e-4, n + 1e-2, np.nan)
             for e in (0.0, 5e-5, 2e-3, np.inf, np.nan)]
    analytic, numeric, bounds = (np.array(column) for column in zip(*cases, strict=True))
    failing, kinks, inconclusive = classify(analytic, numeric, TOL, bounds)
    statuses = [Status.FAIL if f else Status.INCONCLUSIVE if i else Status.PASS
                for f, i in zip(failing, inconclusive, strict=True)]
    assert not kinks.any() and not (failing & inconclusive).any()  # one verdict per element
    assert statuses == [element_status(a, n, TOL, e) for a, n, e in cases]
    assert {Status.PASS, Status.FAIL, Status.INCONCLUSIVE} == set(statuses)


def test_outcome_counts_names_the_worst_and_lists_the_elements_worst_first():
    analytic = np.array([[1.0, 5.0], [0.0, 2.5]])
    numeric = np.array([[1.0, 1.0], [0.5, 1.0]])
    failing = np.array([[False, True], [False, True]])
    kinks = np.array([[False, False], [True, False]])
    found = outcome(analytic, numeric, failing, kinks, TOL)
    assert (found.status, found.failing, found.kinks) == (Status.FAIL, 2, 1)
    assert found.worst_index == (0, 1) and (found.worst_analytic, found.worst_numeric) == (5.0, 1.0)
    assert found.max_abs_error == 4.0
    assert [(e.index, e.status) for e in found.elements] == [((0, 1), Status.FAIL), ((1, 1), Status.FAIL),
                                                              ((1, 0), Status.KINK)]
    assert found.elements[1].abs_error == 1.5


def test_outcome_lists_a_capped_number_but_counts_all():
    size = MAX_LISTED_ELEMENTS + 7
    analytic = np.arange(size, dtype=float) + 1.0   # error i + 1 at element i: the last is the worst
    found = outcome(analytic, np.zeros(size), np.ones(size, bool), np.zeros(size, bool), TOL)
    assert found.failing == size and len(found.elements) == MAX_LISTED_ELEMENTS
    assert found.elements[0].index == (size - 1,) and found.worst_index == (size - 1,)


def test_status_prints_as_its_value():
    assert f"{Status.KINK}" == "kink" and str(Status.FAIL) == "fail" and f"{Status.PASS:>6}" == "  pass"
    assert json.dumps({"status": Status.SKIP}) == '{"status": "skip"}'
    assert {"pass": 1}[Status.PASS] == 1 and Status("error") is Status.ERROR


# ------------------------------------------------------------------------------------------ suspects at a kink
BAD_OP = textwrap.dedent("""
    import numpy as np
    class Bad:
        def forward(self, x):
            return x * x
        def vjp(self, g, out, x):
            return (g * (2 * x + 1),)    # wrong: the derivative of x*x is 2x
""")

RELU_AND_BAD = textwrap.dedent("""
    name: relu at its kink and a wrong op
    inputs:
      x: [0.0, 1.0, 2.0]
    ops:
      bad: "ops:Bad"
    nodes:
      f: sum(relu(x)) + sum(bad(x))
""")


@pytest.fixture
def relu_and_bad(tmp_path):
    (tmp_path / "ops.py").write_text(BAD_OP)
    path = tmp_path / "spec.yaml"
    path.write_text(RELU_AND_BAD)
    return path


def test_a_correct_op_at_its_kink_is_not_a_suspect(relu_and_bad):
    result = check_spec(relu_and_bad)
    x = next(n for n in result.nodes if n.name == "x")
    assert x.status == Status.FAIL
    assert [(s.op, s.argument_node) for s in result.suspects] == [("bad", "x")]
    assert result.suspects[0].message  # confirmed by the op-local check, not named for want of a better one


def test_verbose_table_lists_the_kink_element_as_kink_and_the_failures_as_fail(relu_and_bad):
    result = CliRunner().invoke(main, ["run", str(relu_and_bad), "--verbose"])
    assert result.exit_code == 1
    rows = {}
    for line in result.output.splitlines():
        match = re.match(r"^\s+\[(\d+)\]\s.*\s(pass|fail|kink)\s*$", line)
        if match:
            rows[int(match.group(1))] = match.group(2)
    # x = 0: relu's one-sided slopes 0 and 1 frame the analytic value; x = 1, 2: bad's vjp is 1 off
    assert rows == {0: "kink", 1: "fail", 2: "fail"}
    assert "2 of 3 elements fail" in result.output


def test_json_and_results_agree_on_the_element_counts(relu_and_bad):
    result = CliRunner().invoke(main, ["run", str(relu_and_bad), "--format", "json"])
    x = next(n for n in json.loads(result.stdout)["specs"][0]["nodes"] if n["name"] == "x")
    assert (x["failing_elements"], x["kink_elements"]) == (2, 1)
    node = next(n for n in check_spec(relu_and_bad).nodes if n.name == "x")
    assert [(e.index, e.status) for e in node.elements_of(Status.KINK)] == [((0,), Status.KINK)]
    assert sorted(e.index for e in node.elements_of(Status.FAIL)) == [(1,), (2,)]
