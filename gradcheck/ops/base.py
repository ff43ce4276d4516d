"""The op protocol shared by built-in and custom ops.

An op is an object with

    forward(*inputs, **params) -> ndarray
    vjp(g, out, *inputs, **params) -> tuple   # one gradient per positional input, None where none
    jvp(tangents, out, *inputs, **params) -> ndarray   # optional

Built-in ops are classes deriving from :class:`Primitive`, which adds the metadata the
registry, the spec validator, the numeric module and the automatic op tests read:
argument names, keyword parameters, per-argument domains and whether the op has kinks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

REQUIRED = object()


class OpArgumentError(ValueError):
    """An op was called with arguments it cannot accept (bad axis, bad shapes, bad keyword).

    Raised from an op's forward or parameter validation; the graph turns it into a spec error
    located at the call that made it.
    """


@dataclass(frozen=True)
class Param:
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
    """Base class of the built-in ops: forward and vjp side by side, plus metadata.

    Class attributes read by the registry:
      name      the name used in expressions
      args      positional argument names; a trailing '*' name (e.g. '*arrays') makes it variadic
      params    {keyword: Param}
      domains   per positional argument, the domain name the op tests sample from
                ('real', 'positive', 'nonzero', 'unit', 'labels', ...); see ops.domains
      integer_args  positions that take integer data (labels, ids) and get no gradient
      has_kinks True when the op is not differentiable everywhere (relu at 0, max ties)
      complex_safe  True when forward is analytic in its arguments under complex inputs
                    (so the complex-step method may be used through it)
      batching  "broadcast", "axis" (with a batch_params method) or None: how forward takes
                many perturbed copies at once (gradcheck/batching.py)
      doc       the op's one-line description (defaults to the docstring's first line)
    """

    name: str = ""
    args: tuple[str, ...] = ()
    params: dict[str, Param] = {}
    domains: tuple[str, ...] = ()
    integer_args: tuple[int, ...] = ()
    has_kinks: bool = False
    complex_safe: bool = True
    batching: str | None = None  # how forward takes a leading batch axis; see gradcheck/batching.py

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


@dataclass
class OpInfo:
    """What the registry knows about one op, built-in or custom."""

    name: str
    impl: Any  # the object with forward / vjp (/ jvp)
    args: tuple[str, ...]
    variadic: bool
    params: dict[str, Param] | None  # None: accept any constant keywords (custom ops without a signature)
    doc: str
    domains: tuple[str, ...] = ()
    integer_args: tuple[int, ...] = ()
    has_kinks: bool = False
    complex_safe: bool = False
    source: str = "builtin"
    min_args: int = 0

    @property
    def has_jvp(self) -> bool:
        return callable(getattr(self.impl, "jvp", None))

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


Primitive.jvp = None  # type: ignore[assignment]  # ops define jvp only when they have a forward-mode rule
