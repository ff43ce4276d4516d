"""The reverse-mode engine: one forward pass, one backward pass, an adjoint for every node.

Adjoints ACCUMULATE over fan-out (a node used twice, diamonds): each consumer adds the
gradient its vjp passes back.  A vjp that raises or returns a wrong shape does not stop the
pass: the fault is recorded against that node and NaN flows to its arguments, so the
comparison names the op and everything upstream of it shows as affected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import sizing
from .errors import SpecError, clip, first_position
from .graph import Graph, Node
from .plaindata import PlainData
from .spec import MAX_TOTAL_ELEMENTS, stable_seed

DTYPES = {"float64": np.float64, "float32": np.float32}


class ForwardError(SpecError):
    """The forward pass cannot be evaluated (an op raised, or produced NaN/Inf)."""


@dataclass(eq=False, repr=False)
class ForwardPass(PlainData):
    """Every node's value in one dtype, and the scalar objective differentiated."""

    values: list[np.ndarray]
    output_value: np.ndarray
    projection: np.ndarray | None       # v in sum(v * out) for a non-scalar output; None for a scalar
    objective: float                    # the scalar that is differentiated
    faults: dict[int, str] = field(default_factory=dict)  # node index -> what its forward modified in place


@dataclass(eq=False, repr=False)
class BackwardPass(PlainData):
    """Every node's adjoint and what each op's vjp passed on (or did wrong)."""

    adjoints: list[np.ndarray | None]   # d objective / d node, node-shaped; None where nothing flows
    edge_grads: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (node, arg position) -> passed grad
    faults: dict[int, str] = field(default_factory=dict)  # node index -> what its vjp did wrong
    declared_none: set[tuple[int, int]] = field(default_factory=set)  # (node, arg position): vjp gave None


def cast_value(value: np.ndarray, dtype) -> np.ndarray:
    value = np.asarray(value)
    return value.astype(dtype) if value.dtype.kind in "fc" or value.dtype == bool else value


def evaluate_node(node: Node, args: list, dtype, params: dict | None = None) -> np.ndarray:
    """One op application, with the result cast to the pass dtype (float data stays in the pass's precision)."""
    return guarded_forward(node, args, dtype, params, compare=False)[0]


def guarded_forward(node: Node, args: list, dtype, params: dict | None = None, *,
                    compare: bool = True) -> tuple[np.ndarray, str]:
    """evaluate_node, and (with ``compare``) what the op's forward modified in place ('' for nothing).

    A custom op's forward is handed copies of its arrays, so one that changes them (``x *= 0.5``,
    ``np.maximum(x, 0, out=x)``) cannot corrupt the cached values every other check reads."""
    params = node.params if params is None else params
    if node.op_info.source == "builtin":
        result = np.asarray(node.op_info.impl.forward(*args, **params))
        mutated = ""
    else:
        copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        # the result is copied too: an op that keeps it (self.out = ...) and later changes it in place must not
        # change the value the graph holds
        result = np.array(node.op_info.impl.forward(*copies, **params), copy=True)
        changed = [f"argument {i} ({_arg_name(node, i)})" for i, (a, c) in enumerate(zip(args, copies, strict=True))
                   if compare and isinstance(a, np.ndarray) and not _unchanged(a, c)]
        mutated = f"forward modifies {', '.join(changed)} in place (an op must not change its inputs)" if changed else ""
    return _in_precision(result, dtype), mutated


def fault_rule(fault: str) -> str:
    """Which of an op's rules a recorded fault is about: its forward or its vjp."""
    return "forward" if fault.startswith("forward ") else "vjp"


def _in_precision(result: np.ndarray, dtype) -> np.ndarray:
    if result.dtype.kind == "c":
        return result
    if result.dtype.kind == "f" and result.dtype != dtype:
        result = result.astype(dtype)
    return result


def evaluation_failures(node: Node) -> tuple[type[BaseException], ...]:
    """What evaluating node may legitimately raise at a perturbed point (left a domain, a singular matrix,
    an argument an op refuses).  Anything a custom op's own code raises is that op's failure; anything
    else a built-in op raises is a bug in gradcheck and must propagate."""
    if node.op_info.source != "builtin":
        return (Exception,)
    return (ArithmeticError, ValueError)  # FloatingPointError, OverflowError, OpArgumentError, LinAlgError


def output_projection(graph: Graph, output_value: np.ndarray) -> np.ndarray | None:
    """A fixed random v (drawn from the seed) that reduces a non-scalar output to sum(v * out)."""
    if output_value.ndim == 0:
        return None
    if output_value.size == 1:
        return np.ones(output_value.shape)
    rng = np.random.default_rng(stable_seed(graph.spec.seed, "output", graph.spec.output))
    return rng.standard_normal(output_value.shape)


def forward(graph: Graph, dtype_name: str, *, sized: list | None = None) -> ForwardPass:
    """Every node's value in this dtype.  ``sized``: the node shapes sizing.refuse_over_budget already checked
    the graph's element limits at; an op whose arguments have those shapes is not checked again."""
    dtype = DTYPES[dtype_name]
    values: list[np.ndarray] = []
    faults: dict[int, str] = {}
    for node in graph.nodes:
        if node.kind != "op":
            values.append(cast_value(node.leaf_value, dtype))
            continue
        args = [values[a] for a in node.args]
        if sized is None or any(sized[a] is None or np.shape(values[a]) != sized[a] for a in node.args):
            _refuse_oversized(node, args)
        try:
            value, mutated = guarded_forward(node, args, dtype)
        except SpecError:
            raise
        except (Exception, SystemExit) as error:  # an op's own message, located at its call
            raise ForwardError(_forward_failure(node, args, error), node.location) from None
        if value.dtype.kind not in "biuf":  # complex values are for the complex-step method's perturbations only
            what = "complex numbers, not real ones" if value.dtype.kind == "c" else f"{clip(value.dtype)} data, not numbers"
            raise ForwardError(f"node '{node.name}' ({node.op_name}: {clip(node.text)}) returned {what}", node.location)
        if value.size > MAX_TOTAL_ELEMENTS:
            raise ForwardError(f"node '{node.name}' ({node.op_name}: {clip(node.text)}) returned {value.size:,} elements "
                               f"(shape {_shape(value.shape)}); the limit is {MAX_TOTAL_ELEMENTS:,} elements",
                               node.location)
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise ForwardError(_not_finite(node, args, value, dtype_name), node.location)
        if mutated:
            faults[node.index] = mutated
        values.append(value)
    output_value = values[graph.output]
    projection = output_projection(graph, output_value)
    objective = float(np.sum(output_value)) if projection is None else float(np.sum(projection * output_value))
    return ForwardPass(values, output_value, projection, objective, faults)


def _shape(shape) -> str:
    return str(tuple(int(n) for n in shape))


def _refuse_oversized(node: Node, args: list) -> None:
    """Refuse, before computing it, an op result or intermediate over the element limit (sizing.refuse_oversized)."""
    try:
        sizing.refuse_oversized(node, [np.shape(a) for a in args])
    except SpecError as error:
        raise ForwardError(error.message, error.location) from None


def _not_finite(node: Node, args: list, value: np.ndarray, dtype_name: str) -> str:
    """Which node produced NaN/Inf, at which element, from which argument values."""
    bad = first_position(~np.isfinite(value)) if value.ndim else ()
    at = f" at index {list(bad)}" if bad else ""
    operands = []
    for arg in args[:4]:
        arg = np.asarray(arg)
        if arg.ndim == 0:
            operands.append(f"{arg.item():.6g}" if arg.dtype.kind in "biuf" else str(arg.item()))
        elif np.ndim(value) >= arg.ndim and arg.shape == value.shape[value.ndim - arg.ndim:] and arg.ndim:
            element = arg[bad[len(bad) - arg.ndim:]]
            operands.append(f"{element:.6g}" if arg.dtype.kind in "biuf" else str(element))
        else:
            operands = []
            break
    there = f" from {node.op_name}({', '.join(operands)})" if operands else ""
    hint = " (float32 overflows above ~3.4e38; try dtype: float64)" if dtype_name == "float32" else ""
    return (f"node '{node.name}' ({node.op_name}: {clip(node.text)}) produced {value[bad]}{at}{there} "
            f"in the {dtype_name} forward pass{hint}")


def _forward_failure(node: Node, args: list, error: BaseException) -> str:
    from .ops import OpArgumentError

    shapes = ", ".join(_shape(np.shape(a)) for a in args)
    text = clip(node.text)
    if isinstance(error, OpArgumentError):
        return f"node '{node.name}' ({text}): {clip(error, 300)}"
    origin = "custom op" if node.op_info.source != "builtin" else "op"
    if isinstance(error, SystemExit):
        return f"node '{node.name}' ({text}): {origin} {node.op_info.name}({shapes}) called exit({clip(error.code)})"
    message = str(error) or type(error).__name__
    if isinstance(error, ValueError) and "broadcast" in message:
        return f"node '{node.name}' ({text}): shapes {shapes} do not broadcast together"
    if isinstance(error, MemoryError):
        return f"node '{node.name}' ({text}): {origin} {node.op_info.name}({shapes}) ran out of memory"
    return (f"node '{node.name}' ({text}): {origin} {node.op_info.name}({shapes}) raised "
            f"{type(error).__name__}: {clip(message, 200)}")


def backward(graph: Graph, fwd: ForwardPass, dtype_name: str) -> BackwardPass:
    dtype = DTYPES[dtype_name]
    values = fwd.values
    adjoints: list[np.ndarray | None] = [None] * len(graph.nodes)
    seed = np.ones((), dtype=dtype) if fwd.projection is None else fwd.projection.astype(dtype)
    adjoints[graph.output] = seed
    result = BackwardPass(adjoints, faults=dict(fwd.faults))
    for node in reversed(graph.nodes[: graph.output + 1]):
        g = adjoints[node.index]
        if node.kind != "op" or g is None:
            continue
        if node.index in fwd.faults:  # a faulty forward: its arguments get NaN, as from a faulty vjp
            grads = [np.full(np.shape(values[a]), np.nan) if differentiable(values[a]) else None for a in node.args]
        else:
            grads = call_vjp(node, g, values[node.index], [values[a] for a in node.args], result.faults,
                             result.declared_none)
        for position, (arg, grad) in enumerate(zip(node.args, grads, strict=True)):
            if grad is None:
                continue
            result.edge_grads[(node.index, position)] = grad
            adjoints[arg] = grad if adjoints[arg] is None else adjoints[arg] + grad
    return result


def call_vjp(node: Node, g, out, args: list, faults: dict[int, str], declared_none: set | None = None,
             *, recheck: bool | None = None) -> list:
    """The gradients node passes to its arguments; faults are recorded and replaced by NaN.

    A custom op is handed copies of g, out and its arguments and these are compared afterwards, so an op that
    modifies them in place is named and cannot corrupt the cached values the rest of the check reads.  A custom
    op's vjp is called twice on the same arguments (``recheck``): different results are a nondeterministic rule.
    """
    def poisoned():
        return [np.full(np.shape(a), np.nan) if differentiable(a) else None for a in args]

    if recheck is None:
        recheck = node.op_info.source != "builtin"
    outcome = _guarded_vjp(node, g, out, args)
    if isinstance(outcome, list):  # what is unusable is named before any comparison of two calls
        outcome = _unusable(node, outcome, args) or outcome
    if isinstance(outcome, list) and recheck:
        again = _guarded_vjp(node, g, out, args)
        if isinstance(again, str):
            outcome = again
        elif not _same_gradients(outcome, again):
            outcome = ("vjp is nondeterministic: two calls with the same arguments returned different gradients "
                       "(does it change, in place, an array it kept from its forward?)")
    if isinstance(outcome, str):
        faults[node.index] = outcome
        return poisoned()
    grads = outcome
    checked: list[np.ndarray | None] = []
    for position, (grad, arg) in enumerate(zip(grads, args, strict=True)):
        if not differentiable(arg):
            checked.append(None)
            continue
        if grad is None:  # the op declares this argument non-differentiable (the judge checks that claim)
            if declared_none is not None:
                declared_none.add((node.index, position))
            checked.append(np.zeros(np.shape(arg)))
            continue
        checked.append(np.asarray(grad))
    return checked


def _unusable(node: Node, grads: list, args: list) -> str:
    """What is wrong with the first gradient the vjp returned that cannot be used ('' where all can)."""
    for position, (grad, arg) in enumerate(zip(grads, args, strict=True)):
        problem = _gradient_problem(grad, arg) if grad is not None and differentiable(arg) else ""
        if problem:
            return f"vjp returned {problem} for argument {position} ({_arg_name(node, position)})"
    return ""


def _guarded_vjp(node: Node, g, out, args: list) -> list | str:
    """One call of the vjp (a custom op's on copies): the gradients as a list, or what the call did wrong.

    A built-in op is handed the values themselves: its rules leave their arguments unchanged
    (tests/test_ops_registry.py checks every one), and copying them is most of a small op's check."""
    builtin = node.op_info.source == "builtin"
    copies = list(args) if builtin else [np.array(a, copy=True) for a in args]
    g_copy, out_copy = (g, out) if builtin else (np.array(g, copy=True), np.array(out, copy=True))
    try:
        grads = node.op_info.impl.vjp(g_copy, out_copy, *copies, **node.params)
    except (SystemExit, Exception) as error:
        return rule_failure("vjp", error)
    if not builtin:
        mutated = [f"argument {i} ({_arg_name(node, i)})" for i, (a, c) in enumerate(zip(args, copies, strict=True))
                   if not _unchanged(a, c)]
        if not _unchanged(g, g_copy):
            mutated.insert(0, "the upstream gradient g")
        if not _unchanged(out, out_copy):
            mutated.append("its output")
        if mutated:
            return f"vjp modifies {', '.join(mutated)} in place (an op must not change its inputs)"
    if not isinstance(grads, (tuple, list)):
        if len(args) == 1 and grads is not None:
            grads = (grads,)
        else:
            return f"vjp returned {type(grads).__name__}, not a tuple of {len(args)} gradients"
    if len(grads) != len(args):
        return f"vjp returned {len(grads)} gradient(s) for {len(args)} input(s)"
    return list(grads)


def _unchanged(before, after) -> bool:
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        return False
    if bool(np.all(before == after)):  # the common case, at the cost of one comparison (np.array_equal with
        return True                    # equal_nan masks and copies both arrays first)
    if before.dtype.kind in "fc" and after.dtype.kind in "fc":  # NaN where it was NaN is unchanged too
        return bool(np.all((before == after) | (np.isnan(before) & np.isnan(after))))
    return False


def _same_gradients(first: list, second: list) -> bool:
    for a, b in zip(first, second, strict=True):
        if (a is None) != (b is None):
            return False
        if a is not None:
            try:
                if not _unchanged(np.asarray(a), np.asarray(b)):
                    return False
            except (TypeError, ValueError):
                return False
    return True


def _gradient_problem(grad, arg) -> str:
    """'' for a usable gradient of arg, else what is wrong with it (kind of data, shape)."""
    try:
        array = np.asarray(grad)
    except (TypeError, ValueError):
        return f"a {type(grad).__name__}, not an array"
    arg_dtype = np.asarray(arg).dtype
    if array.dtype.kind != "f" and not (array.dtype.kind == "c" and arg_dtype.kind == "c"):
        kind = {"c": "complex", "U": "string", "S": "bytes", "O": "object", "b": "boolean", "i": "integer",
                "u": "integer"}.get(array.dtype.kind, str(array.dtype))
        return f"{kind} data (dtype {array.dtype}), not a floating-point gradient"
    if array.dtype.kind == arg_dtype.kind and array.dtype.itemsize < arg_dtype.itemsize:
        return (f"a {array.dtype} gradient for a {arg_dtype} argument (the rule computes in a lower precision than "
                f"its inputs: a cast in the vjp? correctness is judged in float64, for float32 specs too)")
    if array.shape != np.shape(arg):
        return f"a gradient of shape {array.shape}, expected {np.shape(arg)}"
    return ""


def rule_failure(rule: str, error: BaseException) -> str:
    """What an op's vjp or jvp did instead of returning (its exceptions are reported, never raised)."""
    from .ops.conventions import RuleFault  # here: only a custom op's adapter raises it

    if isinstance(error, RuleFault):  # an adapter's own finding, already worded
        return str(error)
    if isinstance(error, SystemExit):
        return f"{rule} called exit({clip(error.code)})"
    return f"{rule} raised {type(error).__name__}: {clip(error, 200)}"


def differentiable(value) -> bool:
    return np.asarray(value).dtype.kind in "fc"


def _arg_name(node: Node, position: int) -> str:
    names = node.op_info.args
    if position < len(names) and not names[position].startswith("*"):
        return names[position]
    return f"#{position}"
