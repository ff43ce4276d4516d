"""How much memory checking a graph takes, from shapes alone, so a spec too large is refused before it is spent.

Every op states the shape of its result (``result_shape``) and the size of its largest intermediate
where that is larger than the result and the arguments (``peak_elements``: attention's scores, conv2d's
windows), from its argument shapes and parameters.  :func:`node_shapes` runs those through the graph
without computing anything; :func:`refuse_over_budget` adds up what the check keeps and the most it
holds at once, and refuses the spec (a SpecError naming the node) when that exceeds the memory budget.

The model, per element, in float64 words of 8 bytes:
  kept for the whole check   the node's value in the float64 pass (and in a float32 pass), the gradient
                             each consumer passes back to it (the first one is its adjoint; where
                             several add up, their sum besides), the judge's array; an input also keeps
                             the spec's own array;
  held while one op runs     TRANSIENT_COPIES arrays of the op's largest size (result, argument or
                             intermediate): the result and the temporaries of its forward and vjp;
  held by the numeric pass   the perturbed copies of a node's downstream: up to STENCIL_COPIES copies
                             at once, or a batch of at most ``batch_floats(budget)`` (the evaluator
                             caps its batches at the smaller of that and its own bound).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SpecError, clip
from .graph import Graph, Node
from .ops import OpInfo
from .plaindata import FrozenPlainData
from .spec import MAX_TOTAL_ELEMENTS

WORD = 8                     # bytes of a float64
TRANSIENT_COPIES = 4         # arrays of an op's largest size alive while its forward or vjp runs
STENCIL_COPIES = 2           # perturbed copies of a downstream alive at once (a central difference's two sides)
MAX_BATCH_FLOATS = 4_000_000  # the largest batch of perturbed copies, whatever the budget (~32 MB)
BATCH_SHARE = 16             # a batch of perturbed copies takes at most this fraction of the budget

Shape = tuple[int, ...]


@dataclass(frozen=True, eq=False, repr=False)
class Footprint(FrozenPlainData):
    """What checking a graph takes: bytes kept throughout, and the most held at once on top of them."""

    kept: int
    peak: int
    largest_node: str         # the node whose own arrays are the largest part of it
    largest_bytes: int

    @property
    def total(self) -> int:
        return self.kept + self.peak


def batch_floats(budget: int | None) -> int:
    """How many floats one batch of perturbed copies may hold under this memory budget."""
    if not budget:
        return MAX_BATCH_FLOATS
    return max(1 << 12, min(MAX_BATCH_FLOATS, budget // (WORD * BATCH_SHARE)))


def node_shapes(graph: Graph) -> list[Shape | None]:
    """Every node's shape, from the inputs' shapes through each op's ``result_shape``; None where unknown
    (an op that does not say, shapes that do not fit: the forward pass then reports it) and downstream of it."""
    shapes: list[Shape | None] = []
    for node in graph.nodes:
        if node.kind != "op":
            assert node.value is not None, "inputs and constants hold their value"
            shapes.append(tuple(int(n) for n in node.value.shape))
            continue
        args = known_shapes(shapes, node)
        shapes.append(None if args is None else result_shape(node, args))
    return shapes


def known_shapes(shapes: list[Shape | None], node: Node) -> list[Shape] | None:
    """The shapes of node's arguments, or None where one of them is unknown."""
    args = [shapes[a] for a in node.args]
    return None if any(shape is None for shape in args) else [shape for shape in args if shape is not None]


def _op(node: Node) -> OpInfo:
    assert node.op is not None, "an op node has an op"
    return node.op


def result_shape(node: Node, arg_shapes: list[Shape]) -> Shape | None:
    try:
        shape = _op(node).result_shape(arg_shapes, node.params)
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return None if shape is None else tuple(int(n) for n in shape)


def peak_elements(node: Node, arg_shapes: list[Shape]) -> int:
    """The largest array ``node``'s op builds: its result, an argument, or its declared intermediate."""
    sizes = [math.prod(shape) for shape in arg_shapes]
    shape = result_shape(node, arg_shapes)
    if shape is not None:
        sizes.append(math.prod(shape))
    try:
        declared = _op(node).peak_elements(arg_shapes, node.params)
    except (ValueError, TypeError, IndexError, KeyError):
        declared = None
    if declared is not None:
        sizes.append(int(declared))
    return max(sizes, default=0)


def refuse_oversized(node: Node, shapes: list[Shape]) -> None:
    """Refuse, before computing it, an op result (a broadcast, a matmul) or intermediate (attention's scores) with
    more than MAX_TOTAL_ELEMENTS, from what the op's record declares (``result_shape``, ``peak_elements``)."""
    try:
        shape = _op(node).result_shape(shapes, node.params)
    except (ValueError, TypeError, IndexError):  # shapes that do not combine: the op itself says how
        return
    peak = peak_elements(node, shapes)
    if peak > MAX_TOTAL_ELEMENTS and (shape is None or peak > math.prod(shape)):
        raise SpecError(f"node '{node.name}' ({clip(node.text)}): {_op(node).name} on shapes "
                        f"{', '.join(_dims(s) for s in shapes)} would build an intermediate of {peak:,} elements "
                        f"(~{peak * 8 / 2**30:,.1f} GiB in float64); the limit is {MAX_TOTAL_ELEMENTS:,} elements",
                        node.location)
    if shape is None:
        return
    count = math.prod(shape)
    if count > MAX_TOTAL_ELEMENTS:
        raise SpecError(f"node '{node.name}' ({clip(node.text)}): the result of {_op(node).name} on shapes "
                        f"{', '.join(_dims(s) for s in shapes)} would have shape {_dims(shape)}, {count:,} elements "
                        f"(~{count * 8 / 2**30:,.1f} GiB in float64); the limit is {MAX_TOTAL_ELEMENTS:,} elements",
                        node.location)


def footprint(graph: Graph, shapes: list[Shape | None], dtype: str, budget: int | None) -> Footprint:
    """The memory the check of ``graph`` takes, from the nodes whose shapes are known."""
    sizes = [None if shape is None else math.prod(shape) for shape in shapes]
    pass_words = 1.5 if dtype == "float32" else 1.0   # the float64 reference, and the float32 analytic pass
    kept = 0.0
    peak = 0.0
    largest_node, largest = graph.nodes[0].name, 0.0
    downstream_words = 0.0
    for node in graph.nodes:
        size = sizes[node.index]
        if size is None:
            continue
        consumers = len(graph.consumers[node.index])
        gradients = max(1, consumers + (consumers > 1))  # each consumer's gradient, and their sum where several
        words = size * (pass_words + gradients + 1)      # values, gradients, the judge's array
        if node.kind == "input":
            words += size                                # the spec's own array, besides the pass's copy
        if node.kind == "op":
            arg_shapes = known_shapes(shapes, node)
            if arg_shapes is not None:
                peak = max(peak, TRANSIENT_COPIES * peak_elements(node, arg_shapes))
            downstream_words += size
        kept += words
        if words > largest:
            largest_node, largest = node.name, words
    numeric = max(STENCIL_COPIES * downstream_words, batch_floats(budget))
    peak = max(peak, numeric)
    return Footprint(int(kept * WORD), int(peak * WORD), largest_node, int(largest * WORD))


def refuse_over_budget(graph: Graph, shapes: list[Shape | None], dtype: str, budget: int | None) -> None:
    """SpecError when the check would take more than ``budget`` bytes, naming the node that tips it over."""
    for node in graph.nodes:  # the first node over the element limit, or alone over the budget, is named for it
        arg_shapes = known_shapes(shapes, node)
        if node.kind == "op" and arg_shapes is not None:
            refuse_oversized(node, arg_shapes)
            largest = peak_elements(node, arg_shapes)
            alone = TRANSIENT_COPIES * largest * WORD
            if budget and alone > budget:
                raise SpecError(f"node '{node.name}' ({_op(node).name}: {clip(node.text)}) on "
                                f"{', '.join(_shape(s) for s in arg_shapes)} builds arrays of {largest:,} elements "
                                f"(~{size_text(alone)} with its temporaries), more than the memory budget of "
                                f"{size_text(budget)} (--max-memory)", node.location)
    if not budget:
        return
    need = footprint(graph, shapes, dtype, budget)
    if need.total > budget:
        node = graph.nodes[graph.by_name[need.largest_node]]
        raise SpecError(f"checking this spec would take ~{size_text(need.total)}, more than the memory budget of "
                        f"{size_text(budget)} (--max-memory); the largest part is node '{node.name}' "
                        f"({_shape(shapes[node.index])}, ~{size_text(need.largest_bytes)} with its gradients)",
                        node.location)


def size_text(size: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{int(size)} bytes"


def _dims(shape) -> str:
    return str(tuple(int(n) for n in shape))


def _shape(shape) -> str:
    return "shape unknown" if shape is None else f"shape {tuple(shape)}"
