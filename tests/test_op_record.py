"""The op record: every hook declared once on the base, read alike for built-in and custom ops;
every built-in op explains itself; no op name in the pipeline's code; no op module left unregistered."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradcheck
import gradcheck.ops
from gradcheck.batching import batched_apply
from gradcheck.engine import ForwardError, evaluate_node, forward
from gradcheck.graph import Node, build_graph
from gradcheck.ops import BUILTIN_OPS, OpInfo, Primitive, custom_op_info
from gradcheck.ops.base import OPTIONAL_HOOKS
from gradcheck.ops.losses import MeanLoss
from gradcheck.ops.registry import OP_MODULES, op_record
from gradcheck.spec import MAX_TOTAL_ELEMENTS, load_spec

from .test_ops_registry import cases_for

PACKAGE = Path(gradcheck.__file__).parent


class Bare:
    """An op that declares nothing but forward and vjp."""

    def forward(self, x):
        return 2 * x

    def vjp(self, g, out, x):
        return (2 * g,)


class BarePrimitive(Primitive):
    name, args = "bare", ("x",)
    forward, vjp = Bare.forward, Bare.vjp


def hooks_of(info: OpInfo) -> dict:
    return {hook: getattr(info, hook) for hook in OPTIONAL_HOOKS}


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------------------ the hooks

def test_every_hook_is_declared_on_the_base_with_a_docstring():
    source = inspect.getsource(Primitive)
    base_doc = gradcheck.ops.base.__doc__
    record_fields = {field.name for field in dataclasses.fields(OpInfo)}
    for hook in OPTIONAL_HOOKS:
        assert hook in vars(Primitive), f"{hook} is not declared on Primitive"
        assert hook in record_fields, f"{hook} is not a field of the op record"
        if isinstance(vars(Primitive)[hook], staticmethod):
            documented = inspect.getdoc(getattr(Primitive, hook))
        else:  # an attribute, documented by the string literal right after it
            documented = re.search(rf"\n    {hook}: [^\n]+\n    \"\"\"\S", source)
        assert documented, f"{hook} has no docstring on Primitive"
        assert re.search(rf"^  {hook}: ", base_doc, re.MULTILINE), f"{hook} is missing from ops/base.py's list of hooks"


def test_the_record_has_no_hook_fields_beyond_the_declared_ones():
    metadata = {"name", "impl", "args", "variadic", "params", "doc", "domains", "integer_args", "source", "min_args"}
    assert {field.name for field in dataclasses.fields(OpInfo)} - metadata == set(OPTIONAL_HOOKS)


def test_a_custom_op_gets_the_same_defaults_as_a_builtin_that_declares_nothing():
    custom = custom_op_info("bare", Bare(), "mine:Bare")
    builtin = op_record("bare", BarePrimitive(), args=("x",), variadic=False, min_args=1, params={}, doc="",
                        domains=("real",), integer_args=(), source="builtin")
    assert hooks_of(custom) == hooks_of(builtin)
    assert custom.complex_safe is False and custom.has_kinks is False and custom.draws_random is False
    assert custom.batching is None and custom.jvp is None and not custom.has_jvp
    assert custom.local_derivative is None and custom.vjp_formula is None
    assert custom.result_shape([(2, 3)], {}) is None
    assert custom.batch_params({"axis": 0}, (2, 3)) == {"axis": 0}


def test_a_custom_op_may_declare_any_hook():
    class Declared(Bare):
        has_kinks = complex_safe = draws_random = True
        batching = "broadcast"
        local_derivative = "2"
        vjp_formula = ("2g",)

        def jvp(self, tangents, out, x):
            return 2 * tangents[0]

        @staticmethod
        def result_shape(arg_shapes, params):
            return tuple(arg_shapes[0])

        @staticmethod
        def batch_params(params, shape):
            return {**params, "moved": True}

        def forward_batched(self, args, batched):
            return 2 * args[0]

    impl = Declared()
    record = custom_op_info("declared", impl, "mine:Declared")
    assert record.has_kinks and record.complex_safe and record.draws_random
    assert record.batching == "broadcast" and record.local_derivative == "2" and record.vjp_formula == ("2g",)
    assert record.has_jvp and record.jvp((np.array(1.0),), None, 0.0) == 2.0
    assert record.result_shape([(4, 5)], {}) == (4, 5)
    assert record.batch_params({}, ()) == {"moved": True}
    assert record.forward_batched([np.ones(2)], [True]).tolist() == [2.0, 2.0]


def test_complex_safety_is_declared_by_every_builtin():
    """The default is False; every built-in op says True explicitly except erf and gelu's erf form (math.erf,
    math.erfc are real-only)."""
    assert Primitive.complex_safe is False
    def defaults(info):
        return {key: p.default for key, p in (info.params or {}).items()}
    assert {name for name, info in BUILTIN_OPS.items() if not info.complex_safe_at(defaults(info))} == {"gelu", "erf"}
    assert BUILTIN_OPS["gelu"].complex_safe_at({"approximate": "tanh"})
    for name, info in BUILTIN_OPS.items():
        declared = [cls for cls in type(info.impl).__mro__ if "complex_safe" in vars(cls)]
        assert declared[0] is not Primitive, f"{name} relies on the default complex_safe"


def test_only_dropout_draws_random_numbers_and_takes_a_seed():
    random = {name for name, info in BUILTIN_OPS.items() if info.draws_random}
    assert random == {"dropout"}
    assert all("seed" in BUILTIN_OPS[name].params for name in random)


# ------------------------------------------------------------------------------------------ explain formulas

@pytest.mark.parametrize("name", sorted(BUILTIN_OPS))
def test_every_builtin_op_has_an_explain_formula(name):
    info = BUILTIN_OPS[name]
    declared = [formula for formula in (info.local_derivative, info.vjp_formula) if formula is not None]
    assert len(declared) == 1, f"{name} must declare exactly one of local_derivative and vjp_formula"
    (formula,) = declared
    if isinstance(formula, str):
        return
    assert len(formula) == len(info.args), f"{name}: {len(formula)} formulas for {len(info.args)} arguments"
    for position, template in enumerate(formula):
        differentiable = position not in info.integer_args
        assert (template is not None) or not differentiable or name in ("logistic_loss", "hinge"), (
            f"{name}: no formula for argument {position}")
    placeholders = {key for template in formula if template for key in re.findall(r"\{(\w+)\}", template)}
    known = {"x", "a", "b", "c", "d"} | {arg.lstrip("*") for arg in info.args}
    assert placeholders <= known, f"{name}: unknown placeholders {placeholders - known}"


def test_explain_shows_a_new_elementwise_formula_with_its_local_derivative(tmp_path):
    from gradcheck.engine import backward
    from gradcheck.explain import explain

    graph = build_graph(load_spec(write(tmp_path, "inputs: {x: 0.5}\nnodes: {y: log1p(x)}\n")))
    fwd = forward(graph, "float64")
    (step,) = [s for s in explain(graph, fwd, backward(graph, fwd, "float64")) if s.name == "y"]
    (argument,) = step.arguments
    assert argument.formula == "1/(1 + x)" and argument.formula_kind == "local"
    assert argument.local == pytest.approx(1 / 1.5)


# ------------------------------------------------------------------------------------------ no op names in the pipeline

@pytest.mark.parametrize("module", ["engine", "numeric", "judge", "pipeline", "explain", "views"])
def test_no_op_name_appears_in_the_pipeline_code(module):
    files = sorted((PACKAGE / module).rglob("*.py")) if (PACKAGE / module).is_dir() else [PACKAGE / f"{module}.py"]
    assert files and all(path.is_file() for path in files), module
    for path in files:
        source = path.read_text()
        named = [name for name in BUILTIN_OPS if f'"{name}"' in source or f"'{name}'" in source]
        assert not named, f"{path.relative_to(PACKAGE.parent)} names the op(s) {named}: declare it on the op record instead"


# ------------------------------------------------------------------------------------------ registration

def test_every_op_module_is_listed_and_every_primitive_registered():
    registered_types = {type(info.impl): name for name, info in BUILTIN_OPS.items()}
    for module_info in pkgutil.iter_modules([str(PACKAGE / "ops")]):
        module = importlib.import_module(f"gradcheck.ops.{module_info.name}")
        defined = [cls for cls in vars(module).values()
                   if isinstance(cls, type) and issubclass(cls, Primitive) and cls.__module__ == module.__name__]
        concrete = [cls for cls in defined if cls.name]
        if concrete:
            assert module_info.name in OP_MODULES, f"gradcheck/ops/{module_info.name}.py defines ops but is not in OP_MODULES"
        for cls in concrete:
            assert cls in registered_types, f"{cls.__name__} ({cls.name!r}) is defined but not registered with @builtin"
            assert registered_types[cls] == cls.name


# ------------------------------------------------------------------------------------------ result shapes

def result_shape_cases():
    for name, info in sorted(BUILTIN_OPS.items()):
        if info.result_shape is not Primitive.result_shape:
            yield from ((name, case) for case in range(len(cases_for(info, np.random.default_rng(0)))))


@pytest.mark.parametrize("name,case", list(result_shape_cases()), ids=str)
def test_a_declared_result_shape_is_the_shape_forward_builds(name, case):
    info = BUILTIN_OPS[name]
    inputs, params = cases_for(info, np.random.default_rng(0))[case]
    params = info.check_params(params)
    shapes = [np.shape(x) for x in inputs]
    declared = info.result_shape(shapes, params)
    out = np.asarray(info.impl.forward(*inputs, **params))
    if declared is None:  # "unknown" only where the shape is data: how many elements a boolean mask selects
        assert name == "index" and "mask" in params["pattern"], f"{name}: result_shape gave None for shapes {shapes}"
        return
    if isinstance(info.impl, MeanLoss):  # a mean of per-element losses: the broadcast is what forward builds
        assert declared == np.broadcast_shapes(*shapes) and out.shape == ()
    else:
        assert declared == out.shape


def test_a_matmul_too_large_is_refused_before_it_is_computed(tmp_path):
    rows = math.isqrt(MAX_TOTAL_ELEMENTS) + 1
    spec = write(tmp_path, f"inputs:\n  a: {{shape: [{rows}, 1], init: ones}}\n  b: {{shape: [1, {rows}], init: ones}}\n"
                           "nodes:\n  y: sum(a @ b)\n")
    with pytest.raises(ForwardError, match=re.escape(f"would have shape ({rows}, {rows})")):
        forward(build_graph(load_spec(spec)), "float64")


def test_a_custom_op_declaring_its_result_shape_is_refused_before_its_forward_runs(tmp_path):
    (tmp_path / "huge.py").write_text(textwrap.dedent(f'''
        class Huge:
            @staticmethod
            def result_shape(arg_shapes, params):
                return ({MAX_TOTAL_ELEMENTS + 1},)
            def forward(self, x):
                raise AssertionError("forward ran")
            def vjp(self, g, out, x):
                return (g,)
    '''))
    spec = write(tmp_path, 'inputs: {x: 1.0}\nops: {huge: "huge:Huge"}\nnodes: {y: huge(x)}\n')
    with pytest.raises(ForwardError, match=re.escape(f"would have shape ({MAX_TOTAL_ELEMENTS + 1},)")):
        forward(build_graph(load_spec(spec)), "float64")


# ------------------------------------------------------------------------------------------ batching faults

def custom_node(forward_batched):
    class Batched(Bare):
        batching = "custom"

    Batched.forward_batched = staticmethod(forward_batched)
    info = custom_op_info("batched", Batched(), "mine:Batched")
    return Node(index=0, name="batched", kind="op", op=info, params={})


def evaluate(node, args, params=None):
    return evaluate_node(node, args, np.float64, params)


def test_a_batching_rule_that_does_not_apply_falls_back_to_the_loop():
    def wrong_shapes(args, batched):
        raise ValueError("operands could not be broadcast together")

    copies = np.arange(6.0).reshape(3, 2)
    result = batched_apply(custom_node(wrong_shapes), [copies], [True], 3, (2,), evaluate)
    np.testing.assert_array_equal(result, 2 * copies)


def test_a_fault_in_a_batching_rule_is_not_swallowed():
    def broken(args, batched):
        raise RuntimeError("a bug in the op's batching code")

    with pytest.raises(RuntimeError, match="a bug in the op's batching code"):
        batched_apply(custom_node(broken), [np.ones((3, 2))], [True], 3, (2,), evaluate)
