"""Every registered op's vjp against finite differences, over scalar, vector, matrix and
broadcast shapes inside its declared domain.  A new op is tested by being registered."""
from __future__ import annotations

import numpy as np
import pytest

from gradcheck.ops import BUILTIN_OPS
from gradcheck.ops.domains import sample

from .reference import assert_close, numeric_gradient

STANDARD_SHAPES = {
    1: [((),), ((4,),), ((2, 3),)],
    2: [((), ()), ((4,), (4,)), ((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3))],
}


def cases_for(info, rng):
    explicit = info.impl.test_cases(rng)
    if explicit is not None:
        return explicit
    arity = len(info.args)
    assert arity in STANDARD_SHAPES, f"op {info.name} takes {arity} arguments: give it test_cases()"
    return [(tuple(sample(domain, rng, shape) for domain, shape in zip(info.domains, shapes, strict=True)), {})
            for shapes in STANDARD_SHAPES[arity]]


def op_case_ids():
    ids = []
    for name, info in sorted(BUILTIN_OPS.items()):
        count = len(cases_for(info, np.random.default_rng(0)))
        ids.extend((name, k) for k in range(count))
    return ids


@pytest.mark.parametrize("name,case", op_case_ids(), ids=lambda v: str(v))
def test_vjp_matches_finite_differences(name, case):
    info = BUILTIN_OPS[name]
    rng = np.random.default_rng(1000 + case)
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    out = np.asarray(info.impl.forward(*inputs, **params))
    g = rng.standard_normal(out.shape)
    grads = info.impl.vjp(g, out, *inputs, **params)
    assert len(grads) == len(inputs), f"{name}: vjp returned {len(grads)} gradients for {len(inputs)} inputs"
    for position, x in enumerate(inputs):
        if position in info.integer_args or not np.issubdtype(np.asarray(x).dtype, np.floating):
            continue
        assert grads[position] is not None, f"{name}: no gradient for argument {position}"
        assert np.shape(grads[position]) == np.shape(x), (
            f"{name}: gradient of argument {position} has shape {np.shape(grads[position])}, input {np.shape(x)}")

        def projected(value, position=position):
            args = list(inputs)
            args[position] = value
            return np.sum(g * info.impl.forward(*args, **params))

        expected = numeric_gradient(projected, x)
        assert_close(grads[position], expected, atol=1e-7, rtol=1e-6, what=f"{name} argument {position}")


@pytest.mark.parametrize("name", sorted(BUILTIN_OPS))
def test_forward_keeps_float32(name):
    """A float32 analytic pass must stay float32 through every op."""
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[-1]
    params = info.check_params(params)
    inputs32 = tuple(np.asarray(x, dtype=np.float32)
                     if np.issubdtype(np.asarray(x).dtype, np.floating) and i not in info.integer_args else x
                     for i, x in enumerate(inputs))
    out = np.asarray(info.impl.forward(*inputs32, **params))
    assert out.dtype == np.float32, f"{name}: float32 inputs gave {out.dtype}"
    g = np.ones(out.shape, dtype=np.float32)
    for position, grad in enumerate(info.impl.vjp(g, out, *inputs32, **params)):
        if grad is not None and position not in info.integer_args:
            assert np.asarray(grad).dtype == np.float32, f"{name}: gradient {position} is {np.asarray(grad).dtype}"


def test_every_op_has_a_doc_and_domains():
    for name, info in BUILTIN_OPS.items():
        assert info.doc, f"{name} has no doc line"
        assert len(info.domains) == len(info.args) or info.variadic, f"{name}: domains do not match args"


@pytest.mark.parametrize("name,case", op_case_ids(), ids=lambda v: str(v))
def test_batched_forward_equals_one_copy_at_a_time(name, case):
    """The numeric reference stacks perturbed copies on a leading axis: each op's batching rule must
    give exactly what evaluating the copies one by one gives."""
    from gradcheck.batching import batched_apply, batched_forward, batching_rule
    from gradcheck.engine import evaluate_node
    from gradcheck.graph import Node

    info = BUILTIN_OPS[name]
    if info.batching is None:
        pytest.skip(f"{name} has no batching rule: its copies are evaluated one by one")
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    node = Node(index=0, name=name, kind="op", op=info, params=info.check_params(params))
    expected_shape = np.shape(info.impl.forward(*inputs, **node.params))
    rng = np.random.default_rng(7)
    floats = [i for i, x in enumerate(inputs) if np.asarray(x).dtype.kind == "f" and i not in info.integer_args]
    compared = 0
    for chosen in dict.fromkeys([tuple(floats[:1]), *((i,) for i in floats), tuple(floats)]):
        if not chosen:
            continue
        args, batched = list(inputs), [False] * len(inputs)
        for i in chosen:
            args[i] = np.stack([inputs[i] + 1e-3 * rng.standard_normal(np.shape(inputs[i])) for _ in range(3)])
            batched[i] = True

        def evaluate(node, a, p=None):
            return evaluate_node(node, a, np.float64, p)

        if batching_rule(node, args, batched) is None:  # a shape-dependent rule declined these shapes: nothing batched
            continue
        vectorised = batched_forward(node, args, batched, 3, expected_shape, evaluate)
        assert vectorised is not None, f"{name}: its batching rule gave the wrong shape and fell back"
        result = batched_apply(node, args, batched, 3, expected_shape, evaluate)
        np.testing.assert_array_equal(result, vectorised, err_msg=f"{name}: batched_apply did not take the batched path")
        compared += 1
        one_by_one = np.stack([evaluate(node, [a[k] if b else a for a, b in zip(args, batched, strict=True)]) for k in range(3)])
        np.testing.assert_allclose(result, one_by_one, rtol=1e-13, atol=1e-13, err_msg=f"{name} batched {chosen}")
    if not compared:
        pytest.skip(f"{name}: no float argument, or its rule batches none of these shapes")


def _snapshot(values):
    return [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in values]


def _same(before, after) -> bool:
    return all(not isinstance(b, np.ndarray) or (b.shape == np.shape(a) and np.array_equal(b, a, equal_nan=True))
               for b, a in zip(before, after, strict=True))


@pytest.mark.parametrize("name", sorted(BUILTIN_OPS))
def test_builtin_rules_leave_their_arguments_unchanged(name):
    """The engine hands built-in ops the cached values themselves, not copies (only custom ops get copies): a built-in
    forward, vjp or jvp that changed an argument, g or out in place would corrupt every check after it."""
    info = BUILTIN_OPS[name]
    rng = np.random.default_rng(7)
    for inputs, params in cases_for(info, np.random.default_rng(0)):
        params = info.check_params(params)
        inputs = [np.asarray(x) for x in inputs]
        kept = _snapshot(inputs)
        out = np.asarray(info.impl.forward(*inputs, **params))
        assert _same(kept, inputs), f"{name}: forward changed an argument"
        g = rng.standard_normal(out.shape)
        kept_g, kept_out = g.copy(), out.copy()
        info.impl.vjp(g, out, *inputs, **params)
        assert _same(kept + [kept_g, kept_out], inputs + [g, out]), f"{name}: vjp changed an argument, g or out"
        if info.has_jvp:
            tangents = tuple(rng.standard_normal(x.shape) if x.dtype.kind == "f" and i not in info.integer_args
                             else None for i, x in enumerate(inputs))
            kept_tangents = _snapshot(list(tangents))
            info.impl.jvp(tangents, out, *inputs, **params)
            assert _same(kept + [kept_out] + kept_tangents, inputs + [out] + list(tangents)), (
                f"{name}: jvp changed an argument, out or a tangent")
