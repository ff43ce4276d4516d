"""Suspects: the ops whose backward rule is wrong.

First the local checks (judge.local): every op checked on its own with the graph's and random cotangents;
each edge that fails there is a suspect, named first.  Then, for a failing node no local check explains,
its consumers whose own gradient is right (or at a kink) are checked edge by edge at the node's worst
element; those whose edge is wrong there are named, or all of them when that cannot separate them.
"""
from __future__ import annotations

import numpy as np

from ..engine import BackwardPass
from ..graph import Graph, Node
from ..results import NodeResult, Status, Suspect
from .local import OpCheck

ELEMENTS_TO_TRY = 8   # failing elements of a node looked at edge by edge before every candidate is named


def find_suspects(graph: Graph, backward: BackwardPass, values, results: list[NodeResult], local: list[Suspect],
                  tolerance_of) -> list[Suspect]:
    by_name = {r.name: r for r in results}
    suspects = list(local)
    explained = {s.argument_node for s in local}
    poisoned = fault_reach(graph, backward)
    candidates: dict[int, list[tuple[Node, int]]] = {}
    for node in graph.nodes:
        if node.kind != "op" or by_name[node.name].status not in (Status.PASS, Status.KINK):
            continue
        for position, arg in enumerate(node.args):
            if arg in poisoned:  # its gradient is the NaN of a faulty rule, whose op is named already
                continue
            arg_result = by_name.get(graph.nodes[arg].name)
            if arg_result is not None and arg_result.status == Status.FAIL and arg_result.name not in explained:
                candidates.setdefault(arg, []).append((node, position))
    for arg, edges in candidates.items():
        confirmed = []
        checks = {(node.index, position): OpCheck(graph, node, backward, values, tolerance_of(node))
                  for node, position in edges}
        # the worst element first; where it sits at a kink of a consumer (no evidence there), the next failing ones
        for flat in failing_elements(by_name[graph.nodes[arg].name], np.shape(values[arg])):
            for node, position in edges:
                message = checks[(node.index, position)].check_element(position, flat)
                if message:
                    confirmed.append((node, position, message))
            if confirmed:
                break
        if not confirmed:  # the local checks could not separate them: name every candidate
            confirmed = [(node, position, "") for node, position in edges]
        for node, position, message in confirmed:
            suspects.append(Suspect(node=node.name, op=node.op_name, argument=position,
                                    argument_node=graph.nodes[arg].name, message=message))
    return suspects


def fault_reach(graph: Graph, backward: BackwardPass) -> set[int]:
    """The nodes whose adjoint holds the NaN a faulty rule (backward.faults) passed back: its arguments, theirs, ..."""
    reached: set[int] = set()
    for node in reversed(graph.nodes):
        if node.kind == "op" and (node.index in backward.faults or node.index in reached):
            reached.update(node.args)
    return reached


def failing_elements(result: NodeResult, shape: tuple, most: int = ELEMENTS_TO_TRY) -> list[int]:
    """Flat indices of a failing node's elements to look at edge by edge: its worst, then its other failing ones."""
    def flat(index) -> int:
        return int(np.ravel_multi_index(tuple(index), shape)) if shape and len(index) == len(shape) else 0

    found = [flat(result.worst_index)]
    for element in result.elements:
        if element.status == Status.FAIL and flat(element.index) not in found:
            found.append(flat(element.index))
    return found[:most]
