"""Neural-network ops, part 1: the softmax family, activations, dropout and array plumbing.

The softmax family subtracts the maximum before exponentiating
(log sum_j exp(x_j) = m + log sum_j exp(x_j - m), m = max_j x_j), so logits of +-1000 neither
overflow nor turn into NaN.  The maximum is read from the real part: under the complex-step
method it is a constant shift, so the forwards stay analytic.

The helpers here (``stable_softmax``, ``softmax_vjp``, ``log_softmax``, ``check_indices``,
``float_dtype``) are shared with the loss and layer modules.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import first_position  # nn_layers and nn_losses import it from here
from . import complexmath
from .base import (
    OpArgumentError,
    Param,
    Primitive,
    broadcast_result,
    expand_reduced,
    first_argument_shape,
    normalize_axes,
    normalize_axis,
    real_part,
    unbroadcast,
)
from .batching import shift_axis_param
from .changes import concat_change, slices_change
from .elementwise import Elementwise
from .reductions import AXIS, KEEPDIMS, reduced_shape
from .registry import builtin

LAST_AXIS = Param("axis", default=-1, doc="the axis to normalise over")


# ---------------------------------------------------------------- shared helpers

def float_dtype(*arrays) -> np.dtype:
    """The floating dtype of a pass over these (float) arrays: float32 stays float32, ints become float64."""
    return np.result_type(*arrays, np.float32)


def class_axis(x, axis: int, op: str) -> int:
    if np.ndim(x) == 0:
        raise OpArgumentError(f"{op}() needs an array with at least one dimension, got a scalar")
    return normalize_axis(axis, np.ndim(x))


def logsumexp_keepdims(x, axes):
    """log(sum(exp(x))) over axes (None: all), the reduced axes kept with length 1."""
    shift = np.max(real_part(x), axis=axes, keepdims=True)
    return shift + np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True))


def log_softmax(x, axis: int):
    return x - logsumexp_keepdims(x, axis)


def stable_softmax(x, axis: int, keep=None):
    """exp(x - m) / sum(exp(x - m)) along axis; where the boolean ``keep`` is False the probability is 0.

    Every slice along axis must keep at least one entry.
    """
    if keep is None:
        weights = np.exp(x - np.max(real_part(x), axis=axis, keepdims=True))
    else:
        shift = np.max(np.where(keep, real_part(x), -np.inf), axis=axis, keepdims=True)
        # exponentiate 0 where masked (not the masked score) so masked entries can never overflow
        weights = np.exp(np.where(keep, x - shift, 0)) * keep
    return weights / np.sum(weights, axis=axis, keepdims=True)


def softmax_vjp(g, probs, axis: int):
    """Adjoint of p = softmax(s): ds = p * (g - sum(g * p)) along axis (the Jacobian is diag(p) - p p^T)."""
    return probs * (g - np.sum(g * probs, axis=axis, keepdims=True))


def check_indices(indices: np.ndarray, count: int, op: str, what: str, of: str) -> None:
    """Raise OpArgumentError naming the first index outside [0, count)."""
    bad = (indices < 0) | (indices >= count)
    if np.any(bad):
        position = first_position(bad)
        raise OpArgumentError(
            f"{op}(): {what} {int(indices[position])} at index {list(position)} is out of range for "
            f"{count} {of} (valid: 0..{count - 1})")


def require_integer(indices, op: str, what: str) -> np.ndarray:
    """Integer data as int64; float data is accepted when every value is a whole number."""
    indices = np.asarray(indices)
    if np.issubdtype(indices.dtype, np.integer):
        return indices
    values = real_part(indices)
    whole = np.isfinite(values) & (values == np.round(values)) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if values.dtype.kind != "f" or not np.all(whole) or (np.iscomplexobj(indices) and np.any(np.imag(indices))):
        bad = first_position(~whole) if values.dtype.kind == "f" and not np.all(whole) else None
        detail = f", e.g. {values[bad]} at index {list(bad)}" if bad is not None else ""
        raise OpArgumentError(f"{op}(): {what} must be whole numbers{detail} (declare the input with dtype: int64)")
    return values.astype(np.int64)


def broadcast_shapes(op: str, **shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of the named shapes, or an OpArgumentError naming every shape."""
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise OpArgumentError(f"{op}(): shapes do not broadcast together: {listed}") from None


# ---------------------------------------------------------------- softmax family

@builtin
class Softmax(Primitive):
    """Softmax along axis (default last): exp(x) / sum(exp(x)), max-shifted so it never overflows."""
    name, args = "softmax", ("x",)
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("p·(g - Σ g·p) along the axis, p = softmax({x})",)
    batching, batch_params = "axis", staticmethod(shift_axis_param)
    params = {"axis": LAST_AXIS}

    def forward(self, x, axis=-1):
        return stable_softmax(x, class_axis(x, axis, self.name))

    def propagate(self, changes, out, x, axis=-1):
        axis = class_axis(x, axis, self.name)
        return slices_change(self.forward, changes[0], x, out, (axis,), {"axis": axis + 1})

    def vjp(self, g, out, x, axis=-1):
        return (softmax_vjp(g, out, class_axis(x, axis, self.name)),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((4,)),), {}), ((n((2, 3)),), {}), ((n((2, 3)),), {"axis": 0}),
                ((n((2, 3, 4)),), {"axis": 1}), ((3 * n((3, 5)),), {})]


@builtin
class LogSoftmax(Primitive):
    """log(softmax(x)) along axis (default last), computed as x - logsumexp(x)."""
    name, args = "log_softmax", ("x",)
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("g - softmax({x})·Σ g along the axis",)
    batching, batch_params = "axis", staticmethod(shift_axis_param)
    params = {"axis": LAST_AXIS}

    def forward(self, x, axis=-1):
        return log_softmax(x, class_axis(x, axis, self.name))

    propagate = Softmax.propagate

    def vjp(self, g, out, x, axis=-1):
        # d(x_i - lse)/dx_j = delta_ij - softmax_j
        axis = class_axis(x, axis, self.name)
        return (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)

    test_cases = staticmethod(Softmax.test_cases)


@builtin
class LogSumExp(Primitive):
    """log(sum(exp(x))) over axis (all axes by default), max-shifted so it never overflows."""
    name, args = "logsumexp", ("x",)
    complex_safe = True
    result_shape = staticmethod(reduced_shape)
    vjp_formula = ("g · softmax({x}) over the reduced axes",)
    batching, batch_params = "axis", staticmethod(shift_axis_param)
    params = {"axis": AXIS, "keepdims": KEEPDIMS}

    def forward(self, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        result = logsumexp_keepdims(x, axes)
        return result if keepdims else np.squeeze(result, axis=axes)

    def propagate(self, changes, out, x, axis=None, keepdims=False):
        batched = shift_axis_param({"axis": axis, "keepdims": keepdims}, np.shape(x))
        return slices_change(self.forward, changes[0], x, out, normalize_axes(axis, np.ndim(x)), batched, keepdims)

    def vjp(self, g, out, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, np.ndim(x))
        shape = np.shape(x)
        # d lse / dx = exp(x - lse) = softmax(x)
        return (expand_reduced(g, shape, axes, keepdims) * np.exp(x - expand_reduced(out, shape, axes, keepdims)),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n(()),), {}), ((n((4,)),), {}), ((n((2, 3)),), {}), ((n((2, 3)),), {"axis": 1}),
                ((n((2, 3, 4)),), {"axis": (0, 2), "keepdims": True}), ((n((3, 4)),), {"axis": -1, "keepdims": True})]


# ---------------------------------------------------------------- activations

def _normal_cdf_float64(x) -> np.ndarray:
    """Phi(x) = erfc(-x / sqrt 2) / 2 with libm's erfc (correctly rounded to ~1 ulp; no cancellation for x << 0)."""
    values = np.asarray(x, dtype=np.float64)
    return np.asarray(_ERFC(-values * math.sqrt(0.5)), dtype=np.float64) * 0.5


_ERFC = np.frompyfunc(math.erfc, 1, 1)
_TANH_SCALE = math.sqrt(2 / math.pi)
_TANH_CUBIC = 0.044715


@builtin
class Gelu(Primitive):
    """GELU x * Phi(x) (erf form), or its tanh approximation with approximate='tanh'."""
    name, args = "gelu", ("x",)
    result_shape = staticmethod(first_argument_shape)
    local_derivative = ("Φ({x}) + {x}·φ({x}) (the erf form)",)
    batching = "broadcast"
    propagate = Elementwise.propagate
    params = {"approximate": Param("str", default="none", choices=("none", "tanh"),
                                   doc="'none': exact erf form; 'tanh': the tanh approximation")}

    @staticmethod
    def complex_safe(params: dict) -> bool:
        """The tanh form is analytic; the erf form evaluates math.erfc, which is real-only."""
        return params.get("approximate", "none") == "tanh"

    def forward(self, x, approximate="none"):
        x = np.asarray(x)
        if approximate == "tanh":
            return 0.5 * x * (1 + complexmath.tanh(_TANH_SCALE * (x + _TANH_CUBIC * (x * x * x))))  # x*x*x: pow() is ~15x slower
        return x * _normal_cdf_float64(x).astype(float_dtype(x))

    def vjp(self, g, out, x, approximate="none"):
        x = np.asarray(x)
        if approximate == "tanh":
            t = np.tanh(_TANH_SCALE * (x + _TANH_CUBIC * (x * x * x)))
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _TANH_SCALE * (1 + 3 * _TANH_CUBIC * x * x)
            return (g * slope,)
        # d/dx x Phi(x) = Phi(x) + x phi(x), phi the standard normal density
        cdf = _normal_cdf_float64(x).astype(float_dtype(x))
        density = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (g * (cdf + x * density),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        cases = []
        for approximate in ("none", "tanh"):
            cases += [((n(()),), {"approximate": approximate}), ((2 * n((5,)),), {"approximate": approximate}),
                      ((2 * n((2, 3)),), {"approximate": approximate})]
        return cases


@builtin
class Clip(Primitive):
    """Clip x to [lo, hi] (either bound may be left out; kinks at the bounds)."""
    name, args, has_kinks = "clip", ("x",), True
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    local_derivative = ("1 if lo ≤ {x} ≤ hi else 0",)
    batching = "broadcast"
    propagate = Elementwise.propagate
    params = {"lo": Param("float", default=None, doc="lower bound"),
              "hi": Param("float", default=None, doc="upper bound")}

    def _outside(self, x, lo, hi):
        if lo is None and hi is None:
            raise OpArgumentError("clip() needs lo, hi or both")
        if lo is not None and hi is not None and lo > hi:
            raise OpArgumentError(f"clip(): lo={lo} is greater than hi={hi}")
        values = real_part(np.asarray(x))
        below = values < lo if lo is not None else np.zeros(values.shape, dtype=bool)
        above = values > hi if hi is not None else np.zeros(values.shape, dtype=bool)
        return below, above

    def forward(self, x, lo=None, hi=None):
        below, above = self._outside(x, lo, hi)
        return np.where(below, lo if lo is not None else 0, np.where(above, hi if hi is not None else 0, x))

    def vjp(self, g, out, x, lo=None, hi=None):
        # the gradient passes where lo <= x <= hi (bounds included, as in PyTorch's clamp)
        below, above = self._outside(x, lo, hi)
        return (g * ~(below | above),)

    def branches(self, x, lo=None, hi=None):
        self._outside(x, lo, hi)
        values = real_part(np.asarray(x))
        return (np.sign(values - lo) if lo is not None else np.zeros(values.shape),
                np.sign(values - hi) if hi is not None else np.zeros(values.shape))

    @staticmethod
    def test_cases(rng):
        def away_from(bounds, shape):
            values = rng.uniform(-2, 2, size=shape)
            for bound in bounds:
                near = np.abs(values - bound) < 0.1
                values = np.where(near, bound + np.copysign(0.3, values - bound), values)
            return values
        return [((away_from([-0.5, 0.5], ()), ), {"lo": -0.5, "hi": 0.5}),
                ((away_from([-0.5, 0.5], (8,)),), {"lo": -0.5, "hi": 0.5}),
                ((away_from([0.0], (2, 3)),), {"lo": 0.0}),
                ((away_from([1.0], (2, 3)),), {"hi": 1.0}),
                ((away_from([-1.0, 1.0], (3, 4)),), {"lo": -1.0, "hi": 1.0})]


@builtin
class Dropout(Primitive):
    """Inverted dropout x * mask / (1 - p), mask ~ Bernoulli(1 - p) fixed by seed (shape of x)."""
    name, args = "dropout", ("x",)
    linear_in = (0,)
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    local_derivative = ("mask/(1 - p), the kept elements' scale",)
    params = {"p": Param("float", default=0.5, minimum=0.0, maximum=1.0, doc="drop probability, 0 <= p < 1"),
              "seed": Param("int", default=None, minimum=0,
                            doc="mask seed; derived from the spec's seed and the node when not given")}
    draws_random = True  # the graph fills a missing seed (see Graph.lower), so the mask is fixed per node

    def _scale(self, x, p, seed):
        if p >= 1:
            raise OpArgumentError(f"dropout(): p must be < 1 (p=1 drops everything), got p={p}")
        keep = np.random.default_rng(0 if seed is None else seed).binomial(1, 1.0 - p, size=np.shape(x))
        return keep.astype(float_dtype(x)) / (1.0 - p)

    batching = "custom"

    def forward_batched(self, args, batched, p=0.5, seed=None):
        (x,) = args  # every copy gets the same mask: draw it once for one copy's shape
        return x * self._scale(x[0], p, seed)

    def forward(self, x, p=0.5, seed=None):
        return x * self._scale(x, p, seed)

    def vjp(self, g, out, x, p=0.5, seed=None):
        return (g * self._scale(x, p, seed),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n(()),), {"p": 0.3, "seed": 1}), ((n((10,)),), {"p": 0.5, "seed": 2}),
                ((n((3, 4)),), {"p": 0.0}), ((n((3, 4)),), {"p": 0.25, "seed": 7})]


@builtin
class Log1p(Elementwise):
    """log(1 + x), accurate for small x (x > -1)."""
    name, args, domains = "log1p", ("x",), ("positive",)
    local_derivative = ("1/(1 + {x})",)

    def forward(self, x):
        return np.log1p(x)

    def vjp(self, g, out, x):
        return (g / (1 + x),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Expm1(Elementwise):
    """exp(x) - 1, accurate for small x."""
    name, args = "expm1", ("x",)
    local_derivative = ("exp({x})",)

    def forward(self, x):
        return np.expm1(x)

    def vjp(self, g, out, x):
        return (g * (out + 1),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


# ---------------------------------------------------------------- array plumbing

def _truth(cond):
    """Selection data as booleans: the engine hands boolean inputs to ops as 0.0 / 1.0."""
    return np.asarray(real_part(cond)) != 0


@builtin
class Where(Primitive):
    """cond ? a : b elementwise, broadcasting (cond is data: nonzero/true selects a; no gradient)."""
    name, args, domains, integer_args = "where", ("cond", "a", "b"), ("mask", "real", "real"), (0,)
    linear_in = (1, 2)
    complex_safe = True
    result_shape = staticmethod(broadcast_result)
    local_derivative = (None, "1 if {cond} else 0", "0 if {cond} else 1")
    batching = "broadcast"
    propagate = Elementwise.propagate

    def forward(self, cond, a, b):
        broadcast_shapes(self.name, cond=np.shape(cond), a=np.shape(a), b=np.shape(b))
        return np.where(_truth(cond), a, b)

    def vjp(self, g, out, cond, a, b):
        take_a = _truth(cond)
        return (None, unbroadcast(np.where(take_a, g, 0), np.shape(a)),
                unbroadcast(np.where(take_a, 0, g), np.shape(b)))

    def branches(self, cond, a, b):
        return _truth(cond)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal

        def mask(shape):
            return rng.random(shape) < 0.5
        return [((mask(()), n(()), n(())), {}), ((mask((5,)), n((5,)), n((5,))), {}),
                ((mask((2, 3)), n((2, 3)), n((3,))), {}), ((mask((2, 1)), n((1, 3)), n(())), {}),
                ((mask((3,)), n((2, 3)), n((2, 1))), {})]


def _check_same_rank(arrays, op: str) -> int:
    shapes = [np.shape(a) for a in arrays]
    for position, shape in enumerate(shapes[1:], start=1):
        if len(shape) != len(shapes[0]):
            raise OpArgumentError(f"{op}(): array {position} has shape {shape} but array 0 has shape {shapes[0]}: "
                                  f"all arrays need the same number of dimensions")
    return len(shapes[0])


@builtin
class Concat(Primitive):
    """Join arrays end to end along an existing axis (default 0)."""
    name, args = "concat", ("*arrays",)
    linear_in = True
    complex_safe = True
    vjp_formula = "g's slice along the axis where this array sits"
    batching, batch_params = "axis", staticmethod(shift_axis_param)
    params = {"axis": Param("axis", default=0, doc="the axis to join along")}

    def _axis(self, arrays, axis):
        ndim = _check_same_rank(arrays, self.name)
        if ndim == 0:
            raise OpArgumentError("concat() cannot join scalars; use stack()")
        axis = normalize_axis(axis, ndim)
        first = np.shape(arrays[0])
        for position, array in enumerate(arrays[1:], start=1):
            shape = np.shape(array)
            if shape[:axis] + shape[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise OpArgumentError(f"concat(axis={axis}): array {position} has shape {shape} but array 0 has shape "
                                      f"{first}; all dimensions except axis {axis} must match")
        return axis

    @staticmethod
    def result_shape(arg_shapes, params):
        first = tuple(arg_shapes[0])
        axis = normalize_axis(params["axis"], len(first))
        return first[:axis] + (sum(shape[axis] for shape in arg_shapes),) + first[axis + 1:]

    def forward(self, *arrays, axis=0):
        return np.concatenate(arrays, axis=self._axis(arrays, axis))

    def propagate(self, changes, out, *arrays, axis=0):
        return concat_change(changes, arrays, self._axis(arrays, axis))

    def vjp(self, g, out, *arrays, axis=0):
        axis = self._axis(arrays, axis)
        boundaries = np.cumsum([np.shape(a)[axis] for a in arrays])[:-1]
        return tuple(np.split(g, boundaries, axis=axis))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((2,)), n((3,))), {}), ((n((2, 3)), n((1, 3)), n((4, 3))), {}),
                ((n((2, 3)), n((2, 2))), {"axis": 1}), ((n((2, 3, 2)), n((2, 1, 2))), {"axis": -2}),
                ((n((3,)),), {})]


def shift_new_axis(params: dict, shape: tuple) -> dict:
    """stack's new axis may stand at any of ndim + 1 places; move it past the batch axis."""
    return {**params, "axis": params["axis"] % (len(shape) + 1) + 1}


@builtin
class Stack(Primitive):
    """Stack equally shaped arrays along a new axis (default 0)."""
    name, args = "stack", ("*arrays",)
    linear_in = True
    complex_safe = True
    vjp_formula = "g's slice at this array's position along the new axis"
    # the new axis may be ndim (after the last): positions run over ndim + 1 places
    batching, batch_params = "axis", staticmethod(shift_new_axis)
    params = {"axis": Param("axis", default=0, doc="the position of the new axis")}

    def _axis(self, arrays, axis):
        first = np.shape(arrays[0])
        for position, array in enumerate(arrays[1:], start=1):
            if np.shape(array) != first:
                raise OpArgumentError(f"stack(): array {position} has shape {np.shape(array)} but array 0 has shape "
                                      f"{first}; stacked arrays must have the same shape")
        return normalize_axis(axis, len(first) + 1)

    @staticmethod
    def result_shape(arg_shapes, params):
        first = tuple(arg_shapes[0])
        axis = normalize_axis(params["axis"], len(first) + 1)
        return first[:axis] + (len(arg_shapes),) + first[axis:]

    def forward(self, *arrays, axis=0):
        return np.stack(arrays, axis=self._axis(arrays, axis))

    def vjp(self, g, out, *arrays, axis=0):
        return tuple(np.moveaxis(g, self._axis(arrays, axis), 0))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n(()), n(()), n(())), {}), ((n((3,)), n((3,))), {"axis": 1}),
                ((n((2, 3)), n((2, 3))), {"axis": -1}), ((n((2, 3)), n((2, 3)), n((2, 3))), {"axis": 1})]
