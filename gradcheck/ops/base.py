"""The op record: everything about an op, declared on it, with its default in one place.

An op is an object with

    forward(*inputs, **params) -> ndarray
    vjp(g, out, *inputs, **params) -> tuple   # one gradient per positional input, None where none

Built-in ops are classes deriving from :class:`Primitive`; a spec's custom op is any object with
forward and vjp.  Both end up as the same :class:`OpInfo` record (``registry.op_record``), whose
optional hooks are read from the op's attributes, and whatever an op does not declare takes the
default declared on :class:`Primitive` -- the one base, for built-in and custom ops alike.

Optional hooks (any op, built-in or custom, may declare them; name: type = default -- read by):

  jvp: (tangents, out, *inputs, **params) -> ndarray, or None = None -- forward_mode
      the forward-mode rule, checked against the vjp when given (one tangent per input, None where none)
  has_kinks: bool = False -- cli (`gradcheck ops`)
      the op is not differentiable everywhere (relu at 0, max at ties)
  branches: (*inputs, **params) -> ndarray | tuple of ndarrays | None = None -- judge (kinks)
      the op's branch decision per element at these inputs (relu: sign(x); max: the winners mask); an element
      whose finite-difference stencil changes a decision, or that sits on a tie, is at a kink
  complex_safe: bool, or (params) -> bool = False -- numeric (the complex-step method)
      forward is analytic in its arguments under complex inputs, so complex-step may run through it; a function
      of the node's keyword parameters where that depends on them (gelu: analytic for approximate='tanh' only)
  draws_random: bool = False -- graph
      forward draws random numbers from a keyword 'seed'; a missing seed is filled per node from the spec's
  batching: "broadcast" | "stack" | "axis" | "custom" | None, or (unbatched_shapes, batched) -> one of
      those = None -- gradcheck/batching.py
      how forward takes K perturbed copies on a leading axis (None: one copy at a time)
  batch_params: (params, shape) -> dict = params unchanged -- gradcheck/batching.py ("axis")
      the keyword parameters that make forward take the batched input (axes moved past the batch axis)
  forward_batched: (aligned_args, batched, **params) -> ndarray, or None = None -- gradcheck/batching.py ("custom")
      the copies' values, shape (K, *shape), computed by the op itself
  linear_in: tuple[int, ...] | bool = () -- judge (local)
      the positional arguments forward is affine in while the others are held fixed (matmul in each, sum, a
      reshape, conv2d in its input, kernel and bias); True: every one (concat's arrays).  The op-local check then
      takes J d from two evaluations at a long step, and falls back to its full stencil where they show the
      op is not affine after all (a wrong declaration costs time, never a verdict); a built-in op's (tested)
      declaration also lets a joint probe (numeric/evaluator.py) carry one change per move through it
  propagate: (changes, out, *inputs, **params) -> Change | None = None -- numeric (the evaluator)
      how a change of the arguments changes the result (gradcheck/ops/changes.py): ``changes`` holds one
      Change or None (unchanged) per positional input, ``out`` is the unperturbed result; None (the hook,
      or its return): recompute forward on the perturbed inputs -- always correct, so custom ops need nothing
  batched_vjp: (gs, out, *inputs, **params) -> tuple, or None = None -- judge (local)
      the vjp of K cotangents at once, stacked on a leading axis (gs of shape (K, *out.shape)): one gradient
      per input of shape (K, *input.shape), None where the vjp gives none, row k the vjp of gs[k]; the op-local
      check then takes its random cotangents in one call.  Read for built-in ops only, whose declarations
      tests/test_batched_vjp.py checks against one call per cotangent: a custom op's vjp is called once per
      cotangent, so the rule checked is the one its graph runs
  result_shape: (arg_shapes, params) -> tuple | None = returns None -- engine
      the shape of the largest array forward builds (its result, or a mean loss's per-element terms), so
      an oversized one is refused before it is computed; None: unknown
  peak_elements: (arg_shapes, params) -> int | None = returns None -- sizing
      the element count of the largest intermediate forward or vjp builds where it exceeds both the result
      and every argument (attention's score matrix, conv2d's unfolded windows), so the check is sized before
      any of it is allocated; None: nothing larger than the result and the arguments
  local_derivative: str | tuple[str | None, ...] | None = None -- explain
      an elementwise op's d out / d argument, one string for every argument or one per argument,
      with placeholders {x}, {a}, {b}, ... or the argument names ({pred})
  vjp_formula: str | tuple[str | None, ...] | None = None -- explain
      for an op whose Jacobian is not diagonal: the gradient passed on, in terms of the upstream g ("g @ {b}ᵀ")
  backward_rule: Callable | None = None -- judge (the suspect's source line)
      the user's function whose code computes the vjp when the vjp only adapts it (a pair's backward, a
      layer's backward method); None: the vjp itself

Built-in metadata (class attributes of a Primitive; a custom op's come from its forward's signature):
``name``, ``args``, ``params``, ``domains``, ``integer_args``, ``test_cases`` -- see :class:`Primitive`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..plaindata import FrozenPlainData, PlainData

REQUIRED = object()


class OpArgumentError(ValueError):
    """An op was called with arguments it cannot accept (bad axis, bad shapes, bad keyword).

    Raised from an op's forward or parameter validation; the graph turns it into a spec error
    located at the call that made it.
    """


@dataclass(frozen=True, eq=False, repr=False)
class Param(FrozenPlainData):
    """A constant keyword parameter of an op, validated before the op runs."""

    kind: str  # int, float, bool, str, axis, axes, ints, number_or_none, choice, any
    default: Any = REQUIRED
    choices: tuple = ()
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, name: str, value: Any) -> Any:
        """Return the normalised value, or raise OpArgumentError saying what is wrong."""
        kind = self.kind
        if kind == "any":
            return value
        if value is None and (self.default is None):
            return None
        if kind == "bool":
            if not isinstance(value, bool):
                raise OpArgumentError(f"keyword '{name}' must be true or false, got {value!r}")
            return value
        if kind in ("int", "ints") and isinstance(value, str) and self.choices:  # a number or a named choice
            if value not in self.choices:
                raise OpArgumentError(f"keyword '{name}' must be a number or one of {', '.join(map(repr, self.choices))}, "
                                      f"got {value!r}")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise OpArgumentError(f"keyword '{name}' must be an integer, got {value!r}")
            self._check_range(name, value)
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise OpArgumentError(f"keyword '{name}' must be a number, got {value!r}")
            if not np.isfinite(value):
                raise OpArgumentError(f"keyword '{name}' must be finite, got {value!r}")
            self._check_range(name, value)
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise OpArgumentError(f"keyword '{name}' must be a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise OpArgumentError(
                    f"keyword '{name}' must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
            return value
        if kind == "axis":
            if isinstance(value, bool) or not isinstance(value, int):
                raise OpArgumentError(f"keyword '{name}' must be an integer axis, got {value!r}")
            return value
        if kind == "axes":  # None, an int or a tuple of ints
            if isinstance(value, (list, tuple)):
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                    raise OpArgumentError(f"keyword '{name}' must be an axis or a tuple of axes, got {value!r}")
                return tuple(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise OpArgumentError(f"keyword '{name}' must be an axis or a tuple of axes, got {value!r}")
            return value
        if kind == "ints":  # an int or a tuple of ints (shapes, kernel sizes)
            if isinstance(value, (list, tuple)):
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                    raise OpArgumentError(f"keyword '{name}' must be a tuple of integers, got {value!r}")
                for v in value:
                    self._check_range(name, v)
                return tuple(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise OpArgumentError(f"keyword '{name}' must be an integer or a tuple of integers, got {value!r}")
            self._check_range(name, value)
            return value
        raise AssertionError(f"unknown parameter kind {kind}")

    def _check_range(self, name: str, value: float) -> None:
        if self.minimum is not None and value < self.minimum:
            raise OpArgumentError(f"keyword '{name}' must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise OpArgumentError(f"keyword '{name}' must be <= {self.maximum}, got {value!r}")


class Primitive:
    """Base class of the built-in ops, and the one place every hook of the op record has its default.

    Metadata of a built-in op (class attributes):
      name          the name used in expressions
      args          positional argument names; a trailing '*' name (e.g. '*arrays') makes it variadic
      params        {keyword: Param}
      domains       per positional argument, the domain name the op tests sample from
                    ('real', 'positive', 'nonzero', 'unit', 'labels', ...); see ops.domains
      integer_args  positions that take integer data (labels, ids) and get no gradient
      doc           the op's one-line description (the docstring's first line)

    The optional hooks below are read into the op record (``OpInfo``) for built-in and custom ops
    alike; an op that does not declare one gets the default given here.
    """

    name: str = ""
    args: tuple[str, ...] = ()
    params: dict[str, Param] = {}
    domains: tuple[str, ...] = ()
    integer_args: tuple[int, ...] = ()

    jvp: Callable | None = None
    """Forward-mode rule ``jvp(tangents, out, *inputs, **params) -> ndarray`` (one tangent per input,
    None for inputs without one); checked in forward mode when given."""

    has_kinks: bool = False
    """True when the op is not differentiable everywhere (relu at 0, max at ties)."""

    branches: Callable | None = None
    """Branch decisions ``branches(*inputs, **params) -> ndarray | tuple of ndarrays`` at the given inputs:
    one decision per element (relu: sign(x), max: the mask of winning elements), so that a tie or a boundary
    is a decision of its own and any step across it changes one.  None: the op has no branches."""

    complex_safe: bool | Callable[[dict], bool] = False
    """True when forward is analytic in its arguments under complex inputs, so the complex-step method
    may differentiate through it; or ``complex_safe(params) -> bool`` where that depends on the node's keyword
    parameters (read through :meth:`OpInfo.complex_safe_at`).  False is the safe default for code nobody has
    checked."""

    draws_random: bool = False
    """True when forward draws random numbers from a keyword 'seed'; the graph then fills a missing seed
    with one derived from the spec's seed and the node, so every pass sees the same draw."""

    batching: str | Callable | None = None
    """How forward takes K perturbed copies stacked on a leading axis (see gradcheck/batching.py):
    "broadcast", "stack", "axis" (with batch_params), "custom" (with forward_batched), None (one copy at
    a time), or a function ``(unbatched_shapes, batched) -> one of those`` deciding per call."""

    @staticmethod
    def batch_params(params: dict, shape: tuple) -> dict:
        """For the "axis" rule: the keyword parameters that make forward take a batched input whose
        unbatched shape is ``shape`` (axes shifted past the batch axis).  Default: unchanged."""
        return params

    forward_batched: Callable | None = None
    """For the "custom" rule: ``forward_batched(aligned_args, batched, **params) -> (K, *shape)``."""

    linear_in: tuple[int, ...] | bool = ()
    """The positional arguments forward is affine in while the others are held fixed: f(.., x + t·d, ..) =
    f(.., x, ..) + t·L(d) for every t and d (matmul in each argument, a sum, a reshape, conv2d in its input,
    kernel and bias, a + b); True: every positional argument (variadic ops such as concat).  The op-local check
    (judge/local.py) then reads J d off two evaluations at a long step, where central differences of an affine
    map are exact up to round-off, instead of its five-point stencil; the same two evaluations and the
    unperturbed result give f(x + d) + 2 f(x - d/2) - 3 f(x), zero for an affine map, so a custom op's wrong
    declaration falls back to the stencil.  A built-in op's declaration, which tests/test_linear_ops.py checks
    against independent finite differences, is trusted further: one evaluation f(x + d) - f(x) for its local
    check, an exact reference for its jvp check, and the joint probes carry its changes as one array.  () is
    the safe default: the stencil for every argument."""

    propagate: Callable | None = None
    """How a change of the arguments changes the result: ``propagate(changes, out, *inputs, **params) ->
    Change | None`` (gradcheck/ops/changes.py), one Change or None per positional input.  Linear ops act on
    the difference alone, elementwise ops recompute the changed entries.  None, as hook or as result:
    the evaluator recomputes forward on the perturbed inputs (correct for any op)."""

    batched_vjp: Callable | None = None
    """The vjp of K cotangents stacked on a leading axis: ``batched_vjp(gs, out, *inputs, **params)`` with gs of
    shape (K, *out.shape) returns one gradient per input of shape (K, *input.shape) (None where vjp gives none),
    row k equal to ``vjp(gs[k], out, *inputs, **params)``.  The op-local check (judge/local.py) takes its random
    cotangents in one call with it.  An op whose vjp already maps extra leading axes of g through (g times a
    function of the inputs, nothing summed) declares ``batched_vjp = vjp``; one that sums a broadcast gradient
    back (unbroadcast would sum the cotangent axis away too) spells it out with :func:`unbroadcast_batched`.
    Read for built-in ops only (tests/test_batched_vjp.py checks every declaration against one call per
    cotangent); None: one vjp call per cotangent, the default and what custom ops get."""

    @staticmethod
    def result_shape(arg_shapes: list[tuple[int, ...]], params: dict) -> tuple[int, ...] | None:
        """The shape of the largest array forward builds for these argument shapes -- its result, or an
        intermediate where that is larger (a mean loss's per-element terms) -- so oversized results are
        refused before they are computed.  None: unknown.  May raise ValueError, TypeError or IndexError where
        the shapes or parameters do not fit (forward then says what is wrong)."""
        return None

    @staticmethod
    def peak_elements(arg_shapes: list[tuple[int, ...]], params: dict) -> int | None:
        """The element count of the largest intermediate forward or vjp builds, where it is larger than the
        result and every argument (attention's scores, conv2d's unfolded windows); the check is sized from it
        before anything is allocated.  None: no intermediate larger than those.  May raise ValueError,
        TypeError or IndexError where the shapes do not fit (forward then says what is wrong)."""
        return None

    local_derivative: str | tuple[str | None, ...] | None = None
    """For `gradcheck explain`, an elementwise op's d out / d argument: one string for every argument or
    one per argument (None: none).  Placeholders: {x} the argument of a one-argument op, {a} {b} ... the
    arguments by position, or by the op's argument names ({pred}); filled with a constant's value, "x"
    where only one argument is not a constant, else the argument's name."""

    vjp_formula: str | tuple[str | None, ...] | None = None
    """For `gradcheck explain`, the gradient passed on by an op whose Jacobian is not diagonal, in terms of
    the upstream gradient g (e.g. "g @ {b}ᵀ"); one string for every argument or one per argument."""

    backward_rule: Callable | None = None
    """The function that holds the code of the backward rule when vjp only adapts it (a forward/backward
    pair's backward): the line a wrong gradient is pointed at.  None: the vjp itself."""

    def forward(self, *inputs, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, g, out, *inputs, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def test_cases(rng: np.random.Generator) -> list[tuple[tuple, dict]] | None:
        """Optional: explicit (inputs, params) cases for the automatic op test.

        None means: sample the standard shapes (scalar, vector, matrix, broadcast) from the domains.
        """
        return None


OPTIONAL_HOOKS = ("jvp", "has_kinks", "branches", "complex_safe", "draws_random", "batching", "batch_params",
                  "forward_batched", "linear_in", "propagate", "batched_vjp", "result_shape", "peak_elements",
                  "local_derivative", "vjp_formula", "backward_rule")


def broadcast_result(arg_shapes: list[tuple[int, ...]], params: dict) -> tuple[int, ...]:
    """result_shape of ops that broadcast their arguments elementwise."""
    return tuple(np.broadcast_shapes(*arg_shapes))


def first_argument_shape(arg_shapes: list[tuple[int, ...]], params: dict) -> tuple[int, ...]:
    """result_shape of ops whose result has their first argument's shape (softmax, clip, layer_norm)."""
    return tuple(arg_shapes[0])


def scalar_result(arg_shapes: list[tuple[int, ...]], params: dict) -> tuple[int, ...]:
    """result_shape of ops that return one number (losses averaged over every sample)."""
    return ()


def view_shape(shape: tuple[int, ...], view: Callable) -> tuple[int, ...]:
    """The shape of view(x) for an x of this shape (a transpose, reshape or subscript), taken on a
    zero-stride stand-in that holds no memory."""
    return tuple(np.shape(view(np.broadcast_to(np.empty((), dtype=np.int8), shape))))


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back down to an input's shape (the adjoint of broadcasting)."""
    grad = np.asarray(grad)
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def unbroadcast_batched(grads: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """unbroadcast for gradients stacked on a leading axis that is kept: (K, ...) summed down to (K, *shape)."""
    grads = np.asarray(grads)
    extra = grads.ndim - 1 - len(shape)
    if extra > 0:
        grads = grads.sum(axis=tuple(range(1, 1 + extra)))
    axes = tuple(1 + i for i, n in enumerate(shape) if n == 1 and grads.shape[1 + i] != 1)
    if axes:
        grads = grads.sum(axis=axes, keepdims=True)
    return grads.reshape((grads.shape[0],) + tuple(shape))


def scalar_batched_vjp(op, gs, out, *inputs, **params) -> tuple:
    """batched_vjp of an op whose result is one number: the vjp is linear in g, so row k is gs[k] times the
    gradients the vjp gives for g = 1 (one call)."""
    unit = op.vjp(np.ones(np.shape(out)), out, *inputs, **params)
    gs = np.asarray(gs)
    return tuple(None if grad is None else np.reshape(gs, (-1,) + (1,) * np.ndim(grad)) * grad for grad in unit)


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise OpArgumentError(f"{name}={axis} is out of range for an input with {ndim} dimension(s)")
    return axis % max(ndim, 1)


def normalize_axes(axis, ndim: int) -> tuple[int, ...] | None:
    """None -> None (all axes); int or tuple -> a tuple of non-negative axes, validated."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    normalized = tuple(normalize_axis(a, ndim) for a in axes)
    if len(set(normalized)) != len(normalized):
        raise OpArgumentError(f"axis={axis!r} repeats an axis")
    return normalized


def expand_reduced(g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
    """Re-insert the reduced axes into a reduction's gradient so it broadcasts against the input."""
    if keepdims or axes is None and np.ndim(g) == len(shape):
        return np.asarray(g)
    if axes is None:
        return np.reshape(g, (1,) * len(shape))
    return np.expand_dims(g, axes)


def real_part(x):
    """Branch decisions (sign, argmax) are taken on the real part so forward stays usable under complex-step."""
    return np.real(x) if np.iscomplexobj(x) else x


@dataclass(eq=False, repr=False)
class OpInfo(PlainData):
    """The op record: what the registry knows about one op, built-in or custom.

    The hook fields are filled by ``registry.op_record`` from the op's attributes, with the defaults
    declared on :class:`Primitive`; see the module docstring for the list.
    """

    name: str
    impl: Any  # the object with forward / vjp (/ jvp)
    args: tuple[str, ...]
    variadic: bool
    params: dict[str, Param] | None  # None: accept any constant keywords (custom ops without a signature)
    doc: str
    domains: tuple[str, ...]
    integer_args: tuple[int, ...]
    source: str  # "builtin", or the custom op's "module:attribute"
    min_args: int
    jvp: Callable | None
    has_kinks: bool
    branches: Callable | None
    complex_safe: bool | Callable[[dict], bool]
    draws_random: bool
    batching: str | Callable | None
    batch_params: Callable
    forward_batched: Callable | None
    linear_in: tuple[int, ...] | bool
    propagate: Callable | None
    batched_vjp: Callable | None
    result_shape: Callable
    peak_elements: Callable
    local_derivative: str | tuple[str | None, ...] | None
    vjp_formula: str | tuple[str | None, ...] | None
    backward_rule: Callable | None

    @property
    def has_jvp(self) -> bool:
        return callable(self.jvp)

    def is_linear_in(self, position: int) -> bool:
        """Whether the op declares forward affine in its argument at ``position`` (the linear_in hook)."""
        return self.linear_in is True or (self.linear_in is not False and position in self.linear_in)

    def complex_safe_at(self, params: dict) -> bool:
        """Whether forward is analytic under complex inputs with these keyword parameters."""
        if callable(self.complex_safe):
            return bool(self.complex_safe(params))
        return self.complex_safe

    def signature(self) -> str:
        parts = list(self.args)
        if self.params is None:
            parts.append("**params")
        else:
            for key, p in self.params.items():
                parts.append(key if p.required else f"{key}={p.default!r}")
        return f"{self.name}({', '.join(parts)})"

    def positional_params(self) -> list[str]:
        """Keywords that may also be given positionally after the arrays: clip(x, -1, 1), softmax(z, -1)."""
        if self.variadic or self.params is None:
            return []
        return [key for key in self.params if key != "seed"]

    def check_arity(self, count: int) -> str | None:
        if self.variadic:
            if count < self.min_args:
                return f"{self.name}() takes at least {self.min_args} array argument(s), got {count}"
            return None
        most = len(self.args) + len(self.positional_params())
        if count < len(self.args) or count > most:
            expected = f"{len(self.args)} array argument(s) ({', '.join(self.args)})"
            if most > len(self.args):
                expected += f" and up to {most - len(self.args)} constant(s) ({', '.join(self.positional_params())})"
            return f"{self.name}() takes {expected}, got {count}"
        return None

    def check_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Validate constant keywords and fill defaults; raise OpArgumentError naming the fault."""
        if self.params is None:
            return dict(given)
        result = {}
        for key, value in given.items():
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise OpArgumentError(f"{self.name}() has no keyword '{key}' (its keywords: {known})")
            result[key] = self.params[key].check(key, value)
        for key, p in self.params.items():
            if key not in result:
                if p.required:
                    raise OpArgumentError(f"{self.name}() needs the keyword '{key}'")
                result[key] = p.default
        return result

