"""Issue 8: kinks from the ops' own branch decisions (the ``branches`` hook), even where the central
difference happens to match, and the rule that the analytic value must be a one-sided slope or between."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from gradcheck import CheckOptions, check_spec
from gradcheck.ops.registry import all_builtin_ops

KINKY = '''
import numpy as np

class Abs:                       # declares its branches; a tie's gradient 0
    def forward(self, x): return np.abs(x)
    def vjp(self, g, out, x): return (g * np.sign(x),)
    def branches(self, x): return np.sign(x)

class AbsWrongAtZero(Abs):       # 3 at 0: neither one-sided slope (+-1) nor between them
    def vjp(self, g, out, x): return (g * np.where(x == 0, 3.0, np.sign(x)),)
'''


def write(tmp_path, text):
    (tmp_path / "kinky.py").write_text(KINKY)
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def node(result, name):
    return next(n for n in result.nodes if n.name == name)


@pytest.mark.parametrize("expr,value,index,slopes", [
    ("sum(abs(x))", "[0.0, 1.0, -2.0]", (0,), (1.0, -1.0)),               # central difference 0 = analytic 0
    ("max(x) * 2", "[1.0, 3.0, 3.0, -2.0]", (1,), (2.0, 0.0)),             # tie: analytic 1 = central 1
    ("sum(max_pool2d(x, kernel=2) * 3)", "[[[[1.0, 1.0], [0.5, 0.2]]]]", (0, 0, 0, 0), (3.0, 0.0)),
])
def test_ties_and_boundaries_are_kinks_even_where_the_central_difference_matches(tmp_path, expr, value, index, slopes):
    path = write(tmp_path, f"inputs: {{x: {value}}}\nnodes: {{y: '{expr}'}}\n")
    result = check_spec(path)
    x = node(result, "x")
    assert result.status == "pass" and x.status == "kink"
    element = next(e for e in x.elements if e.status == "kink" and e.index == index)
    assert sorted((element.right, element.left)) == pytest.approx(sorted(slopes), abs=1e-6)
    strict = check_spec(path, options=CheckOptions(strict=True))
    assert strict.status == "fail"


def test_a_custom_op_that_declares_branches_gets_kinks_and_a_wrong_value_there_fails(tmp_path):
    ok = check_spec(write(tmp_path, 'inputs: {x: [0.0, 1.5]}\nops: {a: "kinky:Abs"}\nnodes: {y: "sum(a(x))"}\n'))
    assert ok.status == "pass" and node(ok, "x").status == "kink"
    wrong = check_spec(write(tmp_path, 'inputs: {x: [0.0, 1.5]}\nops: {a: "kinky:AbsWrongAtZero"}\n'
                                       'nodes: {y: "sum(a(x))"}\n'))
    assert wrong.status == "fail" and node(wrong, "x").status == "fail"


def test_elements_away_from_a_branch_are_judged_as_usual(tmp_path):
    result = check_spec(write(tmp_path, "inputs: {x: [-1.0, 2.0]}\nnodes: {y: 'sum(relu(x) * x)'}\n"))
    assert node(result, "x").status == "pass"


@pytest.mark.parametrize("mode", ["full", "auto", "fast"])
def test_a_cnn_whose_every_pooling_window_ties_is_all_kinks_not_failures(tmp_path, mode):
    # every conv output equal: every window of max_pool2d ties (128 windows), no cap turns them into failures
    path = write(tmp_path, """
        inputs:
          x: {shape: [2, 1, 10, 10], init: ones}
          w: {shape: [4, 1, 3, 3], init: constant, value: 0.5}
          b: {shape: [4], init: constant, value: 0.1}
          v: {shape: [2, 4, 4, 4], init: normal, requires_grad: false}
        nodes:
          h: "relu(conv2d(x, w, b))"
          p: "max_pool2d(h, kernel=2)"
          loss: "sum(p * v)"
    """)
    result = check_spec(path, options=CheckOptions(mode=mode))
    assert result.status == "pass", [(n.name, n.status, n.message) for n in result.nodes]
    assert result.suspects == []
    if mode == "full":
        assert node(result, "h").kinks > 64


@pytest.mark.parametrize("name,args,params,kink_at", [
    ("relu", [np.array([0.0, 1.0])], {}, 0),
    ("abs", [np.array([0.0, 1.0])], {}, 0),
    ("leaky_relu", [np.array([0.0, 1.0])], {"slope": 0.1}, 0),
    ("maximum", [np.array([0.5, 2.0]), np.array([0.5, 0.0])], {}, 0),
    ("minimum", [np.array([0.5, 2.0]), np.array([0.5, 0.0])], {}, 0),
    ("clip", [np.array([1.0, 0.0])], {"lo": -1.0, "hi": 1.0}, 0),
    ("huber", [np.array([1.0, 0.2]), np.array([0.0, 0.0])], {"delta": 1.0}, 0),
])
def test_every_elementwise_branch_decision_changes_across_its_boundary(name, args, params, kink_at):
    op = all_builtin_ops()[name]
    def decisions(shift):
        moved = [a.copy() for a in args]
        moved[0][kink_at] += shift
        found = op.branches(*moved, **params)
        return found if isinstance(found, tuple) else (found,)
    at = decisions(0.0)
    assert any(not np.array_equal(d, r) for d, r in zip(decisions(1e-6), at, strict=True)) or \
        any(not np.array_equal(d, r) for d, r in zip(decisions(-1e-6), at, strict=True))
    # the element away from the boundary keeps its decision
    far = [a.copy() for a in args]
    far[0][1 - kink_at] += 1e-6
    moved = op.branches(*far, **params)
    moved = moved if isinstance(moved, tuple) else (moved,)
    assert all(np.array_equal(np.take(d, 1 - kink_at), np.take(r, 1 - kink_at)) for d, r in zip(moved, at, strict=True))


def test_every_op_with_kinks_declares_its_branches():
    missing = [name for name, op in all_builtin_ops().items() if op.has_kinks and op.branches is None]
    assert missing == []
