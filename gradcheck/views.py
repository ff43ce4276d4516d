"""View models: the graph of a checked spec as plain data, for ``gradcheck graph`` (drawn in report/graph_view.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .explain import Quantity, quantity

if TYPE_CHECKING:  # a view consumes a pipeline run; it never starts one
    from .pipeline import Checked


@dataclass
class ViewNode:
    id: str                          # n<index>: safe in dot and mermaid
    index: int
    name: str
    op: str                          # op name, "input" or "constant"
    kind: str                        # input | constant | op
    parent: str | None
    text: str
    value: Quantity
    grad: Quantity | None            # d output / d node (None: nothing flows here)
    status: str                      # pass | fail | kink | skip | constant
    args: list[int] = field(default_factory=list)
    is_output: bool = False
    message: str | None = None
    suspect: str | None = None       # "passes a wrong gradient to x": the op's backward rule is suspect


@dataclass
class ViewEdge:
    source: str                      # the argument's id (data flows source -> target)
    target: str                      # the consumer's id
    position: int                    # argument position at the consumer
    grad: Quantity | None            # the gradient the consumer passes back along this edge


@dataclass
class GraphView:
    name: str
    path: str
    status: str                      # the spec's status: pass | fail
    output: str
    nodes: list[ViewNode]
    edges: list[ViewEdge]

    @property
    def by_index(self) -> dict[int, ViewNode]:
        return {node.index: node for node in self.nodes}


def graph_view(checked: Checked) -> GraphView:
    """The graph with each node's forward value, gradient and status, from one judged pipeline run."""
    graph, result, bwd = checked.graph, checked.result, checked.backward
    assert result is not None, "the graph view shows verdicts: run the pipeline with judge=True"
    results = {node.name: node for node in result.nodes}
    suspects: dict[str, list[str]] = {}
    for suspect in result.suspects:
        suspects.setdefault(suspect.node, []).append(suspect.argument_node)
    nodes = []
    for node in graph.nodes:
        judged = results.get(node.name) if node.kind != "constant" else None
        value = judged.value if judged is not None and judged.value is not None else node.value
        grad = None
        if judged is not None and judged.analytic is not None and node.requires_grad:
            grad = quantity(judged.analytic)
        elif node.kind != "constant" and node.requires_grad and bwd.adjoints[node.index] is not None:
            grad = quantity(bwd.adjoints[node.index])
        nodes.append(ViewNode(id=f"n{node.index}", index=node.index, name=node.name, op=node.op_name, kind=node.kind,
                              parent=node.parent, text=node.text, value=quantity(value), grad=grad,
                              status=judged.status if judged is not None else "constant", args=list(node.args),
                              is_output=node.index == graph.output,
                              message=judged.message if judged is not None else None,
                              suspect=(f"suspect: passes a wrong gradient to {', '.join(suspects[node.name])}"
                                       if node.name in suspects else None)))
    edges = []
    for node in graph.nodes:
        for position, arg in enumerate(node.args):
            passed = bwd.edge_grads.get((node.index, position))
            if passed is not None and not graph.nodes[arg].requires_grad:
                passed = None
            edges.append(ViewEdge(f"n{arg}", f"n{node.index}", position, None if passed is None else quantity(passed)))
    return GraphView(name=result.name, path=result.path, status=result.status, output=graph.nodes[graph.output].name,
                     nodes=nodes, edges=edges)
