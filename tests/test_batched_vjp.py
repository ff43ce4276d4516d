"""The batched_vjp hook: a built-in op that declares it takes K cotangents stacked on a leading axis in one call,
and every declaration is checked here against K calls of the op's own vjp, on the standard cases of every
declaring op (scalar, vector, matrix, broadcast shapes, or the op's own test_cases).  The op-local check uses the
hook for built-in ops only; a custom op's vjp is called once per cotangent."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from gradcheck.engine import backward, forward
from gradcheck.graph import build_graph
from gradcheck.judge.local import LOCAL_COTANGENTS, OpCheck
from gradcheck.ops import BUILTIN_OPS
from gradcheck.ops.base import scalar_batched_vjp, unbroadcast, unbroadcast_batched
from gradcheck.pipeline import load
from gradcheck.spec import Tolerance

from .test_ops_registry import cases_for, op_case_ids

DECLARED = [(name, case) for name, case in op_case_ids() if BUILTIN_OPS[name].batched_vjp is not None]


def test_the_ops_of_an_mlp_and_a_cnn_and_the_elementwise_ones_declare_it():
    for name in ("matmul", "add", "sub", "mul", "tanh", "exp", "relu", "cross_entropy", "reshape", "conv2d", "max_pool2d"):
        assert BUILTIN_OPS[name].batched_vjp is not None, name
    # no declaration is the default: one vjp call per cotangent
    assert BUILTIN_OPS["softmax"].batched_vjp is None


@pytest.mark.parametrize("name,case", DECLARED, ids=lambda v: str(v))
@pytest.mark.parametrize("count", [1, 3])
def test_a_batched_vjp_equals_one_vjp_call_per_cotangent(name, case, count):
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    inputs = tuple(np.asarray(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else x for x in inputs)
    out = np.asarray(info.impl.forward(*inputs, **params), dtype=np.float64)
    gs = np.random.default_rng(11 + case).standard_normal((count,) + out.shape)
    batched = info.batched_vjp(gs, out, *inputs, **params)
    singles = [info.impl.vjp(g, out, *inputs, **params) for g in gs]
    assert len(batched) == len(inputs)
    for position, x in enumerate(inputs):
        one_at_a_time = [single[position] for single in singles]
        if batched[position] is None or any(grad is None for grad in one_at_a_time):
            assert batched[position] is None and all(grad is None for grad in one_at_a_time), (name, position)
            continue
        stacked = np.asarray(batched[position])
        assert stacked.shape == (count,) + np.shape(x), (name, position, stacked.shape)
        for k, grad in enumerate(one_at_a_time):
            np.testing.assert_allclose(stacked[k], np.asarray(grad, dtype=np.float64), rtol=1e-13, atol=1e-13,
                                       err_msg=f"{name}, argument {position}, cotangent {k}")


def test_unbroadcast_batched_keeps_the_leading_axis_and_sums_the_rest_like_unbroadcast():
    grads = np.arange(2 * 4 * 3 * 5, dtype=float).reshape(2, 4, 3, 5)
    for shape in [(3, 5), (5,), (1, 5), (3, 1), (), (4, 3, 5), (4, 1, 5)]:
        summed = unbroadcast_batched(grads, shape)
        assert summed.shape == (2,) + shape
        for k in range(2):
            np.testing.assert_array_equal(summed[k], unbroadcast(grads[k], shape))


def test_a_scalar_result_scales_the_gradients_for_g_equal_to_one():
    class Weighted:
        def vjp(self, g, out, x, y):
            return g * np.array([1.0, 2.0, 3.0]), None

    gs = np.array([2.0, -0.5])
    grads, nothing = scalar_batched_vjp(Weighted(), gs, np.float64(0.0), np.zeros(3), np.zeros(2))
    np.testing.assert_array_equal(grads, [[2.0, 4.0, 6.0], [-0.5, -1.0, -1.5]])
    assert nothing is None


def local_check(tmp_path, source: str, expression: str) -> OpCheck:
    module = tmp_path / "batch_ops.py"
    module.write_text(textwrap.dedent(source))
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""
        seed: 0
        ops: {{twice: batch_ops:Twice}}
        inputs:
          x: {{shape: [3, 2], init: normal}}
        nodes:
          y: {expression}
          loss: sum(y * y)
    """))
    graph = build_graph(load(spec))
    fwd = forward(graph, "float64")
    bwd = backward(graph, fwd, "float64")
    node = next(n for n in graph.nodes if n.name == "y")
    return OpCheck(graph, node, bwd, fwd.values, Tolerance(1e-5, 1e-7))


def test_a_custom_op_declaring_it_is_still_called_once_per_cotangent(tmp_path):
    """A custom op's batched_vjp is never called: the rule checked is the vjp its graph runs, here a wrong one."""
    check = local_check(tmp_path, """
        import numpy as np
        class Twice:
            calls = 0
            def forward(self, x):
                return 2 * x
            def vjp(self, g, out, x):
                Twice.calls += 1
                return (3 * g,)
            def batched_vjp(self, gs, out, x):
                raise AssertionError("a custom op's batched_vjp must not be called")
    """, "twice(x)")
    twice = type(check.node.op_info.impl)
    twice.calls = 0  # the backward pass's calls are done: its gradient is the one the graph's cotangent judges
    message, _ = check.check(0)
    assert message  # the wrong vjp is caught
    assert twice.calls == LOCAL_COTANGENTS


TWICE = """
    class Twice:
        def forward(self, x):
            return 2 * x
        def vjp(self, g, out, x):
            return (2 * g,)
"""


def test_the_local_check_takes_the_random_cotangents_of_a_declaring_op_in_one_call(tmp_path, monkeypatch):
    check = local_check(tmp_path, TWICE, "tanh(x)")
    info = check.node.op_info
    calls = []

    def counted(gs, out, x):
        calls.append(gs.shape)
        return (gs * (1 - out * out),)

    def refused(*args, **kwargs):
        raise AssertionError("one vjp call per cotangent")

    monkeypatch.setattr(info, "batched_vjp", counted)
    monkeypatch.setattr(info.impl, "vjp", refused)
    assert check.check(0) == ("", False)
    assert calls == [(LOCAL_COTANGENTS, 3, 2)]


def test_a_batched_vjp_that_gives_a_wrong_shape_falls_back_to_one_call_per_cotangent(tmp_path, monkeypatch):
    check = local_check(tmp_path, TWICE, "tanh(x)")
    monkeypatch.setattr(check.node.op_info, "batched_vjp", lambda gs, out, x: (gs.sum(axis=0),))
    assert check.check(0) == ("", False)
    assert len(check.vjps) == 1 + LOCAL_COTANGENTS
