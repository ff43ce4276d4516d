"""The ops added for the models layer authors test (issue 9, point 4), against independent implementations.

The vjp-vs-finite-difference, float32, batching and result-shape checks of every op run in
test_ops_registry.py and test_op_record.py (they cover these ops by registration); here each op's
forward is compared with numpy or math, the gradients with closed forms, each jvp with its vjp
(<g, J t> = <J^T g, t>), the convolutions and pools with PyTorch (skipped without torch), and the
expression syntax (x.T, comparisons in where, index arrays) end to end.
"""
from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pytest

from gradcheck.errors import SpecError
from gradcheck.graph import build_graph
from gradcheck.ops import BUILTIN_OPS, OpArgumentError
from gradcheck.results import Status
from gradcheck.spec import load_spec

from .test_ops_registry import cases_for

rng = np.random.default_rng(2024)

NEW_OPS = ["prod", "var", "std", "cumsum", "sort", "repeat", "tile", "flip", "roll", "trace", "diag", "triu", "tril",
           "einsum", "tensordot", "outer", "inner", "kron", "cross", "split", "squeeze", "expand_dims", "swapaxes", "pad",
           "sign", "floor", "mod", "logaddexp", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh",
           "arctanh", "log2", "log10", "fmax", "fmin", "erf", "index", "compare", "conv1d", "conv2d", "conv_transpose2d",
           "avg_pool2d", "max_pool2d"]


def op(name):
    return BUILTIN_OPS[name].impl


def run(name, *inputs, **params):
    return np.asarray(op(name).forward(*inputs, **BUILTIN_OPS[name].check_params(params)))


def grads(name, g, *inputs, **params):
    params = BUILTIN_OPS[name].check_params(params)
    out = np.asarray(op(name).forward(*inputs, **params))
    return op(name).vjp(np.broadcast_to(np.asarray(g, dtype=np.float64), out.shape), out, *inputs, **params)


def close(actual, expected, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


def test_every_op_of_the_issue_is_registered_with_its_record():
    for name in NEW_OPS:
        info = BUILTIN_OPS[name]
        assert info.doc, name
        assert (info.local_derivative is None) != (info.vjp_formula is None), name
        assert info.batching is not None, f"{name} declares no batching rule"
    kinky = {name for name in NEW_OPS if BUILTIN_OPS[name].has_kinks}
    assert kinky == {"sort", "std", "sign", "floor", "mod", "arctan2", "fmax", "fmin", "compare", "max_pool2d"}


# ---------------------------------------------------------------- elementwise: numpy / math forwards, closed-form slopes

ELEMENTWISE = {  # name: (math function, its derivative, a sample inside the domain)
    "arcsin": (math.asin, lambda x: 1 / math.sqrt(1 - x * x), 0.6),
    "arccos": (math.acos, lambda x: -1 / math.sqrt(1 - x * x), -0.3),
    "arctan": (math.atan, lambda x: 1 / (1 + x * x), 2.5),
    "sinh": (math.sinh, math.cosh, -1.2),
    "cosh": (math.cosh, math.sinh, 0.7),
    "arcsinh": (math.asinh, lambda x: 1 / math.sqrt(x * x + 1), 3.0),
    "arctanh": (math.atanh, lambda x: 1 / (1 - x * x), 0.8),
    "log2": (math.log2, lambda x: 1 / (x * math.log(2)), 5.0),
    "log10": (math.log10, lambda x: 1 / (x * math.log(10)), 0.02),
    "erf": (math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x), -0.4),
    "sign": (lambda x: math.copysign(1.0, x), lambda x: 0.0, -2.0),
    "floor": (math.floor, lambda x: 0.0, 2.7),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_forward_and_slope_match_math(name):
    function, slope, x = ELEMENTWISE[name]
    close(run(name, np.array(x)), function(x), rtol=1e-15)
    close(grads(name, 1.0, np.array(x))[0], slope(x), rtol=1e-14)
    close(op(name).jvp((np.array(2.0),), None, np.array(x)), 2 * slope(x), rtol=1e-14)


def test_arctan2_is_the_angle_in_every_quadrant_and_its_partials_are_closed_form():
    for y, x in [(1.0, 2.0), (1.0, -2.0), (-1.0, -2.0), (-1.0, 2.0)]:
        close(run("arctan2", np.array(y), np.array(x)), math.atan2(y, x), rtol=1e-15)
        grad_y, grad_x = grads("arctan2", 1.0, np.array(y), np.array(x))
        close([grad_y, grad_x], [x / (x * x + y * y), -y / (x * x + y * y)])
        # complex-step through the forward gives the same slope in every quadrant
        close(np.imag(op("arctan2").forward(np.array(y + 1e-30j), np.array(x + 0j))) / 1e-30, x / (x * x + y * y))


def test_logaddexp_matches_numpy_and_never_overflows():
    a, b = rng.standard_normal(6) * 3, rng.standard_normal(6) * 3
    close(run("logaddexp", a, b), np.logaddexp(a, b))
    close(run("logaddexp", np.array(1000.0), np.array(999.0)), 1000 + math.log1p(math.exp(-1)))
    grad_a, grad_b = grads("logaddexp", 1.0, a, b)
    close(grad_a, 1 / (1 + np.exp(b - a)))
    close(grad_a + grad_b, np.ones(6))


def test_mod_follows_numpy_and_its_slope_in_b_is_minus_the_quotient():
    a, b = np.array([5.5, -5.5, 5.5, 7.25]), np.array([2.0, 2.0, -2.0, 1.5])
    close(run("mod", a, b), np.mod(a, b))
    grad_a, grad_b = grads("mod", 1.0, a, b)
    close(grad_a, np.ones(4))
    close(grad_b, -np.floor(a / b))


def test_fmax_and_fmin_ignore_nan_and_send_the_gradient_to_the_number():
    a, b = np.array([1.0, np.nan, 3.0, 2.0]), np.array([2.0, 5.0, np.nan, 2.0])
    close(run("fmax", a, b), np.fmax(a, b))
    close(run("fmin", a, b), np.fmin(a, b))
    grad_a, grad_b = grads("fmax", 1.0, a, b)
    close(grad_a, [0, 0, 1, 1])  # the tie's gradient goes to a, as maximum's
    close(grad_b, [1, 1, 0, 0])


# ---------------------------------------------------------------- reductions

def test_prod_gradient_is_the_product_of_the_others_even_with_zeros():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 4.0], [1.5, -2.0, 0.5]])
    close(run("prod", x, axis=1), np.prod(x, axis=1))
    expected = np.array([[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.75, -3.0]])
    close(grads("prod", 1.0, x, axis=1)[0], expected)
    close(grads("prod", 1.0, np.array([2.0, 5.0, 7.0]))[0], [35.0, 14.0, 10.0])


@pytest.mark.parametrize("ddof", [0, 1])
def test_var_and_std_match_numpy_and_their_closed_form_gradients(ddof):
    x = rng.standard_normal((3, 5))
    close(run("var", x, axis=1, ddof=ddof), np.var(x, axis=1, ddof=ddof))
    close(run("std", x, axis=0, ddof=ddof, keepdims=True), np.std(x, axis=0, ddof=ddof, keepdims=True))
    centred = x - x.mean(axis=1, keepdims=True)
    close(grads("var", 1.0, x, axis=1, ddof=ddof)[0], 2 * centred / (5 - ddof))
    close(grads("std", 1.0, x, axis=1, ddof=ddof)[0], centred / ((5 - ddof) * np.std(x, axis=1, ddof=ddof, keepdims=True)))
    with pytest.raises(OpArgumentError, match="ddof=5"):
        run("var", x, axis=1, ddof=5)


def test_cumsum_matches_numpy_and_its_gradient_counts_the_later_elements():
    x = rng.standard_normal((2, 4))
    close(run("cumsum", x), np.cumsum(x))
    close(run("cumsum", x, axis=1), np.cumsum(x, axis=1))
    close(grads("cumsum", 1.0, x, axis=1)[0], [[4, 3, 2, 1], [4, 3, 2, 1]])
    close(grads("cumsum", 1.0, x)[0], np.arange(8, 0, -1).reshape(2, 4))


def test_sort_matches_numpy_and_sends_each_gradient_to_its_element():
    x = np.array([[3.0, 1.0, 2.0], [0.5, -1.0, 4.0]])
    close(run("sort", x), np.sort(x))
    close(run("sort", x, axis=0, descending=True), -np.sort(-x, axis=0))
    g = np.array([[10.0, 20.0, 30.0], [1.0, 2.0, 3.0]])  # gradient of the sorted positions
    close(op("sort").vjp(g, None, x, axis=-1, descending=False)[0], [[30.0, 10.0, 20.0], [2.0, 1.0, 3.0]])


# ---------------------------------------------------------------- rearrangements: numpy forwards, adjoints by counting

@pytest.mark.parametrize("name,params,reference", [
    ("flip", {"axis": 1}, lambda x: np.flip(x, 1)), ("roll", {"shift": 2}, lambda x: np.roll(x, 2)),
    ("roll", {"shift": (1, -1), "axis": (0, 1)}, lambda x: np.roll(x, (1, -1), (0, 1))),
    ("swapaxes", {"axis1": 0, "axis2": 1}, lambda x: np.swapaxes(x, 0, 1)),
    ("expand_dims", {"axis": (0, 3)}, lambda x: np.expand_dims(x, (0, 3))),
    ("repeat", {"repeats": (2, 0, 1, 3), "axis": 1}, lambda x: np.repeat(x, (2, 0, 1, 3), 1)),
    ("repeat", {"repeats": 2}, lambda x: np.repeat(x, 2)), ("tile", {"reps": (2, 1, 2)}, lambda x: np.tile(x, (2, 1, 2))),
    ("pad", {"pad_width": ((1, 0), (2, 1)), "value": 3.0}, lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=3.0)),
    ("pad", {"pad_width": 2, "mode": "reflect"}, lambda x: np.pad(x, 2, mode="reflect")),
    ("pad", {"pad_width": (1, 3), "mode": "wrap"}, lambda x: np.pad(x, (1, 3), mode="wrap")),
    ("split", {"sections": 2, "axis": 1}, lambda x: np.stack(np.split(x, 2, axis=1))),
    ("split", {"sections": (1,), "part": 1}, lambda x: np.split(x, [1])[1]),
    ("triu", {"k": 1}, lambda x: np.triu(x, 1)), ("tril", {}, np.tril), ("diag", {"k": -1}, lambda x: np.diag(x, -1)),
    ("trace", {"offset": 1}, lambda x: np.trace(x, 1)),
])
def test_rearrangements_match_numpy_and_their_vjp_is_the_adjoint(name, params, reference):
    x = rng.standard_normal((3, 4))
    out = run(name, x, **params)
    close(out, reference(x))
    # the adjoint: <g, A x> = <A^T g, x> for random g and x (A x = out minus the constant fill, out at x = 0)
    g = rng.standard_normal(out.shape)
    full = BUILTIN_OPS[name].check_params(params)
    linear = out - run(name, np.zeros_like(x), **params)
    close(np.sum(op(name).vjp(g, out, x, **full)[0] * x), np.sum(g * linear), rtol=1e-12)


def test_repeat_tile_and_pad_send_back_the_sum_over_the_copies():
    x = np.arange(3.0)
    close(grads("repeat", 1.0, x, repeats=(1, 0, 4))[0], [1, 0, 4])
    close(grads("tile", 1.0, x, reps=(2, 3))[0], [6, 6, 6])
    # reflect mode: [x2 x1 | x0 x1 x2 | x1 x0] -- x1 appears three times, x0 and x2 twice
    close(grads("pad", 1.0, x, pad_width=2, mode="reflect")[0], [2, 3, 2])
    close(grads("pad", 1.0, x, pad_width=2, mode="edge")[0], [3, 1, 3])
    close(grads("diag", 1.0, np.arange(9.0).reshape(3, 3), k=1)[0], [[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_squeeze_refuses_an_axis_longer_than_one():
    with pytest.raises(OpArgumentError, match="length 3"):
        run("squeeze", np.zeros((1, 3)), axis=1)


# ---------------------------------------------------------------- multilinear products

@pytest.mark.parametrize("subscripts,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->", [(3, 3)]), ("ii->i", [(4, 4)]), ("i,j->ij", [(2,), (3,)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("ij,jk", [(2, 3), (3, 4)]), ("...ij,jk->...ik", [(2, 2, 3), (3, 4)]),
    ("ij->", [(2, 3)]), ("ij,j,jk->ik", [(2, 3), (3,), (3, 2)]), ("iij->j", [(2, 2, 3)]), ("ba,ab", [(2, 3), (3, 2)]),
    ("...ij,...jk->...ik", [(1, 2, 3), (4, 3, 2)]), ("ij,ij->ij", [(1, 3), (2, 3)]), ("ij,ij->", [(2, 1), (2, 3)]),
])
def test_einsum_matches_numpy_and_every_gradient_is_the_adjoint(subscripts, shapes):
    operands = [rng.standard_normal(shape) for shape in shapes]
    out = run("einsum", *operands, subscripts=subscripts)
    close(out, np.einsum(subscripts, *operands), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    gradients = op("einsum").vjp(g, out, *operands, subscripts=subscripts)
    for position, (operand, gradient) in enumerate(zip(operands, gradients, strict=True)):
        # einsum is linear in each operand: <g, E(..., x_i, ...)> = <grad_i, x_i>
        close(np.sum(gradient * operand), np.sum(g * out), rtol=1e-10)
        assert gradient.shape == operand.shape, position


def test_einsum_gradient_of_a_diagonal_lands_on_the_diagonal_only():
    x = rng.standard_normal((3, 3))
    close(grads("einsum", 1.0, x, subscripts="ii->")[0], np.eye(3))
    close(grads("einsum", 1.0, x, subscripts="ij->")[0], np.ones((3, 3)))


@pytest.mark.parametrize("subscripts,message", [("ij,jk->ik", "name 2 operand"), ("i$->", "'\\$'"), ("ij->ii", "repeated"),
                                                ("ijk->", "3")])
def test_einsum_refuses_bad_subscripts_with_the_reason(subscripts, message):
    with pytest.raises(OpArgumentError, match=message):
        run("einsum", np.zeros((2, 2)), subscripts=subscripts)


@pytest.mark.parametrize("name,shapes,params,reference", [
    ("tensordot", [(2, 3, 4), (3, 4, 5)], {}, lambda a, b: np.tensordot(a, b)),
    ("tensordot", [(3, 2, 4), (4, 3)], {"axes": [[0, 2], [1, 0]]}, lambda a, b: np.tensordot(a, b, axes=([0, 2], [1, 0]))),
    ("tensordot", [(2, 3), (4,)], {"axes": 0}, lambda a, b: np.tensordot(a, b, axes=0)),
    ("inner", [(2, 3), (4, 3)], {}, np.inner), ("inner", [(), (2, 3)], {}, np.inner),
    ("outer", [(3,), (4,)], {}, np.outer), ("kron", [(2, 2), (3, 1)], {}, np.kron), ("kron", [(3,), (2, 2)], {}, np.kron),
    ("cross", [(4, 3), (3,)], {}, np.cross), ("cross", [(3, 2), (3, 2)], {"axis": 0}, lambda a, b: np.cross(a, b, axis=0)),
])
def test_products_match_numpy_and_their_vjps_are_adjoints(name, shapes, params, reference):
    a, b = (rng.standard_normal(shape) for shape in shapes)
    out = run(name, a, b, **params)
    close(out, reference(a, b), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    grad_a, grad_b = op(name).vjp(g, out, a, b, **BUILTIN_OPS[name].check_params(params))
    close(np.sum(grad_a * a), np.sum(g * out), rtol=1e-10)  # bilinear: each side alone gives <g, out>
    close(np.sum(grad_b * b), np.sum(g * out), rtol=1e-10)


def test_cross_gradients_are_the_triple_product_rules():
    a, b, g = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 2.0]), np.array([0.3, -0.7, 1.1])
    grad_a, grad_b = op("cross").vjp(g, None, a, b, axis=-1)
    close(grad_a, np.cross(b, g))
    close(grad_b, np.cross(g, a))


# ---------------------------------------------------------------- jvp against vjp, for every op with a jvp

def jvp_cases():
    for name, info in sorted(BUILTIN_OPS.items()):
        if info.has_jvp:
            yield from ((name, case) for case in range(len(cases_for(info, np.random.default_rng(0)))))


@pytest.mark.parametrize("name,case", list(jvp_cases()), ids=str)
def test_jvp_is_the_transpose_of_the_vjp(name, case):
    """<g, J t> = <J^T g, t>: forward and reverse mode describe the same Jacobian."""
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    out = np.asarray(info.impl.forward(*inputs, **params))
    local = np.random.default_rng(500 + case)
    g = local.standard_normal(out.shape)
    cotangents = info.impl.vjp(g, out, *inputs, **params)
    for position, x in enumerate(inputs):
        if position in info.integer_args or not np.issubdtype(np.asarray(x).dtype, np.floating):
            continue
        tangents = [None] * len(inputs)
        tangents[position] = local.standard_normal(np.shape(x))
        forward_mode = np.asarray(info.impl.jvp(tuple(tangents), out, *inputs, **params))
        assert forward_mode.shape == out.shape, f"{name}: jvp shape {forward_mode.shape}, output {out.shape}"
        close(np.sum(g * forward_mode), np.sum(cotangents[position] * tangents[position]), rtol=1e-10, atol=1e-10)


def test_the_smooth_new_ops_all_have_a_jvp():
    without = {name for name in NEW_OPS if not BUILTIN_OPS[name].has_jvp}
    assert without == {"compare"}, without  # a comparison passes nothing back or forth


# ---------------------------------------------------------------- expressions: x.T, where's comparisons, index arrays

def build(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return build_graph(load_spec(path))


def check(tmp_path, text):
    from gradcheck import check_spec

    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return check_spec(path)


def test_dot_t_is_the_transpose(tmp_path):
    graph = build(tmp_path, "inputs: {x: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}\nnodes: {y: sum(x.T @ x)}\n")
    assert [n.op_name for n in graph.nodes if n.kind == "op"][:2] == ["transpose", "matmul"]


@pytest.mark.parametrize("expression,message", [
    ("sum(x.shape)", r"attribute access is not allowed.*x\.shape.*\.T"),
    ("sum(x * (x > 0))", r"comparison is allowed only as the condition of where"),
    ("sum(compare(x, 0, relation='>'))", r"compare\(\) is allowed only as the condition of where"),
    ("sum(where(0 < x < 1, x, 0))", r"chained comparison"),
    ("sum(where(x is x, x, 0))", r"not supported"),
    ("sum(x[[true, 1]])", r"integers or booleans, not both"),
    ("sum(x[[[0], [0, 1]]])", r"ragged"),
    ("sum(x[[0.5]])", r"integers or booleans only"),
])
def test_comparisons_and_attributes_outside_their_place_are_refused(tmp_path, expression, message):
    with pytest.raises(SpecError, match=message):
        build(tmp_path, f"inputs: {{x: [1.0, -2.0]}}\nnodes: {{y: \"{expression}\"}}\n")


def test_where_with_a_comparison_passes_the_gradient_of_the_chosen_branch(tmp_path):
    result = check(tmp_path, """
        inputs: {x: [1.5, -2.0, 0.5, -0.25]}
        nodes: {y: "sum(where(x > 0, x * x, 0.1 * x))"}
        """)
    assert result.status == Status.PASS
    from gradcheck.engine import backward, forward

    graph = build(tmp_path, 'inputs: {x: [1.5, -2.0, 0.5, -0.25]}\nnodes: {y: "sum(where(x > 0, x * x, 0.1 * x))"}\n')
    fwd = forward(graph, "float64")
    close(backward(graph, fwd, "float64").adjoints[0], [3.0, 0.1, 1.0, 0.1])


def test_integer_index_arrays_accumulate_repeats(tmp_path):
    from gradcheck.engine import backward, forward

    graph = build(tmp_path, """
        inputs:
          x: [10.0, 20.0, 30.0]
          ids: {value: [2, 0, 2, 2], dtype: int64}
        nodes: {y: "sum(x[ids]) + sum(x[[1, 1]])"}
        """)
    fwd = forward(graph, "float64")
    assert float(fwd.values[graph.output]) == 30 + 10 + 30 + 30 + 20 + 20
    close(backward(graph, fwd, "float64").adjoints[0], [1.0, 2.0, 3.0])


def test_a_boolean_mask_selects_and_scatters_back(tmp_path):
    from gradcheck.engine import backward, forward

    graph = build(tmp_path, """
        inputs:
          x: [[1.0, 2.0], [3.0, 4.0]]
          keep: {value: [[1, 0], [1, 1]], dtype: bool}
        nodes: {y: "sum(x[keep] ** 2) + sum(x[[true, false], :])"}
        """)
    fwd = forward(graph, "float64")
    assert float(fwd.values[graph.output]) == 1 + 9 + 16 + 1 + 2
    close(backward(graph, fwd, "float64").adjoints[0], [[3.0, 1.0], [6.0, 8.0]])


def test_mixed_subscripts_follow_numpy(tmp_path):
    from gradcheck.engine import forward

    x = np.arange(36.0).reshape(3, 3, 4)
    graph = build(tmp_path, f"""
        inputs:
          x: {x.tolist()}
          ids: {{value: [2, 0], dtype: int64}}
        nodes:
          a: x[:, ids]
          b: x[1, ids, 1:3]
          c: x[ids[0:1], :, [3, 1]]
          d: x[..., ids]
          y: sum(a) + sum(b) + sum(c) + sum(d)
        """)
    values = forward(graph, "float64").values
    ids = np.array([2, 0])
    for name, expected in [("a", x[:, ids]), ("b", x[1, ids, 1:3]), ("c", x[ids[0:1], :, [3, 1]]), ("d", x[..., ids])]:
        close(values[graph.by_name[name]], expected)


def test_a_float_index_array_is_refused_with_the_dtypes_to_declare(tmp_path):
    with pytest.raises(SpecError, match=re.escape("dtype: int64")):
        build(tmp_path, 'inputs: {x: [1.0, 2.0], i: [0.0, 1.0]}\nnodes: {y: "sum(x[i])"}\n')


def test_a_bool_input_holds_only_zeros_and_ones(tmp_path):
    with pytest.raises(SpecError, match="bool but holds values other than 0 and 1"):
        build(tmp_path, 'inputs: {x: [1.0, 2.0], m: {value: [0, 2], dtype: bool}}\nnodes: {y: "sum(x[m])"}\n')


def test_a_wrong_mask_shape_is_named(tmp_path):
    with pytest.raises(OpArgumentError, match=r"mask of shape \(3,\)"):
        run("index", np.zeros((2, 2)), np.array([True, False, True]), pattern=("mask",))


def test_einsum_takes_its_subscripts_first_as_numpy_does(tmp_path):
    result = check(tmp_path, """
        inputs: {a: [[1.0, 2.0], [3.0, 4.0]], b: [[0.5, -1.0], [2.0, 0.25]]}
        nodes: {y: "sum(einsum('ij,jk->ik', a, b) ** 2) + einsum('ii', a)"}
        """)
    assert result.status == Status.PASS


def test_a_spec_of_new_ops_passes_end_to_end(tmp_path):
    result = check(tmp_path, """
        inputs:
          x: {shape: [2, 3, 6, 6], init: normal}
          w: {shape: [4, 3, 3, 3], init: normal}
          wt: {shape: [4, 2, 2, 2], init: normal}
          b: {shape: [4], init: normal}
          bt: {shape: [2], init: normal}
        nodes:
          h: conv2d(x, w, b, stride=2, padding=1, dilation=1)
          up: conv_transpose2d(h, wt, bt, stride=2)
          pooled: avg_pool2d(up, kernel=3, stride=2, padding=1, ceil_mode=true)
          y: sum(logaddexp(pooled, 0.0)) + sum(cumsum(sort(flip(pooled, axis=-1)), axis=-1)) * 0.01
        """)
    assert result.status == Status.PASS, [n.message for n in result.nodes if n.status != Status.PASS]


# ---------------------------------------------------------------- convolutions and pools against PyTorch

try:  # the torch cross-checks are skipped, not the whole module, when torch is absent
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed: the convolution and pooling "
                                                       "cross-checks need it (pip install torch)")


def torch_value_and_grads(function, arrays, g):
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = function(*tensors)
    out.backward(torch.tensor(g, dtype=torch.float64))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def compare_with_torch(name, arrays, params, function):
    out = run(name, *arrays, **params)
    g = rng.standard_normal(out.shape)
    expected_out, expected_grads = torch_value_and_grads(function, arrays, g)
    close(out, expected_out, rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(grads_with(name, g, arrays, params), expected_grads, strict=True):
        close(ours, theirs, rtol=1e-10, atol=1e-10)


def grads_with(name, g, arrays, params):
    params = BUILTIN_OPS[name].check_params(params)
    out = np.asarray(op(name).forward(*arrays, **params))
    return op(name).vjp(g, out, *arrays, **params)


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note that it copies the input for an even kernel
@pytest.mark.parametrize("shapes,params", [
    (((2, 3, 7, 6), (4, 3, 3, 2), (4,)), {}),
    (((1, 4, 8, 8), (6, 2, 3, 3), (6,)), {"stride": 2, "padding": 1, "groups": 2}),
    (((2, 2, 9, 7), (3, 2, 3, 2), (3,)), {"dilation": (2, 3), "padding": (2, 1)}),
    (((1, 6, 7, 7), (6, 1, 3, 3), (6,)), {"groups": 6, "stride": (2, 1), "dilation": 2, "padding": 2}),
    (((1, 2, 6, 7), (3, 2, 2, 3), (3,)), {"padding": "same", "dilation": (3, 2)}),
    (((1, 2, 6, 7), (3, 2, 2, 3), (3,)), {"padding": "valid"}),
])
def test_conv2d_matches_torch(shapes, params):
    import torch.nn.functional as F

    arrays = [rng.standard_normal(s) for s in shapes]
    compare_with_torch("conv2d", arrays, params, lambda x, w, b: F.conv2d(x, w, b, **params))


@needs_torch
@pytest.mark.parametrize("shapes,params", [
    (((2, 3, 10), (4, 3, 3), (4,)), {}),
    (((1, 4, 11), (2, 2, 4), (2,)), {"stride": 2, "padding": 2, "dilation": 2, "groups": 2}),
    (((2, 2, 9), (3, 2, 4), (3,)), {"padding": "same", "dilation": 2}),
])
def test_conv1d_matches_torch(shapes, params):
    import torch.nn.functional as F

    arrays = [rng.standard_normal(s) for s in shapes]
    compare_with_torch("conv1d", arrays, params, lambda x, w, b: F.conv1d(x, w, b, **params))


@needs_torch
@pytest.mark.parametrize("shapes,params", [
    (((2, 3, 4, 5), (3, 2, 3, 3), (2,)), {}),
    (((1, 4, 3, 4), (4, 3, 3, 2), (3,)), {"stride": 2, "padding": 1, "output_padding": 1}),
    (((1, 4, 3, 3), (4, 1, 2, 3), (2,)), {"groups": 2, "dilation": (2, 1), "stride": (3, 2), "output_padding": (2, 0)}),
])
def test_conv_transpose2d_matches_torch(shapes, params):
    import torch.nn.functional as F

    arrays = [rng.standard_normal(s) for s in shapes]
    compare_with_torch("conv_transpose2d", arrays, params, lambda x, w, b: F.conv_transpose2d(x, w, b, **params))


POOLS = [({"kernel": 2}, (1, 2, 6, 6)), ({"kernel": 3, "stride": 2, "padding": 1}, (2, 1, 7, 6)),
         ({"kernel": 2, "ceil_mode": True}, (1, 1, 5, 7)),
         ({"kernel": (3, 2), "stride": 2, "padding": (1, 1), "ceil_mode": True}, (1, 2, 8, 5)),
         ({"kernel": 3, "stride": 3, "padding": 1, "ceil_mode": True}, (1, 1, 7, 7))]
DILATED_POOLS = [({"kernel": 2, "stride": 1, "dilation": (2, 3)}, (1, 2, 7, 8)),
                 ({"kernel": 2, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}, (1, 1, 7, 7)),
                 ({"kernel": 3, "stride": 2, "padding": 1, "dilation": 2}, (2, 1, 9, 8))]


def torch_pool_params(params):
    kernel = params["kernel"]
    return {"kernel_size": kernel, "stride": params.get("stride", kernel), "padding": params.get("padding", 0),
            "ceil_mode": params.get("ceil_mode", False), **({"dilation": params["dilation"]} if "dilation" in params else {})}


@needs_torch
@pytest.mark.parametrize("params,shape", POOLS + DILATED_POOLS)
def test_max_pool2d_matches_torch(params, shape):
    import torch.nn.functional as F

    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1  # distinct values: no ties, one winner per window
    compare_with_torch("max_pool2d", [x], params, lambda t: F.max_pool2d(t, **torch_pool_params(params)))


@needs_torch
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("params,shape", POOLS)
def test_avg_pool2d_matches_torch(params, shape, count_include_pad):
    import torch.nn.functional as F

    x = rng.standard_normal(shape)
    compare_with_torch("avg_pool2d", [x], {**params, "count_include_pad": count_include_pad},
                       lambda t: F.avg_pool2d(t, **torch_pool_params(params), count_include_pad=count_include_pad))


def test_max_pool2d_padding_never_wins_and_routes_to_the_real_maximum():
    """The bug the issue found in a numpy library: with padding, the gradient went to the wrong elements."""
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: a zero padding would win every border window
    out = run("max_pool2d", x, kernel=2, stride=2, padding=1)
    close(out, [[[[-1.0, -2.0], [-4.0, -5.0]]]])
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 0, 0] = expected[0, 0, 0, 1] = expected[0, 0, 1, 0] = expected[0, 0, 1, 1] = 1.0
    close(grads("max_pool2d", 1.0, x, kernel=2, stride=2, padding=1)[0], expected)


@pytest.mark.parametrize("name,params,message", [
    ("conv2d", {"padding": "same", "stride": 2}, "needs stride 1"), ("conv2d", {"padding": "full"}, "'same', 'valid'"),
    ("conv_transpose2d", {"padding": "same"}, "must be an integer"),
])
def test_conv_padding_names_are_pytorchs(name, params, message):
    with pytest.raises(OpArgumentError, match=message):
        run(name, np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), np.zeros(1), **params)


def test_pool_padding_more_than_half_the_kernel_is_refused():
    with pytest.raises(OpArgumentError, match="more than half the kernel"):
        run("avg_pool2d", np.zeros((1, 1, 4, 4)), kernel=2, padding=2)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> with zero biases."""
    x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2))
    params = {"stride": 2, "padding": 1, "dilation": (1, 2), "groups": 2}
    y = rng.standard_normal(run("conv2d", x, w, np.zeros(6), **params).shape)
    back = run("conv_transpose2d", y, w, np.zeros(4), **params, output_padding=(0, 1))
    assert back.shape == x.shape
    close(np.sum(run("conv2d", x, w, np.zeros(6), **params) * y), np.sum(x * back), rtol=1e-10)


# ---------------------------------------------------------------- the catalogue: gradcheck ops and docs/ops.md

def test_docs_ops_md_is_the_registry():
    """docs/ops.md is generated: regenerate it with `gradcheck ops --markdown > docs/ops.md`."""
    from pathlib import Path

    from gradcheck.ops.catalog import catalog_markdown

    written = (Path(__file__).parent.parent / "docs" / "ops.md").read_text()
    assert written == catalog_markdown(), "docs/ops.md is out of date: run `gradcheck ops --markdown > docs/ops.md`"
    for name, info in BUILTIN_OPS.items():
        assert f"| `{name}` | `{info.signature().replace('|', chr(92) + '|')}` |" in written, name


def test_gradcheck_ops_lists_every_op_with_its_signature():
    import json

    from click.testing import CliRunner

    from gradcheck.cli import main

    listed = json.loads(CliRunner().invoke(main, ["ops", "--json"]).output)
    assert {entry["name"]: entry["signature"] for entry in listed} == {
        name: info.signature() for name, info in BUILTIN_OPS.items()}
    for name in NEW_OPS:
        assert name in {entry["name"] for entry in listed}
    table = CliRunner().invoke(main, ["ops"]).output
    assert all(re.search(rf"^ *{name} ", table, re.MULTILINE) for name in BUILTIN_OPS)


def test_an_index_result_too_large_is_refused_before_it_is_computed(tmp_path):
    """x (2, 10000) indexed by 10000 row ids would build 10^8 elements: refused from the shapes alone."""
    from gradcheck.engine import ForwardError, forward

    graph = build(tmp_path, """
        inputs:
          x: {shape: [2, 10000], init: normal}
          ids: {shape: [10000], init: randint, high: 2}
        nodes: {y: "sum(x[ids])"}
        """)
    with pytest.raises(ForwardError, match=re.escape("would have shape (10000, 10000)")):
        forward(graph, "float64")


@pytest.mark.parametrize("pattern,shapes", [
    (("indices", slice(None), 1), [(3, 4, 2), (2, 5)]), ((1, "indices", None, slice(0, 1)), [(3, 4, 2), (2,)]),
    ((Ellipsis, "indices", None), [(2, 3, 4), (3,)]), (("indices", "indices"), [(3, 4), (2, 1), (1, 5)]),
    ((None, slice(None, None, 2), "indices"), [(5, 3), (4,)]),
])
def test_index_result_shape_follows_numpy_from_shapes_alone(pattern, shapes):
    x = np.zeros(shapes[0])
    arrays = [np.zeros(shape, dtype=np.int64) for shape in shapes[1:]]
    expected = run("index", x, *arrays, pattern=pattern).shape
    assert BUILTIN_OPS["index"].result_shape(shapes, {"pattern": pattern}) == expected
    arrays_iter = iter(arrays)
    assert expected == x[tuple(next(arrays_iter) if item == "indices" else item for item in pattern)].shape
    assert BUILTIN_OPS["index"].result_shape([(3, 4), (3, 4)], {"pattern": ("mask",)}) is None  # a count of data


def test_erf_matches_scipy():
    special = pytest.importorskip("scipy.special", reason="scipy is not installed (the independent erf reference)")
    x = np.linspace(-4, 4, 41)
    close(run("erf", x), special.erf(x), rtol=1e-15, atol=1e-16)
    close(grads("erf", 1.0, x)[0], 2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-14)
