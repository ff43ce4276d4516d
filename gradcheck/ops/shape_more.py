"""More array rearrangements: flip, roll, squeeze, expand_dims, swapaxes, repeat, tile, pad, split,
diag, triu, tril and trace.

Every one of them is linear and only copies, moves or zeroes elements, so each jvp is the op applied
to the tangent.  The ops that copy an element to several places (repeat, tile, pad) have their vjp
from an index map: the same rearrangement applied to the numbers 1..n says where each output element
came from (0: from no input element, a padding constant), and the gradient is added back there with
np.add.at, which accumulates over the copies.
"""
from __future__ import annotations

import numpy as np

from .base import OpArgumentError, Param, Primitive, first_argument_shape, normalize_axes, normalize_axis, view_shape
from .batching import shift_axes, shift_axis_param
from .reductions_more import flattening_batched
from .registry import builtin


def gather_adjoint(g, shape, rearrange) -> np.ndarray:
    """The vjp of x -> rearrange(x) for a rearrangement that only copies or zeroes elements."""
    size = int(np.prod(shape, dtype=np.int64))
    sources = rearrange(np.arange(1, size + 1, dtype=np.int64).reshape(shape))
    grad = np.zeros(size + 1, dtype=np.result_type(g, np.float32))
    np.add.at(grad, np.ravel(sources), np.ravel(g))  # index 0 collects what came from no element
    return grad[1:].reshape(shape)


class Linear(Primitive):
    """A linear rearrangement: its jvp is the op applied to the tangent."""
    linear_in = (0,)
    complex_safe = True

    def jvp(self, tangents, out, x, **params):
        return self.forward(tangents[0], **params)


@builtin
class Flip(Linear):
    """Reverse the order of the elements along axis (all axes by default)."""
    name, args = "flip", ("x",)
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("g flipped back",)
    params = {"axis": Param("axes", default=None, doc="axis or tuple of axes; None flips every axis")}
    batching, batch_params = "axis", staticmethod(shift_axis_param)

    def forward(self, x, axis=None):
        return np.flip(x, normalize_axes(axis, np.ndim(x))).copy()

    def vjp(self, g, out, x, axis=None):
        return (np.flip(g, normalize_axes(axis, np.ndim(x))).copy(),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((5,)),), {}), ((n((2, 3)),), {"axis": 1}), ((n((2, 3, 2)),), {"axis": (0, 2)}), ((n((3, 2)),), {})]


@builtin
class Roll(Linear):
    """Shift elements along axis by shift places, wrapping around (None: over the flattened array)."""
    name, args = "roll", ("x",)
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("g rolled back by -shift",)
    params = {"shift": Param("ints", doc="places to shift (one per axis when axis is a tuple)"),
              "axis": Param("axes", default=None, doc="axis or tuple of axes; None rolls the flattened array")}
    batching = "custom"

    def _axes(self, x, shift, axis):
        axes = normalize_axes(axis, np.ndim(x))
        if axes is not None and isinstance(shift, tuple) and len(shift) != len(axes):
            raise OpArgumentError(f"roll(): {len(shift)} shifts for {len(axes)} axes")
        if axes is None and isinstance(shift, tuple):
            raise OpArgumentError("roll(): a tuple of shifts needs a tuple of axes")
        return axes

    def forward(self, x, shift, axis=None):
        return np.roll(x, shift, self._axes(x, shift, axis))

    def vjp(self, g, out, x, shift, axis=None):
        back = tuple(-s for s in shift) if isinstance(shift, tuple) else -shift
        return (np.roll(g, back, self._axes(x, shift, axis)),)

    def forward_batched(self, args, batched, shift, axis=None):
        (x,) = args
        if axis is None:
            return np.roll(x.reshape(x.shape[0], -1), shift, 1).reshape(x.shape)
        return np.roll(x, shift, shift_axes(axis, x.ndim - 1))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((5,)),), {"shift": 2}), ((n((2, 3)),), {"shift": -1}), ((n((2, 3)),), {"shift": 1, "axis": 1}),
                ((n((2, 3, 4)),), {"shift": (1, -2), "axis": (0, 2)})]


@builtin
class Squeeze(Linear):
    """Remove axes of length 1 (all of them by default)."""
    name, args = "squeeze", ("x",)
    vjp_formula = ("g reshaped to the input's shape",)
    params = {"axis": Param("axes", default=None, doc="axis or tuple of length-1 axes; None removes every one")}
    batching = "axis"

    @staticmethod
    def _axes(shape, axis):
        axes = normalize_axes(axis, len(shape))
        if axes is None:
            return tuple(i for i, n in enumerate(shape) if n == 1)
        for a in axes:
            if shape[a] != 1:
                raise OpArgumentError(f"squeeze(): axis {a} of an input of shape {tuple(shape)} has length {shape[a]}, not 1")
        return axes

    @staticmethod
    def batch_params(params, shape):
        return {"axis": tuple(a + 1 for a in Squeeze._axes(shape, params["axis"]))}

    @staticmethod
    def result_shape(arg_shapes, params):
        axes = Squeeze._axes(tuple(arg_shapes[0]), params["axis"])
        return tuple(n for i, n in enumerate(arg_shapes[0]) if i not in axes)

    def forward(self, x, axis=None):
        return np.squeeze(x, self._axes(np.shape(x), axis)).copy()

    def vjp(self, g, out, x, axis=None):
        return (np.reshape(g, np.shape(x)),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((1, 3, 1)),), {}), ((n((1, 3, 1)),), {"axis": 0}), ((n((2, 1, 1)),), {"axis": (1, 2)}), ((n((1,)),), {})]


@builtin
class ExpandDims(Linear):
    """Insert axes of length 1 at the given positions of the result."""
    name, args = "expand_dims", ("x",)
    vjp_formula = ("g reshaped to the input's shape",)
    params = {"axis": Param("axes", doc="position or tuple of positions of the new axes in the result")}
    batching = "axis"

    @staticmethod
    def _axes(ndim, axis):
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        return normalize_axes(axes, ndim + len(axes))

    @staticmethod
    def batch_params(params, shape):
        return {"axis": tuple(a + 1 for a in ExpandDims._axes(len(shape), params["axis"]))}

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: np.expand_dims(x, ExpandDims._axes(x.ndim, params["axis"])))

    def forward(self, x, axis):
        return np.expand_dims(x, self._axes(np.ndim(x), axis)).copy()

    def vjp(self, g, out, x, axis):
        return (np.reshape(g, np.shape(x)),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n(()),), {"axis": 0}), ((n((3,)),), {"axis": -1}), ((n((2, 3)),), {"axis": (0, 2)}),
                ((n((2, 3)),), {"axis": 1})]


@builtin
class Swapaxes(Linear):
    """Exchange two axes."""
    name, args = "swapaxes", ("x",)
    vjp_formula = ("g with the two axes swapped back",)
    params = {"axis1": Param("axis", doc="the first axis"), "axis2": Param("axis", doc="the second axis")}
    batching = "axis"

    @staticmethod
    def batch_params(params, shape):
        return {key: normalize_axis(params[key], len(shape)) + 1 for key in ("axis1", "axis2")}

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: np.swapaxes(x, params["axis1"], params["axis2"]))

    def _axes(self, x, axis1, axis2):
        return normalize_axis(axis1, np.ndim(x), "axis1"), normalize_axis(axis2, np.ndim(x), "axis2")

    def forward(self, x, axis1, axis2):
        return np.swapaxes(x, *self._axes(x, axis1, axis2)).copy()

    def vjp(self, g, out, x, axis1, axis2):
        return (np.swapaxes(g, *self._axes(x, axis1, axis2)).copy(),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((2, 3)),), {"axis1": 0, "axis2": 1}), ((n((2, 3, 4)),), {"axis1": 0, "axis2": -1}),
                ((n((3, 2)),), {"axis1": 1, "axis2": 1})]


@builtin
class Repeat(Linear):
    """Repeat each element repeats times along axis (None: of the flattened array), as numpy.repeat."""
    name, args = "repeat", ("x",)
    vjp_formula = ("g summed over the copies of each element",)
    params = {"repeats": Param("ints", minimum=0, doc="copies of each element: one count, or one per element along axis"),
              "axis": Param("axis", default=None, doc="the axis to repeat along; None flattens first")}
    batching = "custom"
    forward_batched = staticmethod(flattening_batched(lambda x, axis, repeats: np.repeat(x, repeats, axis)))

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: Repeat.apply(x, params["repeats"], params["axis"]))

    @staticmethod
    def apply(x, repeats, axis):
        try:
            return np.repeat(x, repeats, None if axis is None else normalize_axis(axis, np.ndim(x)))
        except ValueError as error:
            raise OpArgumentError(f"repeat(): repeats={repeats!r} does not fit an input of shape {np.shape(x)}: "
                                  f"{error}") from None

    def forward(self, x, repeats, axis=None):
        return self.apply(x, repeats, axis)

    def vjp(self, g, out, x, repeats, axis=None):
        return (gather_adjoint(g, np.shape(x), lambda ids: self.apply(ids, repeats, axis)),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)),), {"repeats": 2}), ((n((2, 3)),), {"repeats": 2, "axis": 1}),
                ((n((2, 3)),), {"repeats": (1, 0, 3), "axis": 1}), ((n((2, 2)),), {"repeats": 3})]


@builtin
class Tile(Linear):
    """Repeat the whole array reps times along each axis, as numpy.tile."""
    name, args = "tile", ("x",)
    vjp_formula = ("g summed over the tiles",)
    params = {"reps": Param("ints", minimum=0, doc="repetitions per axis (the last axes when shorter than x's)")}
    batching = "custom"

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: np.tile(x, params["reps"]))

    def forward(self, x, reps):
        return np.tile(x, reps)

    def vjp(self, g, out, x, reps):
        return (gather_adjoint(g, np.shape(x), lambda ids: np.tile(ids, reps)),)

    def forward_batched(self, args, batched, reps):
        (x,) = args
        reps = (reps,) if isinstance(reps, int) else tuple(reps)
        ndim = max(x.ndim - 1, len(reps))
        x = x.reshape(x.shape[:1] + (1,) * (ndim - (x.ndim - 1)) + x.shape[1:])  # numpy.tile's promotion of x
        return np.tile(x, (1,) + (1,) * (ndim - len(reps)) + reps)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)),), {"reps": 2}), ((n((2, 3)),), {"reps": (2, 1)}), ((n((3,)),), {"reps": (2, 2)}),
                ((n((2, 1, 2)),), {"reps": (2,)})]


def pad_pairs(pad_width, ndim: int) -> tuple[tuple[int, int], ...]:
    """numpy's pad_width forms (n; (before, after); one pair per axis) as one (before, after) pair per axis."""
    def whole(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
            raise OpArgumentError(f"pad(): pad widths must be non-negative integers, got {pad_width!r}")
        return int(value)
    if isinstance(pad_width, (int, float)):
        return ((whole(pad_width),) * 2,) * ndim
    items = list(pad_width)
    if all(isinstance(item, (list, tuple)) for item in items):
        if len(items) != ndim or any(len(item) != 2 for item in items):
            raise OpArgumentError(f"pad(): pad_width needs one (before, after) pair for each of the {ndim} axes, "
                                  f"got {pad_width!r}")
        return tuple((whole(a), whole(b)) for a, b in items)
    if len(items) == 2:
        return ((whole(items[0]), whole(items[1])),) * ndim
    if len(items) == 2 * ndim:  # flattened pairs, axis by axis: (before0, after0, before1, after1, ...)
        return tuple((whole(items[2 * i]), whole(items[2 * i + 1])) for i in range(ndim))
    raise OpArgumentError(f"pad(): pad_width must be an integer, a (before, after) pair or one pair per axis, got {pad_width!r}")


@builtin
class Pad(Linear):
    """Pad with a constant (default 0) or by reflecting, mirroring, repeating the edge or wrapping around."""
    name, args = "pad", ("x",)
    vjp_formula = ("g cropped to the input, plus what the reflected, edge or wrapped copies received",)
    params = {"pad_width": Param("any", doc="n, (before, after), one (before, after) pair per axis, or those pairs "
                                            "flattened: (before0, after0, before1, after1, ...)"),
              "mode": Param("str", default="constant", choices=("constant", "reflect", "symmetric", "edge", "wrap"),
                            doc="what fills the border (numpy.pad's modes)"),
              "value": Param("float", default=0.0, doc="the fill of mode='constant'")}
    batching = "axis"

    @staticmethod
    def batch_params(params, shape):
        return {**params, "pad_width": ((0, 0),) + pad_pairs(params["pad_width"], len(shape))}

    @staticmethod
    def result_shape(arg_shapes, params):
        pairs = pad_pairs(params["pad_width"], len(arg_shapes[0]))
        return tuple(n + a + b for n, (a, b) in zip(arg_shapes[0], pairs, strict=True))

    @staticmethod
    def apply(x, pad_width, mode, value):
        pairs = pad_pairs(pad_width, np.ndim(x))
        if mode in ("reflect", "symmetric", "wrap"):
            for n, (before, after) in zip(np.shape(x), pairs, strict=True):
                if (before or after) and n == 0:
                    raise OpArgumentError(f"pad(): mode='{mode}' cannot pad an empty axis")
        if mode == "constant":
            return np.pad(x, pairs, mode="constant", constant_values=value)
        return np.pad(x, pairs, mode=mode)

    def forward(self, x, pad_width, mode="constant", value=0.0):
        return self.apply(x, pad_width, mode, value)

    def vjp(self, g, out, x, pad_width, mode="constant", value=0.0):
        return (gather_adjoint(g, np.shape(x), lambda ids: self.apply(ids, pad_width, mode, 0)),)

    def jvp(self, tangents, out, x, **params):
        # the constant fill does not move with x
        return self.apply(tangents[0], params["pad_width"], params.get("mode", "constant"), 0.0)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)),), {"pad_width": 2}), ((n((2, 3)),), {"pad_width": (1, 2), "value": 1.5}),
                ((n((2, 3)),), {"pad_width": ((0, 1), (2, 0))}), ((n((4,)),), {"pad_width": 2, "mode": "reflect"}),
                ((n((3, 3)),), {"pad_width": (1, 4), "mode": "symmetric"}), ((n((2, 3)),), {"pad_width": 2, "mode": "edge"}),
                ((n((2, 3)),), {"pad_width": (1, 0, 2, 3), "mode": "wrap"})]


@builtin
class Split(Linear):
    """numpy.split: with part=k the k-th piece; without, the equal pieces stacked on a new first axis (split(x, 3)[k])."""
    name, args = "split", ("x",)
    vjp_formula = ("g placed at the piece's elements, 0 elsewhere",)
    params = {"sections": Param("ints", doc="a number of equal pieces, or the indices to cut at"),
              "axis": Param("axis", default=0, doc="the axis to cut along"),
              "part": Param("int", default=None, doc="which piece (None: all of them, stacked; they must be equal)")}
    batching = "custom"

    @staticmethod
    def pieces(x, sections, axis, part):
        axis = normalize_axis(axis, np.ndim(x))
        if isinstance(sections, int) and (sections < 1 or np.shape(x)[axis] % sections):
            raise OpArgumentError(f"split(): axis {axis} of length {np.shape(x)[axis]} does not split into "
                                  f"{sections} equal pieces")
        pieces = np.split(x, list(sections) if isinstance(sections, tuple) else sections, axis=axis)
        if part is None:
            if len({np.shape(p) for p in pieces}) > 1:
                shapes = ", ".join(str(np.shape(p)) for p in pieces)
                raise OpArgumentError(f"split(): the pieces have different shapes ({shapes}); pick one with part=k")
            return np.stack(pieces)
        if not -len(pieces) <= part < len(pieces):
            raise OpArgumentError(f"split(): part={part} is out of range for {len(pieces)} pieces")
        return pieces[part].copy()

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: Split.pieces(x, params["sections"], params["axis"], params["part"]))

    def forward(self, x, sections, axis=0, part=None):
        return self.pieces(x, sections, axis, part)

    def vjp(self, g, out, x, sections, axis=0, part=None):
        return (gather_adjoint(g, np.shape(x), lambda ids: self.pieces(ids, sections, axis, part)),)

    def forward_batched(self, args, batched, sections, axis=0, part=None):
        (x,) = args
        result = self.pieces(x, sections, normalize_axis(axis, x.ndim - 1) + 1, part)
        return result if part is not None else np.moveaxis(result, 0, 1)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((6,)),), {"sections": 3}), ((n((2, 4)),), {"sections": 2, "axis": 1}),
                ((n((5, 2)),), {"sections": (1, 3), "part": 1}), ((n((2, 6)),), {"sections": 3, "axis": -1, "part": -1})]


@builtin
class Diag(Linear):
    """numpy.diag: the k-th diagonal of a matrix, or a square matrix with a vector on its k-th diagonal."""
    name, args = "diag", ("x",)
    vjp_formula = ("the diagonal of g (for a vector), or g placed on the diagonal (for a matrix)",)
    params = {"k": Param("int", default=0, doc="the diagonal: 0 the main one, > 0 above, < 0 below")}

    @staticmethod
    def batching(shapes, batched):
        return "custom" if len(shapes[0]) == 2 else None

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: Diag.apply(x, params["k"]))

    @staticmethod
    def apply(x, k):
        if np.ndim(x) not in (1, 2):
            raise OpArgumentError(f"diag() takes a vector or a matrix, got shape {np.shape(x)}")
        return np.diag(x, k).copy()

    def forward(self, x, k=0):
        return self.apply(x, k)

    def vjp(self, g, out, x, k=0):
        return (gather_adjoint(g, np.shape(x), lambda ids: self.apply(ids, k)),)

    def forward_batched(self, args, batched, k=0):
        return np.diagonal(args[0], k, axis1=1, axis2=2).copy()

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)),), {}), ((n((3,)),), {"k": -1}), ((n((3, 3)),), {}), ((n((3, 4)),), {"k": 1}),
                ((n((4, 3)),), {"k": -2})]


class _Triangle(Linear):
    """Shared rule of triu and tril: keep one triangle of the last two axes, zero the other; the gradient likewise."""
    args = ("x",)
    result_shape = staticmethod(first_argument_shape)
    params = {"k": Param("int", default=0, doc="the diagonal bounding the triangle: 0 the main one, > 0 above")}
    batching = "broadcast"  # numpy's triu and tril act on the last two axes
    keep = staticmethod(np.triu)

    def forward(self, x, k=0):
        if np.ndim(x) < 2:
            raise OpArgumentError(f"{self.name}() needs a matrix (or a stack of them), got shape {np.shape(x)}")
        return self.keep(x, k)

    def vjp(self, g, out, x, k=0):
        return (self.keep(g, k),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3, 3)),), {}), ((n((3, 4)),), {"k": 1}), ((n((4, 3)),), {"k": -1}), ((n((2, 3, 3)),), {})]


@builtin
class Triu(_Triangle):
    """The upper triangle of the last two axes (on and above diagonal k), zeros below."""
    name = "triu"
    vjp_formula = ("triu(g, k)",)
    keep = staticmethod(np.triu)


@builtin
class Tril(_Triangle):
    """The lower triangle of the last two axes (on and below diagonal k), zeros above."""
    name = "tril"
    vjp_formula = ("tril(g, k)",)
    keep = staticmethod(np.tril)


@builtin
class Trace(Linear):
    """The sum of the k-th diagonal of the axes axis1, axis2 (default the first two), as numpy.trace."""
    name, args = "trace", ("x",)
    vjp_formula = ("g placed on the diagonal, 0 elsewhere",)
    params = {"offset": Param("int", default=0, doc="the diagonal: 0 the main one, > 0 above"),
              "axis1": Param("axis", default=0, doc="the first axis of the matrices"),
              "axis2": Param("axis", default=1, doc="the second axis of the matrices")}
    batching = "axis"

    @staticmethod
    def batch_params(params, shape):
        return {**params, **{key: normalize_axis(params[key], len(shape)) + 1 for key in ("axis1", "axis2")}}

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: Trace.diagonal(x, params["offset"], params["axis1"], params["axis2"]))[:-1]

    @staticmethod
    def diagonal(x, offset, axis1, axis2):
        if np.ndim(x) < 2:
            raise OpArgumentError(f"trace() needs at least two axes, got shape {np.shape(x)}")
        axis1, axis2 = normalize_axis(axis1, np.ndim(x), "axis1"), normalize_axis(axis2, np.ndim(x), "axis2")
        if axis1 == axis2:
            raise OpArgumentError(f"trace(): axis1 and axis2 are both {axis1}")
        return np.diagonal(x, offset, axis1, axis2)

    def forward(self, x, offset=0, axis1=0, axis2=1):
        return np.sum(self.diagonal(x, offset, axis1, axis2), axis=-1)

    def vjp(self, g, out, x, offset=0, axis1=0, axis2=1):
        # trace = sum of the diagonal: each diagonal element receives g, broadcast along the diagonal
        sources = self.diagonal(np.arange(1, np.size(x) + 1).reshape(np.shape(x)), offset, axis1, axis2)
        grad = np.zeros(np.size(x) + 1, dtype=np.result_type(g, np.float32))
        np.add.at(grad, sources.ravel(), np.broadcast_to(np.asarray(g)[..., None], sources.shape).ravel())
        return (grad[1:].reshape(np.shape(x)),)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3, 3)),), {}), ((n((3, 4)),), {"offset": 1}), ((n((2, 3, 3)),), {"axis1": 1, "axis2": 2}),
                ((n((3, 2, 3)),), {"offset": -1, "axis1": 0, "axis2": 2})]
