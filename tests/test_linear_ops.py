"""The linear_in hook: an op declares the arguments it is affine in, and its local check reads J d off two
evaluations at a long step there.  Every declaration of a registered op is checked against independent finite
differences; a wrong declaration by a custom op costs time, never a verdict."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from gradcheck.engine import backward, forward
from gradcheck.graph import Node, build_graph
from gradcheck.judge.local import LINEAR_STEPS, OpCheck
from gradcheck.ops import BUILTIN_OPS
from gradcheck.ops.registry import custom_op_info, linear_positions
from gradcheck.pipeline import load
from gradcheck.spec import Tolerance

from .test_ops_registry import cases_for, op_case_ids

DECLARED = [(name, case) for name, case in op_case_ids() if BUILTIN_OPS[name].linear_in]


def declared_positions(info, inputs) -> list[int]:
    return [i for i, x in enumerate(inputs) if info.is_linear_in(i) and np.asarray(x).dtype.kind == "f"
            and i not in info.integer_args]


def test_the_ops_the_issue_calls_linear_declare_it():
    for name, positions in {"matmul": (0, 1), "sum": (0,), "mean": (0,), "reshape": (0,), "transpose": (0,),
                            "getitem": (0,), "add": (0, 1), "sub": (0, 1), "conv2d": (0, 1, 2)}.items():
        assert all(BUILTIN_OPS[name].is_linear_in(p) for p in positions), name
    assert BUILTIN_OPS["concat"].linear_in is True
    for name in ("tanh", "exp", "relu", "max", "softmax", "cross_entropy", "max_pool2d", "layer_norm"):
        assert not BUILTIN_OPS[name].linear_in, name
    assert BUILTIN_OPS["div"].is_linear_in(0) and not BUILTIN_OPS["div"].is_linear_in(1)


@pytest.mark.parametrize("name,case", DECLARED, ids=lambda v: str(v))
def test_a_declared_linear_op_is_affine_in_that_argument(name, case):
    """f(x + t d) - f(x) = t (f(x + d) - f(x)) for steps t of both signs and sizes, and the long-step difference
    equals J d from a central difference at a short step (independent of the hook)."""
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    rng = np.random.default_rng(5 + case)

    def at(position, x):
        args = list(inputs)
        args[position] = x
        return np.asarray(info.impl.forward(*args, **params), dtype=np.float64)

    for position in declared_positions(info, inputs):
        x = np.asarray(inputs[position], dtype=np.float64)
        d = rng.standard_normal(x.shape)
        out = at(position, x)
        unit = at(position, x + d) - out
        scale = 1.0 + float(np.max(np.abs(out), initial=0.0)) + float(np.max(np.abs(unit), initial=0.0))
        for t in (-1.7, 0.5, 3.0):
            np.testing.assert_allclose(at(position, x + t * d) - out, t * unit, rtol=0, atol=1e-12 * scale * abs(t),
                                       err_msg=f"{name} is not affine in argument {position}")
        h = 1e-5
        central = (at(position, x + h * d) - at(position, x - h * d)) / (2 * h)
        np.testing.assert_allclose(unit, central, rtol=0, atol=1e-8 * scale, err_msg=f"{name}, argument {position}")


@pytest.mark.parametrize("name,case", DECLARED, ids=lambda v: str(v))
def test_the_local_check_of_a_declared_argument_takes_the_two_evaluation_path(name, case):
    """The long-step estimate is accepted for every declared argument of every built-in case, and agrees with the
    five-point stencil within the stencil's error bound."""
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    check = standalone_check(info, inputs, params)
    rng = np.random.default_rng(3)
    for position in declared_positions(info, inputs):
        x = check.args[position]
        if x.size == 0:
            continue
        direction = (1.0 - 2.0 * rng.integers(0, 2, size=x.shape)) * check.scale_of(position)
        linear = check.linear_directional(position, x, direction)
        assert linear is not None, f"{name}: the declared argument {position} fell back to the stencil"
        stencil = check.stencil_directional(position, x, direction)
        if stencil is None:
            continue
        (jd, error), (reference, reference_error) = linear, stencil
        # the stencil's bound counts the round-off of its results, not that inside forward (conv2d's sums)
        inside = 1e-9 * (1.0 + float(np.max(np.abs(reference), initial=0.0)))
        assert np.all(np.abs(jd - reference) <= error + reference_error + inside), (name, position)
        assert float(np.max(error, initial=0.0)) <= float(np.max(reference_error, initial=0.0)) + 1e-300


def standalone_check(info, inputs, params) -> OpCheck:
    """An OpCheck of the op alone at these inputs, with a random cotangent as the graph's."""

    class Graph:
        spec = type("Spec", (), {"seed": 0})()

    values = [np.asarray(x) for x in inputs]
    node = Node(index=len(values), name=info.name, kind="op", op=info, params=params, args=list(range(len(values))))
    out = np.asarray(info.impl.forward(*values, **params), dtype=np.float64)
    values.append(out)
    backward_pass = type("Pass", (), {"adjoints": {node.index: np.random.default_rng(1).standard_normal(out.shape)},
                                      "edge_grads": {}, "declared_none": set()})()
    return OpCheck(Graph(), node, backward_pass, values, Tolerance(1e-6, 1e-5), np.random.default_rng(2))


# ------------------------------------------------------------------------------------ custom ops and wrong claims
OPS = """
import numpy as np

class Tanh:
    linear_in = (0,)          # wrong: tanh is not affine (and odd: f(x+d) + f(x-d) - 2 f(x) is 0 at x = 0)
    def __init__(self, factor=1.0):
        self.factor = factor
    def forward(self, x):
        return np.tanh(x)
    def vjp(self, g, out, x):
        return (self.factor * g * (1 - out ** 2),)

class Square:
    linear_in = (0,)          # wrong too
    def __init__(self, factor=1.0):
        self.factor = factor
    def forward(self, x):
        return x * x
    def vjp(self, g, out, x):
        return (self.factor * 2 * g * x,)

class Scale:
    linear_in = (0,)          # right: 3 x + 1
    def __init__(self, factor=1.0):
        self.factor = factor
    def forward(self, x):
        return 3 * x + 1
    def vjp(self, g, out, x):
        return (self.factor * 3 * g,)

tanh, wrong_tanh = Tanh(), Tanh(1.01)
square, wrong_square = Square(), Square(1.01)
scale, wrong_scale = Scale(), Scale(1.01)
"""


def local_verdict(tmp_path, op: str, values) -> str:
    (tmp_path / "claims.py").write_text(OPS)
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(f"""
        ops: {{{op}: "claims:{op}"}}
        inputs:
          x: {{value: {values}}}
        nodes:
          y: {op}(x)
          loss: sum(y * y * y)
    """))
    graph = build_graph(load(path))
    with np.errstate(all="ignore"):
        reference = forward(graph, "float64")
        grads = backward(graph, reference, "float64")
    node = next(n for n in graph.nodes if n.name == "y")
    message, _ = OpCheck(graph, node, grads, reference.values, graph.spec.tolerance).check(0)
    return message


@pytest.mark.parametrize("op,values", [("tanh", [0.0, 0.0, 0.0]), ("tanh", [0.3, -1.2, 2.0]), ("square", [0.3, -1.2, 2.0]),
                                       ("scale", [0.0, 0.0, 0.0]), ("scale", [0.3, -1.2, 2.0])])
def test_a_declaration_never_changes_a_verdict(tmp_path, op, values):
    """Right vjps pass and 1 % wrong ones fail, whether the declaration is right (scale) or wrong (tanh, square),
    at zero too, where tanh is odd and a symmetric second difference would not see it is not affine (square's
    gradient is 0 there, so its 1 % error is nothing)."""
    assert local_verdict(tmp_path, op, values) == ""
    assert "checked on its own" in local_verdict(tmp_path, f"wrong_{op}", values)


def test_a_wrong_declaration_falls_back_to_the_stencil(tmp_path, monkeypatch):
    taken = []
    original = OpCheck.linear_directional

    def spy(self, position, x, direction):
        found = original(self, position, x, direction)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(OpCheck, "linear_directional", spy)
    assert local_verdict(tmp_path, "tanh", [0.0, 0.0, 0.0]) == ""
    assert taken == [False]
    taken.clear()
    assert local_verdict(tmp_path, "scale", [0.3, -1.2, 2.0]) == ""
    assert taken == [True]


def test_the_long_steps_cancel_every_term_of_an_affine_map_and_no_other():
    """r = f(x + a d) + 2 f(x + b d) - 3 f(x) for the steps (a, b): zero on 1 and t, nonzero on t² and t³."""
    ahead, behind = LINEAR_STEPS
    assert ahead + 2 * behind == 0 and 1 + 2 - 3 == 0
    assert ahead ** 2 + 2 * behind ** 2 != 0 and ahead ** 3 + 2 * behind ** 3 != 0


def test_a_custom_op_declares_nothing_by_default_and_may_declare_positions():
    class Bare:
        def forward(self, x):
            return x

        def vjp(self, g, out, x):
            return (g,)

    assert custom_op_info("bare", Bare(), "m:Bare").linear_in == ()
    assert not custom_op_info("bare", Bare(), "m:Bare").is_linear_in(0)

    class Declared(Bare):
        linear_in = [0]

    assert custom_op_info("declared", Declared(), "m:Declared").is_linear_in(0)
    assert linear_positions(True) is True and linear_positions(1) == (1,) and linear_positions("0") == ()
    assert linear_positions(None) == () and linear_positions([True]) == ()


# ------------------------------------------------------------------------------------ joint probes through linear ops
def joint_changes(tmp_path, spec_text: str, moves: dict[str, np.ndarray], steps):
    from gradcheck.numeric import Evaluator
    from gradcheck.pipeline import run

    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(spec_text))
    checked = run(path, judge=False)
    graph, values = checked.graph, checked.analytic.values
    index = {n.name: n.index for n in graph.nodes}
    evaluator = Evaluator(graph, values, checked.analytic.projection)
    found = evaluator.changes_along_together({index[name]: d for name, d in moves.items()}, np.asarray(steps))
    return found, {name: np.asarray(values[index[name]]) for name in index if name in moves or name.isalpha()}


@pytest.mark.parametrize("moved", [("W", "P", "Q"), ("W", "P", "Q", "b")])
def test_moves_through_linear_ops_to_the_output_scale_with_the_step(tmp_path, moved):
    """P = X @ W, Q = P + b and y = sum(Q) are linear all the way: moving W, P and Q, every copy's change is its
    step times one array up to the output; moving b too, two changed arguments meet in the add.  Both equal
    re-evaluating the graph at the moved values."""
    rng = np.random.default_rng(4)
    shapes = {"W": (3, 5), "P": (4, 5), "Q": (4, 5), "b": (5,)}
    d = {name: rng.standard_normal(shapes[name]) if name in moved else np.zeros(shapes[name]) for name in shapes}
    steps = [1e-2, -1e-2, 0.5, -3.0]
    found, v = joint_changes(tmp_path, """
        inputs: {X: {shape: [4, 3], init: normal}, W: {shape: [3, 5], init: normal}, b: {shape: [5], init: normal}}
        nodes: {P: "X @ W", Q: "P + b", y: "sum(Q)"}
    """, {name: d[name] for name in moved}, steps)
    X, W, b = v["X"], v["W"], v["b"]
    expected = [np.sum(X @ (W + s * d["W"]) + s * d["P"] + b + s * d["b"] + s * d["Q"]) - np.sum(X @ W + b)
                for s in steps]
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)


def test_a_custom_ops_linear_claim_is_not_trusted_by_joint_probes(tmp_path):
    (tmp_path / "claims.py").write_text(OPS)
    rng = np.random.default_rng(5)
    dx = rng.standard_normal(3)
    steps = [1e-2, -1e-2, 0.5]
    found, v = joint_changes(tmp_path, """
        ops: {tanh: "claims:tanh"}
        inputs: {x: [0.3, -1.2, 2.0]}
        nodes: {y: "sum(tanh(x))"}
    """, {"x": dx}, steps)
    x = v["x"]
    expected = [np.sum(np.tanh(x + s * dx)) - np.sum(np.tanh(x)) for s in steps]
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-15)
