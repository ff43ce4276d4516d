"""Reductions over axes: forward and vjp side by side."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import OpArgumentError, Param, Primitive, expand_reduced, normalize_axes, real_part
from .batching import shift_axis_param
from .changes import reduce_change, slices_change
from .registry import builtin

AXIS = Param("axes", default=None, doc="axis or tuple of axes; None reduces everything")
KEEPDIMS = Param("bool", default=False, doc="keep reduced axes with length 1")


def reduced_count(shape, axes) -> int:
    if axes is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def reduced_shape(arg_shapes, params) -> tuple[int, ...]:
    """result_shape of a reduction over params['axis'] (None: every axis), keepdims or not."""
    (shape,) = arg_shapes
    axes = normalize_axes(params.get("axis"), len(shape))
    reduced = range(len(shape)) if axes is None else axes
    if params.get("keepdims"):
        return tuple(1 if i in reduced else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in reduced)


def tie_shares(values, axes, reducer=np.max, dtype=np.float64):
    """1/k on each of the k elements that reach reducer(values) over axes, 0 elsewhere (ties share equally)."""
    winners = values == reducer(values, axis=axes, keepdims=True)
    return (winners / np.sum(winners, axis=axes, keepdims=True)).astype(dtype)


@builtin
class Sum(Primitive):
    """Sum over axis (all axes by default)."""
    name, args = "sum", ("x",)
    linear_in = (0,)
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    vjp_formula = ("g copied to every summed element",)
    params = {"axis": AXIS, "keepdims": KEEPDIMS}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    def forward(self, x, axis=None, keepdims=False):
        return np.sum(x, axis=normalize_axes(axis, np.ndim(x)), keepdims=keepdims)

    def propagate(self, changes, out, x, axis=None, keepdims=False):
        return reduce_change(changes[0], axis, keepdims)

    def vjp(self, g, out, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        return (np.broadcast_to(expand_reduced(g, np.shape(x), axes, keepdims), np.shape(x)).copy(),)


@builtin
class Mean(Primitive):
    """Arithmetic mean over axis (all axes by default)."""
    name, args = "mean", ("x",)
    linear_in = (0,)
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    vjp_formula = ("g / n copied to every averaged element",)
    params = {"axis": AXIS, "keepdims": KEEPDIMS}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    def forward(self, x, axis=None, keepdims=False):
        return np.mean(x, axis=normalize_axes(axis, np.ndim(x)), keepdims=keepdims)

    def propagate(self, changes, out, x, axis=None, keepdims=False):
        return reduce_change(changes[0], axis, keepdims, 1.0 / reduced_count(np.shape(x), normalize_axes(axis, np.ndim(x))))

    def vjp(self, g, out, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        count = reduced_count(np.shape(x), axes)
        return (np.broadcast_to(expand_reduced(g, np.shape(x), axes, keepdims), np.shape(x)) / count,)


class _Extremum(Primitive):
    """Shared rule of max and min: the gradient goes to the winning element; ties share it equally."""
    args, has_kinks = ("x",), True
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    params = {"axis": AXIS, "keepdims": KEEPDIMS}
    batching, batch_params = "axis", staticmethod(shift_axis_param)
    reducer: Callable[..., Any] = staticmethod(np.max)  # np.max or np.min (subclasses)

    def forward(self, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        if np.size(x) == 0:
            raise OpArgumentError(f"{self.name}() of an empty array")
        if np.iscomplexobj(x):
            winners = self._winners(x, axes)
            return np.sum(np.where(winners, x, 0), axis=axes, keepdims=keepdims) / np.sum(winners, axis=axes, keepdims=keepdims)
        return self.reducer(x, axis=axes, keepdims=keepdims)

    def propagate(self, changes, out, x, axis=None, keepdims=False):
        """The winner moves only within a changed slice: recompute those."""
        batched = shift_axis_param({"axis": axis, "keepdims": keepdims}, np.shape(x))
        return slices_change(self.forward, changes[0], x, out, normalize_axes(axis, np.ndim(x)), batched, keepdims)

    def _winners(self, x, axes):
        best = self.reducer(real_part(x), axis=axes, keepdims=True)
        return real_part(x) == best

    def vjp(self, g, out, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        share = tie_shares(real_part(x), axes, self.reducer, np.result_type(x, np.float32))
        return (expand_reduced(g, np.shape(x), axes, keepdims) * share,)

    def branches(self, x, axis=None, keepdims=False):
        return self._winners(x, normalize_axes(axis, np.ndim(x)))


@builtin
class Max(_Extremum):
    """Maximum over axis (kink at ties: tied elements share the gradient equally)."""
    name = "max"
    vjp_formula = ("g to the maximal element(s), shared at ties",)
    reducer = staticmethod(np.max)


@builtin
class Min(_Extremum):
    """Minimum over axis (kink at ties: tied elements share the gradient equally)."""
    name = "min"
    vjp_formula = ("g to the minimal element(s), shared at ties",)
    reducer = staticmethod(np.min)
