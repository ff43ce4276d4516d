"""Spec -> Graph: one node per input, constant, operator and call, in topological order.

Every operator and call inside an expression is a node of its own, named automatically
``<parent>/<op>#<k>`` and reported with its parent (the named node it sits in).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import Location, SpecError, clip, did_you_mean
from .expr import INDEX_ARRAY, INDEX_OP, Call, Constant, ExpressionParser, Name
from .ops import OpArgumentError, OpInfo
from .ops.registry import OpTable
from .plaindata import PlainData
from .spec import Spec, Tolerance

MAX_GRAPH_NODES = 10_000  # checking costs grow with the square of the node count


@dataclass(eq=False, repr=False)
class Node(PlainData):
    """One input, constant or op application of the graph, with where the spec wrote it."""

    index: int
    name: str
    kind: str                      # "input", "constant" or "op"
    op: OpInfo | None = None
    args: tuple[int, ...] = ()
    params: dict = field(default_factory=dict)
    parent: str | None = None      # the named node an automatic node sits in
    location: Location | None = None
    text: str = ""                 # the source text of the (sub)expression
    value: np.ndarray | None = None  # inputs and constants
    requires_grad: bool = True     # inputs: false for data; op nodes: computed from their ancestors
    check: bool = True
    tolerance: Tolerance | None = None  # per-node override
    # what a check found of a custom op's own batching and propagate declarations at this node: for each use
    # (hook, rule, pattern of changed arguments), how far their results lay beyond rounding (0: they hold);
    # gradcheck/batching.py declaration_holds
    declarations: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def op_name(self) -> str:
        return self.op.name if self.op is not None else self.kind

    @property
    def op_info(self) -> OpInfo:
        """The op of an op node (inputs and constants have none)."""
        if self.op is None:
            raise TypeError(f"node '{self.name}' is {'an' if self.kind == 'input' else 'a'} {self.kind}, not an op")
        return self.op

    @property
    def leaf_value(self) -> np.ndarray:
        """The value of an input or constant (op nodes get theirs from the forward pass)."""
        if self.value is None:
            raise TypeError(f"node '{self.name}' is an op; its value comes from the forward pass")
        return self.value

    @property
    def is_named(self) -> bool:
        return self.parent is None  # inputs, named nodes and named constants; automatic nodes have a parent


@dataclass(eq=False, repr=False)
class Graph(PlainData):
    """A spec's nodes in topological order, its ops and the output."""

    spec: Spec
    nodes: list[Node]
    output: int
    ops: OpTable
    sized: list | None = None  # the node shapes sizing.refuse_over_budget accepted the graph at (pipeline.run_loaded)

    @cached_property
    def by_name(self) -> dict[str, int]:
        return {node.name: node.index for node in self.nodes}

    @cached_property
    def consumers(self) -> list[list[tuple[int, int]]]:
        """For each node, the (consumer index, argument position) pairs that use it."""
        result: list[list[tuple[int, int]]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for position, arg in enumerate(node.args):
                result[arg].append((node.index, position))
        return result

    @cached_property
    def reaches_output(self) -> list[bool]:
        reaches = [False] * len(self.nodes)
        reaches[self.output] = True
        for node in reversed(self.nodes[: self.output + 1]):
            if reaches[node.index]:
                for arg in node.args:
                    reaches[arg] = True
        return reaches

    def downstream(self, index: int) -> list[int]:
        """The nodes whose value depends on node ``index`` and that lie on a path to the output, in order."""
        cache = self.__dict__.setdefault("_downstream", {})
        if index not in cache:
            affected = {index}
            ordered = []
            for node in self.nodes[index + 1: self.output + 1]:
                if self.reaches_output[node.index] and any(arg in affected for arg in node.args):
                    affected.add(node.index)
                    ordered.append(node.index)
            cache[index] = ordered
        return cache[index]


def build_graph(spec: Spec) -> Graph:
    if spec.ops:
        from .ops.custom import load_custom_op  # here: a spec of built-in ops never loads the custom-op loader
    ops = OpTable({op_name: load_custom_op(op_name, reference, spec.base_dir, location)
                   for op_name, (reference, location) in spec.ops.items()})
    builder = _Builder(spec, ops)
    for name, entry in spec.inputs.items():
        builder.add(Node(index=0, name=name, kind="input", location=entry.location, value=entry.value,
                         requires_grad=entry.requires_grad, text=name))
    for name, node_spec in spec.nodes.items():
        tree = _parsed(spec, name, ops)
        tolerance = None
        if node_spec.atol is not None or node_spec.rtol is not None:
            tolerance = Tolerance(node_spec.atol if node_spec.atol is not None else spec.tolerance.atol,
                                  node_spec.rtol if node_spec.rtol is not None else spec.tolerance.rtol)
        builder.add_named(name, tree, node_spec.location, tolerance, node_spec.check)
    graph = Graph(spec=spec, nodes=builder.nodes, output=builder.names[spec.output], ops=ops)
    _require_paths_to_output(graph)
    return graph


def _parsed(spec: Spec, name: str, ops: OpTable):
    """The expression tree of node ``name``, parsed once per loaded spec: it depends only on the spec's text and
    on which ops exist (the spec's own ``ops:`` and the built-ins), not on any value, and lowering never
    mutates it; a spec whose text is changed in place is parsed again."""
    node_spec = spec.nodes[name]
    key = (name, node_spec.expr, node_spec.expr_location, tuple(spec.ops))
    cache = spec.__dict__.setdefault("_parsed_expressions", {})
    if cache.get(name, (None,))[0] != key:
        cache[name] = (key, ExpressionParser(name, node_spec.expr, node_spec.expr_location, ops).parse())
    return cache[name][1]


def _wants_int(info: OpInfo, key: str) -> bool:
    param = info.params.get(key) if info.params else None
    return param is not None and param.kind in ("int", "axis", "axes", "ints")


def _require_paths_to_output(graph: Graph) -> None:
    reaches = graph.reaches_output
    for node in graph.nodes:
        if node.kind == "input" and node.requires_grad and not reaches[node.index]:
            raise SpecError(f"input '{node.name}' has no path to the output '{graph.spec.output}': "
                            "no gradient can flow to it (use it, or remove it)", node.location)


class _Builder:
    def __init__(self, spec: Spec, ops: OpTable):
        self.spec = spec
        self.ops = ops
        self.nodes: list[Node] = []
        self.names: dict[str, int] = {}
        self.auto_counts: dict[tuple[str, str], int] = {}

    def add(self, node: Node) -> int:
        if len(self.nodes) >= MAX_GRAPH_NODES:
            where = node.location or self.spec.nodes[node.parent or node.name].location
            raise SpecError(f"the graph has more than {MAX_GRAPH_NODES:,} nodes (every operator and call is a node); "
                            f"the limit is {MAX_GRAPH_NODES:,}", where)
        node.index = len(self.nodes)
        self.nodes.append(node)
        if node.parent is None:  # inputs and named nodes; automatic names (y/sin#1) cannot be written in an expression
            self.names[node.name] = node.index
        return node.index

    def add_named(self, name: str, tree, location: Location, tolerance, check: bool) -> None:
        if isinstance(tree, Name):
            # `y: x` names an existing value: an identity node keeps y a node of its own.
            tree = Call("identity", [tree], {}, tree.location, tree.text)
        if isinstance(tree, Constant):
            self.add(Node(0, name, "constant", location=location, value=np.asarray(tree.value), text=tree.text,
                          requires_grad=False, check=False))
            return
        self.lower(tree, name, location, tolerance, check, top=True)

    def lower(self, tree, parent: str, named_location: Location, tolerance, check: bool, top: bool = False) -> int:
        if isinstance(tree, Name):
            if tree.name not in self.names:
                raise SpecError(self._undefined(tree.name, parent), tree.location)
            return self.names[tree.name]
        if isinstance(tree, Constant):
            return self.add(Node(0, f"{parent}/const", "constant", value=np.asarray(tree.value), parent=parent,
                                 location=tree.location, text=tree.text, requires_grad=False, check=False))
        info = self.ops[tree.op]
        given = dict(tree.params)
        array_args = tree.args
        if not info.variadic and len(tree.args) > len(info.args):
            array_args = tree.args[: len(info.args)]
            # fewer extras than positional params is normal; more were refused by the parser's arity check
            for key, extra in zip(info.positional_params(), tree.args[len(info.args):], strict=False):
                if not isinstance(extra, Constant):
                    raise SpecError(f"node '{parent}': {info.name}() takes {len(info.args)} array argument(s); "
                                    f"'{extra.text}' would set its constant '{key}'", extra.location)
                if key in given:
                    raise SpecError(f"node '{parent}': {info.name}() got '{key}' both by position and by keyword",
                                    extra.location)
                given[key] = int(extra.value) if float(extra.value).is_integer() and _wants_int(info, key) else extra.value
        args = tuple(self.lower(arg, parent, named_location, tolerance, check) for arg in array_args)
        if tree.op == INDEX_OP:
            given["pattern"] = self._index_pattern(tree, args[1:], parent)
        try:
            params = info.check_params(given)
        except OpArgumentError as error:
            raise SpecError(f"node '{parent}': {error}", tree.location) from None
        if info.draws_random and params.get("seed") is None:
            params["seed"] = zlib.crc32(f"{self.spec.seed}:{parent}:{len(self.nodes)}".encode())
        if top:
            name, owner = parent, None
        else:
            count_key = (parent, tree.op)
            self.auto_counts[count_key] = self.auto_counts.get(count_key, 0) + 1
            name, owner = f"{parent}/{tree.op}#{self.auto_counts[count_key]}", parent
        requires_grad = any(self.nodes[a].requires_grad for a in args)
        return self.add(Node(0, name, "op", op=info, args=args, params=params, parent=owner,
                             location=named_location if top else tree.location, text=tree.text,
                             requires_grad=requires_grad, check=check, tolerance=tolerance))

    def _index_pattern(self, tree: Call, index_args: tuple[int, ...], parent: str) -> tuple:
        """x[...]'s pattern with each index array marked a boolean mask or integer positions, by its data."""
        kinds = []
        for arg, source in zip(index_args, tree.args[1:], strict=True):
            value = self.nodes[arg].value
            if value is not None and value.dtype == bool:
                kinds.append("mask")
            elif value is not None and value.dtype.kind == "f":
                raise SpecError(f"node '{parent}': the index array '{clip(source.text)}' holds floats; an index array is "
                                "an int64 input (dtype: int64), a boolean mask (dtype: bool) or a list of integers",
                                source.location)
            else:
                kinds.append("indices")
        marks = iter(kinds)
        return tuple(next(marks) if item == INDEX_ARRAY else item for item in tree.params["pattern"])

    def _undefined(self, name: str, parent: str) -> str:
        shown = clip(name)
        if name == parent:
            return f"node '{parent}' refers to itself"
        if name in self.spec.nodes:
            return f"node '{parent}' uses '{shown}', which is defined later (nodes are evaluated in the order written)"
        if name in self.ops:
            return f"node '{parent}': '{shown}' is an op; call it as {shown}(...)"
        known = list(self.names)
        return f"node '{parent}' uses '{shown}', which is neither an input nor an earlier node{did_you_mean(name, known)}"
