"""A custom op's batching and propagate declarations are its author's claims: a wrong one costs time, never a
verdict.  Each is compared with the path it replaces (one copy at a time, forward recomputed) the first time it is
used at a node; where they differ beyond rounding it is set aside at that node, and a note says so."""
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gradcheck import check
from gradcheck.batching import EPS, batched_forward, beyond_rounding
from gradcheck.graph import build_graph
from gradcheck.pipeline import load

OPS = """
import numpy as np
from gradcheck.ops.changes import Change

class Centred:
    '''(x - mean(x)) * w, the mean over every element'''
    batching = "broadcast"        # wrong: the mean runs over the stacked copies too
    def forward(self, x, w):
        return (x - x.mean()) * w
    def vjp(self, g, out, x, w):
        gx = g * w
        return gx - gx.mean(), g * (x - x.mean())

class CentredMeanForgotten(Centred):
    def vjp(self, g, out, x, w):
        return g * w, g * (x - x.mean())        # wrong: forgets the mean's term

class CentredBatchedByHand(Centred):
    batching = "custom"
    def forward_batched(self, args, batched):   # wrong: the same mistake, by hand
        x, w = args
        return (x - x.mean()) * w

class CentredBatchedByHandMeanForgotten(CentredBatchedByHand):
    vjp = CentredMeanForgotten.vjp

class CentredRows(Centred):
    '''(x - mean(x)) * w over the last axis: broadcasting extra leading axes is right'''
    batching = "broadcast"
    batched_calls = 0
    def forward(self, x, w):
        if np.ndim(x) > 1:
            CentredRows.batched_calls += 1
        return (x - x.mean(axis=-1, keepdims=True)) * w

class Triple:
    '''3 x'''
    def forward(self, x):
        return 3 * x
    def vjp(self, g, out, x):
        return (3 * g,)
    def propagate(self, changes, out, x):
        change = changes[0]
        return Change(change.shape, change.pins, 2 * change.delta)   # wrong: 2 where forward has 3

class TripleAsTwice(Triple):
    def vjp(self, g, out, x):
        return (2 * g,)                          # wrong, and agreeing with the wrong propagate rule

class TripleRightly(Triple):
    propagated = 0
    def propagate(self, changes, out, x):
        TripleRightly.propagated += 1
        change = changes[0]
        return Change(change.shape, change.pins, 3 * change.delta)

class SoftAbs:
    '''sqrt(|x|^2 + 1)'''
    complex_safe = True                          # wrong: np.abs drops the imaginary part of a complex step
    def forward(self, x):
        return np.sqrt(np.abs(x) ** 2 + 1)
    def vjp(self, g, out, x):
        return (g * x / out,)

class SoftAbsWrong(SoftAbs):
    def vjp(self, g, out, x):
        return (g * x,)                          # wrong: forgets 1 / out

class Soft:
    '''sqrt(x^2 + 1), analytic'''
    complex_safe = True
    complex_calls = 0
    def forward(self, x):
        if np.iscomplexobj(x):
            Soft.complex_calls += 1
        return np.sqrt(x * x + 1)
    def vjp(self, g, out, x):
        return (g * x / out,)

softabs, softabs_wrong, soft = SoftAbs(), SoftAbsWrong(), Soft()
centred, centred_wrong = Centred(), CentredMeanForgotten()
by_hand, by_hand_wrong = CentredBatchedByHand(), CentredBatchedByHandMeanForgotten()
rows = CentredRows()
triple, triple_wrong, triple_rightly = Triple(), TripleAsTwice(), TripleRightly()
"""


def write_spec(tmp_path, op: str, two_arguments: bool = True, loss: str = "sum(y * y)"):
    (tmp_path / "claims.py").write_text(OPS)
    path = tmp_path / "spec.yaml"
    call = f"{op}(x, w)" if two_arguments else f"{op}(x * w)"
    path.write_text(textwrap.dedent(f"""
        ops: {{{op}: "claims:{op}"}}
        seed: 3
        inputs:
          x: {{shape: [5], init: normal}}
          w: {{shape: [5], init: normal}}
        nodes:
          y: {call}
          loss: {loss}
    """))
    return path


MODES = ["full", "auto", "fast"]
WRONG_BATCHING = [("centred", "centred_wrong"), ("by_hand", "by_hand_wrong")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("right,wrong", WRONG_BATCHING)
def test_a_wrong_batching_declaration_changes_no_verdict(tmp_path, mode, right, wrong):
    passed = check(write_spec(tmp_path, right), mode=mode)
    assert passed.status == "pass", [n.status for n in passed.nodes]
    note = [n for n in passed.notes if "batching" in n and f"'{right}'" in n]
    assert note and "set aside" in note[0]
    failed = check(write_spec(tmp_path, wrong), mode=mode)
    assert failed.status == "fail"


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_propagate_rule_changes_no_verdict(tmp_path, mode):
    passed = check(write_spec(tmp_path, "triple", two_arguments=False), mode=mode)
    assert passed.status == "pass", [(n.name, n.status) for n in passed.nodes]
    note = [n for n in passed.notes if "propagate" in n and "'triple'" in n]
    assert note and "set aside" in note[0]
    assert check(write_spec(tmp_path, "triple_wrong", two_arguments=False), mode=mode).status == "fail"


def claims_module(tmp_path):
    """The module the check imported the spec's ops from."""
    return next(m for m in list(sys.modules.values())
                if getattr(m, "__file__", None) and Path(m.__file__) == tmp_path / "claims.py")


@pytest.mark.parametrize("op,two_arguments,counter", [("rows", True, ("CentredRows", "batched_calls")),
                                                      ("triple_rightly", False, ("TripleRightly", "propagated"))])
def test_right_declarations_are_kept_and_leave_no_note(tmp_path, op, two_arguments, counter):
    # tanh's third derivative shows in the truncation estimates, so the step search takes a second sweep through
    # the op after the one that verified its rule (sum(y * y)'s estimates are round-off alone: one sweep settles it)
    result = check(write_spec(tmp_path, op, two_arguments, loss="sum(tanh(y))"), mode="full")
    assert result.status == "pass"
    assert not [n for n in result.notes if "set aside" in n]
    used = getattr(getattr(claims_module(tmp_path), counter[0]), counter[1])
    assert used > 1  # used beyond the one call that verified it


def test_the_guard_compares_copies_with_one_at_a_time_evaluations(tmp_path):
    """batched_forward itself: the wrong rule's stacked result is refused (None: the caller loops), the right one's
    is returned, and each is compared once per node and pattern of batched arguments, on its first and last copies."""
    graph = build_graph(load(write_spec(tmp_path, "centred")))
    node = next(n for n in graph.nodes if n.name == "y")
    x, w = np.array([1.0, 2.0, 4.0, 8.0, 16.0]), np.ones(5)
    stacked = np.stack([x, x, x + 1e-6 * np.eye(5)[2]])
    singles = []

    def evaluate(node, args, params=None):
        if np.ndim(args[0]) == 1:
            singles.append(args[0].copy())
        return node.op_info.impl.forward(*args)

    assert batched_forward(node, [stacked, w], [True, False], 3, (5,), evaluate) is None
    assert len(singles) == 2 and np.array_equal(singles[0], x) and np.array_equal(singles[1], stacked[2])
    singles.clear()
    assert batched_forward(node, [stacked, w], [True, False], 3, (5,), evaluate) is None
    assert singles == []  # refused from what the node keeps, not compared again
    # with the copies equal, the wrong rule happens to agree: the first comparison decides for the pattern
    other = build_graph(load(write_spec(tmp_path, "centred")))
    node = next(n for n in other.nodes if n.name == "y")
    same = np.stack([x, x])
    assert np.allclose(batched_forward(node, [same, w], [True, False], 2, (5,), evaluate), (x - x.mean()) * w)
    assert node.declarations == {("batching", "broadcast", (True, False)): 0.0}


def test_rounding_is_not_a_difference_and_nan_where_the_other_is_not_is():
    values = np.array([1.0, -1e-3, 1e6])
    assert beyond_rounding(values * (1 + 8 * EPS), values) == 0.0
    assert beyond_rounding(values + 1e-7, values) == 0.0  # 1024 eps of the largest, 1e6, is 2.3e-7
    assert beyond_rounding(values + 1e-6, values) == pytest.approx(1e-6, rel=1e-3)
    assert beyond_rounding(values[:2] + 1e-7, values[:2]) == pytest.approx(1e-7, rel=1e-3)
    assert beyond_rounding(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) == 0.0
    assert beyond_rounding(np.array([np.nan, 1.0]), np.array([0.0, 1.0])) == float("inf")


@pytest.mark.parametrize("mode", ["full", "auto"])
def test_a_wrong_complex_safe_declaration_changes_no_verdict(tmp_path, mode):
    passed = check(write_spec(tmp_path, "softabs", two_arguments=False), mode=mode, method="complex-step")
    assert passed.status == "pass", [(n.name, n.status) for n in passed.nodes]
    note = [n for n in passed.notes if "'softabs'" in n and "complex_safe" in n]
    assert note and "Richardson" in note[0]
    failed = check(write_spec(tmp_path, "softabs_wrong", two_arguments=False), mode=mode, method="complex-step")
    assert failed.status == "fail"


def test_a_right_complex_safe_declaration_keeps_complex_step(tmp_path):
    result = check(write_spec(tmp_path, "soft", two_arguments=False), mode="full", method="complex-step")
    assert result.status == "pass"
    assert not [n for n in result.notes if "complex" in n]
    assert claims_module(tmp_path).Soft.complex_calls > 1  # the check's own complex step, then the reference's
