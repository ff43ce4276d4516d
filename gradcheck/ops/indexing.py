"""Indexing with index arrays, and comparisons (where's condition).

``x[ids]``, ``x[:, ids]``, ``x[mask]``, ``x[ids, 1:]`` ... lower to the ``index`` op: x, then the index
arrays, with a constant ``pattern`` saying where each array goes among the integers, slices, None and
``...``, and whether it holds integer positions ("indices") or a boolean mask ("mask").  The arrays are
data (int64 or boolean inputs, or constants) and get no gradient; x's gradient is g added back at the
indexed places with np.add.at, so a position picked twice receives both contributions.

``where(a > b, x, y)`` lowers its condition to the ``compare`` op, 1 where the relation holds; it is
piecewise constant and passes no gradient to a or b.
"""
from __future__ import annotations

import operator

import numpy as np

from .base import OpArgumentError, Param, Primitive, broadcast_result, real_part
from .nn import require_integer
from .registry import builtin
from .shape import format_index

MAX_INDEX_ARRAYS = 32
RELATIONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def build_index(x_shape, arrays, pattern) -> tuple:
    """The numpy index of x[pattern] with the arrays filled in (a mask becomes its nonzero positions)."""
    arrays = iter(arrays)
    index: list = []
    for item in pattern:
        if item == "mask":
            mask = np.asarray(real_part(next(arrays))) != 0
            index.extend(np.nonzero(mask))
        elif item == "indices":
            index.append(require_integer(next(arrays), "index", "index arrays"))
        else:
            index.append(item)
    return tuple(index)


def describe(pattern) -> str:
    """The subscript as written, an index array shown as <array>."""
    return format_index(tuple(ARRAY_MARK if item in ("mask", "indices") else item for item in pattern))


class _ArrayMark:
    def __str__(self):
        return "<array>"


ARRAY_MARK = _ArrayMark()


def _check_masks(x_shape, arrays, pattern) -> None:
    """A mask must have the shape of the axes it stands for (checked up to a '...', after which numpy checks)."""
    arrays = iter(arrays)
    axis = 0
    for item in pattern:
        if item is Ellipsis:
            return
        if item == "mask":
            mask_shape = np.shape(next(arrays))
            covered = tuple(x_shape[axis:axis + len(mask_shape)])
            if covered != mask_shape:
                raise OpArgumentError(f"index: a mask of shape {mask_shape} does not fit axes {axis}.."
                                      f"{axis + len(mask_shape) - 1} of an array of shape {tuple(x_shape)} "
                                      f"(they have shape {covered})")
            axis += len(mask_shape)
        elif item == "indices":
            next(arrays)
            axis += 1
        elif item is not None:
            axis += 1


def is_advanced(item) -> bool:
    """numpy treats an integer as an advanced index too once any index array is present."""
    return item in ("mask", "indices") if isinstance(item, str) else isinstance(item, int) and not isinstance(item, bool)


def advanced_rank(arrays, pattern) -> int:
    """The number of result axes the advanced indices make (their broadcast shape; a mask makes one)."""
    arrays = iter(arrays)
    shapes = []
    for item in pattern:
        if item == "mask":
            next(arrays)
            shapes.append((1,))
        elif item == "indices":
            shapes.append(np.shape(next(arrays)))
    return len(np.broadcast_shapes(*shapes)) if shapes else 0


def arrays_adjacent(pattern) -> bool:
    """numpy keeps the axes of adjacent advanced indices in place; separated ones move to the front."""
    positions = [i for i, item in enumerate(pattern) if is_advanced(item)]
    return not positions or positions[-1] - positions[0] == len(positions) - 1


def index_result_shape(arg_shapes, params):
    """The shape of x[pattern] from the shapes alone (None with a mask: its count of true values is data)."""
    pattern, x_shape, index_shapes = tuple(params["pattern"]), tuple(arg_shapes[0]), iter(arg_shapes[1:])
    if "mask" in pattern:
        return None
    consumed = sum(1 for item in pattern if item is not None and item is not Ellipsis)
    expanded = []
    for item in pattern:
        expanded.extend([slice(None)] * (len(x_shape) - consumed) if item is Ellipsis else [item])
    expanded += [slice(None)] * (len(x_shape) - sum(1 for item in expanded if item is not None))
    kept, advanced, first = [], [], None
    axis = 0
    for item in expanded:
        if item is None:
            kept.append(1)
            continue
        length = x_shape[axis]  # IndexError: more indices than axes
        axis += 1
        if isinstance(item, slice):
            kept.append(len(range(*item.indices(length))))
        else:
            advanced.append(() if isinstance(item, int) else tuple(next(index_shapes)))
            first = len(kept) if first is None else first
    broadcast = tuple(np.broadcast_shapes(*advanced))
    if arrays_adjacent(expanded):
        return tuple(kept[:first]) + broadcast + tuple(kept[first:])
    return broadcast + tuple(kept)


@builtin
class Index(Primitive):
    """x[index arrays]: integer-array and boolean-mask indexing, written x[ids], x[:, ids], x[mask] in expressions."""
    name, args = "index", ("x", "*indices")
    linear_in = (0,)
    integer_args = tuple(range(1, MAX_INDEX_ARRAYS + 1))  # the index arrays are data
    complex_safe = True
    vjp_formula = ("g added back at the indexed elements (repeated positions accumulate)", None)
    result_shape = staticmethod(index_result_shape)
    params = {"pattern": Param("any", doc="the subscript: integers, slices, None, ... and 'indices'/'mask' for each array")}
    batching = "custom"

    def _index(self, x, arrays, pattern):
        pattern = tuple(pattern)
        if sum(1 for item in pattern if item in ("mask", "indices")) != len(arrays):
            raise OpArgumentError(f"index: the pattern {pattern!r} does not match {len(arrays)} index array(s)")
        _check_masks(np.shape(x), arrays, pattern)
        return build_index(np.shape(x), arrays, pattern)

    def forward(self, x, *indices, pattern):
        index = self._index(x, indices, pattern)
        try:
            return np.asarray(x)[index]
        except IndexError as error:
            raise OpArgumentError(f"index {describe(pattern)} does not fit an array of shape {np.shape(x)}: {error}") from None

    def vjp(self, g, out, x, *indices, pattern):
        grad = np.zeros(np.shape(x), dtype=np.result_type(g, np.float32))
        np.add.at(grad, self._index(x, indices, pattern), g)  # add.at accumulates where a position repeats
        return (grad,) + (None,) * len(indices)

    def jvp(self, tangents, out, x, *indices, pattern):
        return np.asarray(tangents[0])[self._index(x, indices, pattern)]

    def forward_batched(self, args, batched, pattern):
        if any(batched[1:]):
            raise ValueError("index arrays vary between the copies")
        x, *indices = args
        index = self._index(x[0], indices, pattern)
        result = x[(slice(None),) + index]
        if not arrays_adjacent(pattern):  # the index arrays' axes went to the front, before the batch axis
            result = np.moveaxis(result, advanced_rank(indices, pattern), 0)
        return result

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        ids = np.array([2, 0, 2, 1])
        return [((n((4,)), ids), {"pattern": ("indices",)}),
                ((n((3, 2)), np.array([[0, 2], [2, 2]])), {"pattern": ("indices",)}),
                ((n((2, 4)), np.array([3, 3, 0])), {"pattern": (slice(None), "indices")}),
                ((n((3, 4)), np.array([0, 2]), np.array([1, 1])), {"pattern": ("indices", "indices")}),
                ((n((3, 4)), rng.random((3, 4)) < 0.5), {"pattern": ("mask",)}),
                ((n((3, 4)), np.array([True, False, True])), {"pattern": ("mask", slice(1, None))}),
                ((n((2, 3, 4)), np.array([1, 0, 1])), {"pattern": (Ellipsis, "indices")}),
                ((n((3, 4, 2)), np.array([0, 2]), np.array([1, 0])), {"pattern": ("indices", slice(None), "indices")}),
                ((n((3, 4, 2)), np.array([[0, 2, 2]])), {"pattern": ("indices", slice(None), 1)}),
                ((n((3, 4, 2)), np.array([3, 0])), {"pattern": (1, "indices", None, slice(0, 1))}),
                ((n((2, 3, 4)), np.array([2, 2])), {"pattern": (Ellipsis, "indices", None)})]


@builtin
class Compare(Primitive):
    """1 where a < b (or <=, >, >=, ==, !=), else 0, broadcasting: where(a > b, ...)'s condition; no gradient."""
    name, args, has_kinks = "compare", ("a", "b"), True
    integer_args = (0, 1)  # piecewise constant: nothing flows back through a comparison
    complex_safe = True
    result_shape = staticmethod(broadcast_result)
    local_derivative = (None, None)
    params = {"relation": Param("str", choices=tuple(RELATIONS), doc="the comparison")}
    batching = "broadcast"

    def forward(self, a, b, relation):
        holds = RELATIONS[relation](real_part(np.asarray(a)), real_part(np.asarray(b)))
        return holds.astype(np.float32)  # 0 and 1 are exact in every float type; the engine casts to the pass's

    def vjp(self, g, out, a, b, relation):
        return None, None

    def branches(self, a, b, relation):
        return np.sign(real_part(np.asarray(a)) - real_part(np.asarray(b)))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((4,)), n((4,))), {"relation": "<"}), ((n((2, 3)), n((3,))), {"relation": ">="}),
                ((np.array([1.0, 2.0, 3.0]), np.array(2.0)), {"relation": "=="})]
