"""Linear algebra and shape ops: matmul, transpose, reshape, subscripting."""
from __future__ import annotations

import numpy as np

from .base import (
    OpArgumentError,
    Param,
    Primitive,
    first_argument_shape,
    normalize_axis,
    unbroadcast,
    unbroadcast_batched,
    view_shape,
)
from .changes import Change, matmul_change, transpose_change
from .registry import builtin


@builtin
class Matmul(Primitive):
    """a @ b with numpy's matmul rules (vectors, matrices, batched stacks)."""
    name, args = "matmul", ("a", "b")
    linear_in = (0, 1)
    complex_safe = True
    vjp_formula = ("g @ {b}ᵀ", "{a}ᵀ @ g")

    @staticmethod
    def batching(shapes, batched):
        (a, b), (a_batched, b_batched) = shapes, batched
        if len(a) >= 2 and len(b) >= 2:
            return "broadcast"        # stacks of matrices: the batch axis lines up in front
        if b_batched and len(b) == 1:
            return None               # a batched vector b would be read as a matrix
        if a_batched and len(a) == 1 and (len(b) > 2 or b_batched):
            return None               # ... and a batched vector a as rows beside b's stack axes
        return "stack"

    @staticmethod
    def result_shape(arg_shapes, params):
        a, b = arg_shapes
        if not a or not b:
            return None  # forward refuses scalars
        batch = np.broadcast_shapes(a[:-2], b[:-2])
        return tuple(batch) + (a[-2:-1] if len(a) >= 2 else ()) + (b[-1:] if len(b) >= 2 else ())

    def forward(self, a, b):
        try:
            return np.matmul(a, b)
        except ValueError:  # scalars, inner sizes that differ, batch shapes that do not broadcast: worded below
            pass
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            raise OpArgumentError(f"matmul needs arrays with at least one dimension, got shapes {np.shape(a)} and {np.shape(b)}")
        inner_a = np.shape(a)[-1]
        inner_b = np.shape(b)[-2] if np.ndim(b) > 1 else np.shape(b)[0]
        if inner_a != inner_b:
            raise OpArgumentError(
                f"matmul: shapes {np.shape(a)} and {np.shape(b)} do not align ({inner_a} != {inner_b})")
        return np.matmul(a, b)

    propagate = staticmethod(matmul_change)

    def vjp(self, g, out, a, b):
        if np.ndim(a) == 2 and np.ndim(b) == 2:  # C = A B  =>  dA = G Bᵀ,  dB = Aᵀ G
            return np.matmul(g, b.T), np.matmul(a.T, g)
        grad_a, grad_b = self.broadcast_grads(g, a, b)
        return unbroadcast(grad_a, np.shape(a)), unbroadcast(grad_b, np.shape(b))

    def batched_vjp(self, gs, out, a, b):
        grad_a, grad_b = self.broadcast_grads(gs, a, b)
        return unbroadcast_batched(grad_a, np.shape(a)), unbroadcast_batched(grad_b, np.shape(b))

    @staticmethod
    def broadcast_grads(g, a, b):
        """G Bᵀ and Aᵀ G with vectors promoted to matrices as matmul does, before the broadcast batch axes (and
        any leading axes of g) are summed away."""
        a2 = a[None, :] if np.ndim(a) == 1 else a
        b2 = b[:, None] if np.ndim(b) == 1 else b
        g2 = np.asarray(g)
        if np.ndim(b) == 1:
            g2 = g2[..., None]
        if np.ndim(a) == 1:
            g2 = g2[..., None, :]
        # C = A B  =>  dA = G B^T,  dB = A^T G
        grad_a = np.matmul(g2, np.swapaxes(b2, -1, -2))
        grad_b = np.matmul(np.swapaxes(a2, -1, -2), g2)
        if np.ndim(a) == 1:
            grad_a = grad_a[..., 0, :]
        if np.ndim(b) == 1:
            grad_b = grad_b[..., :, 0]
        return grad_a, grad_b

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)), n((3,))), {}), ((n((2, 3)), n((3,))), {}), ((n((3,)), n((3, 4))), {}),
                ((n((2, 3)), n((3, 4))), {}), ((n((2, 2, 3)), n((3, 4))), {}), ((n((1, 2, 3)), n((4, 3, 2))), {})]


@builtin
class Transpose(Primitive):
    """Permute axes (reverse them by default)."""
    name, args, batching = "transpose", ("x",), "axis"
    linear_in = (0,)
    complex_safe = True
    vjp_formula = ("g with the axes permuted back",)
    params = {"axes": Param("ints", default=None, doc="a permutation of the axes")}

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: np.transpose(x, params["axes"]))

    @staticmethod
    def batch_params(params, shape):
        ndim, axes = len(shape), params["axes"]
        axes = tuple(reversed(range(ndim))) if axes is None else ((axes,) if isinstance(axes, int) else tuple(axes))
        return {"axes": (0,) + tuple(a % ndim + 1 for a in axes)}

    def _axes(self, x, axes):
        if axes is None:
            return None
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        normalized = tuple(normalize_axis(a, np.ndim(x), "axes") for a in axes)
        if sorted(normalized) != list(range(np.ndim(x))):
            raise OpArgumentError(f"axes={axes} is not a permutation of the {np.ndim(x)} axes of an input of shape {np.shape(x)}")
        return normalized

    def forward(self, x, axes=None):
        return np.transpose(x, self._axes(x, axes))

    def propagate(self, changes, out, x, axes=None):
        return transpose_change(changes[0], self._axes(x, axes))

    def vjp(self, g, out, x, axes=None):
        axes = self._axes(x, axes)
        return (np.transpose(g, None if axes is None else np.argsort(axes)),)


def reshaped_change(change: Change, shape: tuple[int, ...]) -> Change:
    """A change of an array reshaped to ``shape`` (row-major, as np.reshape), kept as small as it was where the
    reshape allows: one element per copy stays one element (at its flat position read in the new shape); a box
    pinned only on leading axes the reshape leaves as they are keeps those pins (the rest of its box is whole
    rows of both shapes); any other box is written out whole."""
    shape, old, count = tuple(shape), change.shape, change.count
    if change.delta.size == count:  # every axis pinned or of length 1
        at = tuple(change.pins.get(a, np.zeros(count, dtype=np.intp)) for a in range(len(old)))
        flat = np.ravel_multi_index(at, old) if old else np.zeros(count, dtype=np.intp)
        positions = np.unravel_index(flat, shape) if shape else ()
        return Change.make(shape, dict(enumerate(positions)), change.delta.reshape((count,) + (1,) * len(shape)))
    kept = 0  # the leading axes both shapes share
    while kept < min(len(old), len(shape)) and old[kept] == shape[kept]:
        kept += 1
    if all(a < kept for a in change.pins):
        box = tuple(1 if a in change.pins else n for a, n in enumerate(shape[:kept])) + shape[kept:]
        return Change.make(shape, dict(change.pins), change.delta.reshape((count,) + box))
    return Change.dense(np.reshape(change.full(), (count,) + shape))


@builtin
class Reshape(Primitive):
    """Reshape to shape (one entry may be -1)."""
    name, args, batching = "reshape", ("x",), "axis"
    linear_in = (0,)
    complex_safe = True
    vjp_formula = ("g reshaped to the input's shape",)
    params = {"shape": Param("ints", doc="the new shape")}

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: np.reshape(x, params["shape"]))

    @staticmethod
    def batch_params(params, shape):
        new_shape = np.empty(shape, dtype=np.int8).reshape(params["shape"]).shape  # resolves a -1
        return {"shape": (-1,) + new_shape}

    def forward(self, x, shape):
        try:
            return np.reshape(x, shape)
        except ValueError:
            raise OpArgumentError(
                f"cannot reshape an array of shape {np.shape(x)} ({np.size(x)} elements) into shape {shape}") from None

    def vjp(self, g, out, x, shape):
        return (np.reshape(g, np.shape(x)),)

    def batched_vjp(self, gs, out, x, shape):
        return (np.reshape(gs, (len(gs),) + np.shape(x)),)

    def propagate(self, changes, out, x, shape):
        """Linear: the difference is reshaped (reshaped_change)."""
        (change,) = changes
        return reshaped_change(change, np.shape(out))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((2, 3)),), {"shape": (3, 2)}), ((n((6,)),), {"shape": (2, -1)}), ((n(()),), {"shape": (1, 1)})]


@builtin
class Getitem(Primitive):
    """x[index]: subscripting with integers and slices (written x[...] in expressions)."""
    name, args, batching = "getitem", ("x",), "axis"
    linear_in = (0,)
    complex_safe = True
    vjp_formula = ("g placed at the indexed elements, 0 elsewhere",)
    params = {"index": Param("any", doc="a tuple of integers, slices and None")}

    @staticmethod
    def result_shape(arg_shapes, params):
        return view_shape(arg_shapes[0], lambda x: x[params["index"]])

    @staticmethod
    def batch_params(params, shape):
        index = params["index"] if isinstance(params["index"], tuple) else (params["index"],)
        return {"index": (slice(None),) + index}

    def forward(self, x, index):
        try:
            return np.asarray(x)[index]
        except IndexError as error:
            raise OpArgumentError(f"index {format_index(index)} does not fit an array of shape {np.shape(x)}: {error}") from None

    def propagate(self, changes, out, x, index):
        """Linear: the difference is subscripted (whole, unless nothing is pinned)."""
        (change,) = changes
        delta = change.delta if not change.pins else change.full()
        return Change.dense(delta[(slice(None),) + (index if isinstance(index, tuple) else (index,))])

    def vjp(self, g, out, x, index):
        grad = np.zeros(np.shape(x), dtype=np.result_type(g, np.float32))
        np.add.at(grad, index, g)  # add.at accumulates where an index repeats
        return (grad,)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((4,)),), {"index": (1,)}), ((n((3, 4)),), {"index": (slice(None), 0)}),
                ((n((3, 4)),), {"index": (slice(1, None), slice(None, None, 2))}),
                ((n((2, 3, 4)),), {"index": (-1, Ellipsis)}), ((n((3,)),), {"index": (None, slice(None))})]


def format_index(index) -> str:
    def one(item):
        if isinstance(item, slice):
            parts = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if item.step is not None else "")
        if item is Ellipsis:
            return "..."
        return "None" if item is None else str(item)
    items = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(one(i) for i in items) + "]"


@builtin
class Identity(Primitive):
    """x unchanged (a node that names another value: `y: x`)."""
    name, args, batching = "identity", ("x",), "broadcast"
    linear_in = (0,)
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    local_derivative = ("1",)

    def forward(self, x):
        return np.array(x, copy=True)

    def propagate(self, changes, out, x):
        return changes[0]

    def vjp(self, g, out, x):
        return (g,)
