"""More reductions and scans: prod, var, std, cumsum and sort."""
from __future__ import annotations

import numpy as np

from .base import (
    OpArgumentError,
    Param,
    Primitive,
    expand_reduced,
    first_argument_shape,
    normalize_axes,
    normalize_axis,
    real_part,
)
from .batching import shift_axis_param
from .reductions import AXIS, KEEPDIMS, reduced_count, reduced_shape
from .registry import builtin


def products_of_the_others(x, axes):
    """For each element, the product of the other elements it is reduced with (no division, so zeros are fine):
    the exclusive cumulative product from the left times the one from the right."""
    x = np.asarray(x)
    axes = tuple(range(x.ndim)) if axes is None else axes
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    flat = moved.reshape(moved.shape[: len(kept)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(moved.shape)
    return np.transpose(others, np.argsort(kept + list(axes)))


@builtin
class Prod(Primitive):
    """Product over axis (all axes by default); the gradient is the product of the other elements (zeros allowed)."""
    name, args = "prod", ("x",)
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    vjp_formula = ("g · (the product of the other elements)",)
    params = {"axis": AXIS, "keepdims": KEEPDIMS}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    def forward(self, x, axis=None, keepdims=False):
        return np.prod(x, axis=normalize_axes(axis, np.ndim(x)), keepdims=keepdims)

    def vjp(self, g, out, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        return (expand_reduced(g, np.shape(x), axes, keepdims) * products_of_the_others(x, axes),)

    def jvp(self, tangents, out, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        return np.sum(tangents[0] * products_of_the_others(x, axes), axis=axes, keepdims=keepdims)

    @staticmethod
    def test_cases(rng):
        u = lambda shape: rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)  # noqa: E731
        with_zero = u((3, 4))
        with_zero[1, 2] = 0.0
        two_zeros = u((2, 3))
        two_zeros[0, :2] = 0.0
        return [((u(()),), {}), ((u((5,)),), {}), ((u((2, 3)),), {"axis": 1}), ((with_zero,), {"axis": 0}),
                ((with_zero,), {}), ((two_zeros,), {"axis": 1, "keepdims": True}), ((u((2, 3, 2)),), {"axis": (0, 2)})]


DDOF = Param("int", default=0, minimum=0, doc="delta degrees of freedom: divide by n - ddof")


def _spread(x, axis, ddof, op):
    axes = normalize_axes(axis, np.ndim(x))
    count = reduced_count(np.shape(x), axes) - ddof
    if count <= 0:
        raise OpArgumentError(f"{op}(): ddof={ddof} leaves no degrees of freedom for {count + ddof} element(s)")
    centred = x - np.mean(x, axis=axes, keepdims=True)
    return axes, count, centred


@builtin
class Var(Primitive):
    """Variance over axis (all by default): sum((x - mean)^2) / (n - ddof)."""
    name, args = "var", ("x",)
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    vjp_formula = ("g · 2(x - mean) / (n - ddof)",)
    params = {"axis": AXIS, "ddof": DDOF, "keepdims": KEEPDIMS}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    def forward(self, x, axis=None, ddof=0, keepdims=False):
        axes, count, centred = _spread(x, axis, ddof, self.name)
        return np.sum(centred * centred, axis=axes, keepdims=keepdims) / count

    def vjp(self, g, out, x, axis=None, ddof=0, keepdims=False):
        # d/dx_i sum_j (x_j - mean)^2 = 2 (x_i - mean): the mean's own derivative sums to zero against the centred terms
        axes, count, centred = _spread(x, axis, ddof, self.name)
        return (expand_reduced(g, np.shape(x), axes, keepdims) * 2 * centred / count,)

    def jvp(self, tangents, out, x, axis=None, ddof=0, keepdims=False):
        axes, count, centred = _spread(x, axis, ddof, self.name)
        return np.sum(tangents[0] * 2 * centred, axis=axes, keepdims=keepdims) / count

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((5,)),), {}), ((n((2, 3)),), {"axis": 1}), ((n((3, 4)),), {"axis": 0, "ddof": 1}),
                ((n((2, 3, 4)),), {"axis": (0, 2), "keepdims": True}), ((n((4, 2)),), {"ddof": 1})]


@builtin
class Std(Primitive):
    """Standard deviation over axis (all by default): sqrt(var) (not differentiable where every element is equal)."""
    name, args, has_kinks = "std", ("x",), True
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    vjp_formula = ("g · (x - mean) / ((n - ddof) · std)",)
    params = {"axis": AXIS, "ddof": DDOF, "keepdims": KEEPDIMS}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    def forward(self, x, axis=None, ddof=0, keepdims=False):
        axes, count, centred = _spread(x, axis, ddof, self.name)
        return np.sqrt(np.sum(centred * centred, axis=axes, keepdims=keepdims) / count)

    def vjp(self, g, out, x, axis=None, ddof=0, keepdims=False):
        axes, count, centred = _spread(x, axis, ddof, self.name)
        std = expand_reduced(out, np.shape(x), axes, keepdims)
        return (expand_reduced(g, np.shape(x), axes, keepdims) * centred / (count * std),)

    def jvp(self, tangents, out, x, axis=None, ddof=0, keepdims=False):
        axes, count, centred = _spread(x, axis, ddof, self.name)
        return np.sum(tangents[0] * centred, axis=axes, keepdims=keepdims) / (count * out)

    def branches(self, x, axis=None, ddof=0, keepdims=False):
        return np.asarray(self.forward(real_part(np.asarray(x)), axis, ddof, keepdims)) > 0  # 0 where all are equal

    test_cases = staticmethod(Var.test_cases)


def flattening_batched(apply):
    """forward_batched of an op whose axis=None means "flatten first": each copy is flattened on its own."""
    def forward_batched(args, batched, axis=None, **params):
        (x,) = args
        if axis is None:
            return apply(np.reshape(x, (x.shape[0], -1)), axis=1, **params)
        return apply(x, axis=normalize_axis(axis, x.ndim - 1) + 1, **params)
    return forward_batched


@builtin
class Cumsum(Primitive):
    """Cumulative sum along axis (None: over the flattened array, as numpy does)."""
    name, args = "cumsum", ("x",)
    linear_in = (0,)
    complex_safe = True
    vjp_formula = ("the reversed cumulative sum of g",)
    params = {"axis": Param("axis", default=None, doc="the axis to accumulate along; None flattens")}
    batching = "custom"
    forward_batched = staticmethod(flattening_batched(lambda x, axis: np.cumsum(x, axis=axis)))

    @staticmethod
    def result_shape(arg_shapes, params):
        shape = tuple(arg_shapes[0])
        return (int(np.prod(shape, dtype=np.int64)),) if params["axis"] is None else shape

    def forward(self, x, axis=None):
        if axis is None:
            return np.cumsum(np.ravel(x))
        return np.cumsum(x, axis=normalize_axis(axis, np.ndim(x)))

    def vjp(self, g, out, x, axis=None):
        # y_i = sum_{j<=i} x_j  =>  dx_j = sum_{i>=j} g_i, a cumulative sum from the end
        if axis is None:
            return (np.cumsum(np.asarray(g)[::-1])[::-1].reshape(np.shape(x)),)
        axis = normalize_axis(axis, np.ndim(x))
        return (np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),)

    def jvp(self, tangents, out, x, axis=None):
        return self.forward(tangents[0], axis)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((5,)),), {}), ((n((2, 3)),), {}), ((n((2, 3)),), {"axis": 1}), ((n((3, 2, 2)),), {"axis": -3})]


@builtin
class Sort(Primitive):
    """Sort along axis (default last), ascending or descending; kinks where two elements tie."""
    name, args, has_kinks = "sort", ("x",), True
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("g sent back to each element's place before sorting",)
    params = {"axis": Param("axis", default=-1, doc="the axis to sort along"),
              "descending": Param("bool", default=False, doc="largest first")}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    @staticmethod
    def order(x, axis, descending):
        values = real_part(np.asarray(x))
        order = np.argsort(-values if descending else values, axis=axis, kind="stable")
        return order

    def branches(self, x, axis=-1, descending=False):
        # the order, and which neighbours tie (a tie is a decision of its own: any step across it reorders)
        values = np.sort(real_part(np.asarray(x)), axis=axis)
        return self.order(x, axis, descending), np.diff(values, axis=axis) == 0

    def forward(self, x, axis=-1, descending=False):
        x = np.asarray(x)
        if x.ndim == 0:
            return x.copy()
        axis = normalize_axis(axis, x.ndim)
        return np.take_along_axis(x, self.order(x, axis, descending), axis=axis)

    def vjp(self, g, out, x, axis=-1, descending=False):
        if np.ndim(x) == 0:
            return (np.asarray(g).copy(),)
        axis = normalize_axis(axis, np.ndim(x))
        grad = np.zeros(np.shape(x), dtype=np.result_type(g, np.float32))
        np.put_along_axis(grad, self.order(x, axis, descending), g, axis=axis)
        return (grad,)

    def jvp(self, tangents, out, x, axis=-1, descending=False):
        if np.ndim(x) == 0:
            return np.asarray(tangents[0]).copy()
        axis = normalize_axis(axis, np.ndim(x))
        return np.take_along_axis(tangents[0], self.order(x, axis, descending), axis=axis)

    @staticmethod
    def test_cases(rng):
        def distinct(shape):
            count = int(np.prod(shape))
            return (rng.permutation(count).reshape(shape) - count / 2) * 0.3
        return [((distinct((6,)),), {}), ((distinct((3, 4)),), {}), ((distinct((3, 4)),), {"axis": 0}),
                ((distinct((2, 3, 4)),), {"axis": 1, "descending": True})]
