"""Suspects: ops whose own gradient is right while a gradient they pass to an argument is wrong."""
from __future__ import annotations

from ..engine import BackwardPass
from ..graph import Graph, Node
from ..results import NodeResult, Status, Suspect
from .local import local_fault


def find_suspects(graph: Graph, backward: BackwardPass, values, results: list[NodeResult], tolerance_of) -> list[Suspect]:
    """Each failing node's consumers that pass (or sit at a kink) are checked edge by edge in isolation;
    those whose edge is wrong are named, or all of them when the local checks cannot separate them."""
    by_name = {r.name: r for r in results}
    candidates: dict[int, list[tuple[Node, int]]] = {}
    for node in graph.nodes:
        if node.kind != "op" or by_name[node.name].status not in (Status.PASS, Status.KINK):
            continue
        for position, arg in enumerate(node.args):
            arg_result = by_name.get(graph.nodes[arg].name)
            if arg_result is not None and arg_result.status == Status.FAIL:
                candidates.setdefault(arg, []).append((node, position))
    suspects = []
    for arg, edges in candidates.items():
        confirmed = [(node, position, message) for node, position in edges
                     for message in [local_fault(graph, backward, values, node, position, tolerance_of(node))] if message]
        if not confirmed:  # the local checks could not separate them: name every candidate
            confirmed = [(node, position, "") for node, position in edges]
        for node, position, message in confirmed:
            suspects.append(Suspect(node=node.name, op=node.op_name, argument=position,
                                    argument_node=graph.nodes[arg].name, message=message))
    return suspects
