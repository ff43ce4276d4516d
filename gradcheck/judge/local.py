"""Every op checked on its own, at each place it is used: the checks the verdict rests on.

For op node f and each argument x_i that needs a gradient, with cotangents g (the one the graph gives and
LOCAL_COTANGENTS random ones) and random directions d of x_i:

    <vjp_i(g), d>  must equal  d/dt <g, f(.., x_i + t d, ..)> at t = 0,

the right side estimated by finite differences of the op alone at its actual float64 inputs (an
error-balancing step sequence, see stencils.adaptive_derivative), compared at the scale of the op's own
output -- so a bug the graph's cotangent cannot see (a term with zero mean under it) or a large offset
downstream hides is still caught.  Where the op has a jvp, the two rules must be each other's transpose,
<g, J t> = <J^T g, t>.  A vjp that returns None for an argument that needs a gradient while the output
depends on it is a forgotten gradient.  Each failure is a Suspect naming the op, its node and the argument.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import BackwardPass, call_vjp, differentiable, evaluate_node, evaluation_failures, fault_rule, rule_failure
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, element_scale
from ..numeric.stencils import adaptive_derivative
from ..results import Suspect
from ..spec import Tolerance, stable_seed
from .kinks import decisions_of

LOCAL_COTANGENTS = 2      # random cotangents besides the graph's own
LOCAL_DIRECTIONS = 1      # random directions of the argument (a random g and a random d see any wrong rule)
FIRST_STEP = 1e-2         # the step sequence starts at 1e-2 of each element's scale


@dataclass
class LocalChecks:
    suspects: list[Suspect] = field(default_factory=list)
    forgotten: set[tuple[int, int]] = field(default_factory=set)   # (node, position): a gradient the vjp forgot
    # (node, position, message): jvp and vjp not each other's transpose -- which of the two is wrong, the jvp
    # check against finite differences and the vjp checks above tell
    transposes: list[tuple[str, int, str]] = field(default_factory=list)


def needs_gradient(graph: Graph, values) -> list[bool]:
    """Nodes whose value depends on an input that requires grad through differentiable arguments."""
    needs = [False] * len(graph.nodes)
    for node in graph.nodes:
        if not differentiable(values[node.index]):
            continue
        if node.kind == "input":
            needs[node.index] = node.requires_grad
        elif node.kind == "op":
            needs[node.index] = any(needs[a] for position, a in enumerate(node.args)
                                    if position not in node.op_info.integer_args)
    return needs


def check_ops_locally(graph: Graph, backward: BackwardPass, values, tolerance_of) -> LocalChecks:
    found = LocalChecks()
    needs = needs_gradient(graph, values)
    for node in graph.nodes:
        adjoint = backward.adjoints[node.index]
        if node.kind != "op" or not node.check or adjoint is None:
            continue
        if not graph.reaches_output[node.index]:
            continue
        positions = [p for p, a in enumerate(node.args) if needs[a] and p not in node.op_info.integer_args]
        if not positions:
            continue
        if node.index in backward.faults:
            fault = backward.faults[node.index]  # every argument it passes a gradient to gets NaN: each is named
            found.suspects.extend(suspect(graph, node, position, f"its {fault_rule(fault)} is faulty: {fault}")
                                  for position in positions)
            continue
        if not np.all(np.isfinite(adjoint)):
            continue  # a faulty vjp downstream poisoned this op's cotangent: that op is the suspect
        checker = OpCheck(graph, node, backward, values, tolerance_of(node))
        for position in positions:
            message, forgotten = checker.check(position)
            if forgotten:
                found.forgotten.add((node.index, position))
            if message:
                found.suspects.append(suspect(graph, node, position, message))
            elif checker.transposition:
                found.transposes.append((node.name, position, checker.transposition))
    return found


def suspect(graph: Graph, node: Node, position: int, message: str) -> Suspect:
    return Suspect(node=node.name, op=node.op_name, argument=position,
                   argument_node=graph.nodes[node.args[position]].name, message=message)


class OpCheck:
    """The local checks of one op node."""

    def __init__(self, graph: Graph, node: Node, backward: BackwardPass, values, tol: Tolerance):
        self.graph, self.node, self.tol = graph, node, tol
        self.args = [np.asarray(values[a], dtype=np.float64) if differentiable(values[a]) else values[a]
                     for a in node.args]
        self.out = np.asarray(values[node.index], dtype=np.float64)
        self.rng = np.random.default_rng(stable_seed(graph.spec.seed, "local", node.name))
        g = np.asarray(backward.adjoints[node.index], dtype=np.float64)
        g = np.broadcast_to(g, self.out.shape).copy() if g.shape != self.out.shape else g
        # the random cotangents are of unit scale, not the graph's: a loss scaled by 1e-9 (or a cotangent made tiny
        # downstream) must not shrink the op's error under atol
        self.cotangents = [g] + [self.rng.standard_normal(self.out.shape) for _ in range(LOCAL_COTANGENTS)]
        self._vjps: list | None = None
        self.fault = ""
        self.transposition = ""   # what the last check found wrong between the jvp and the vjp

    @property
    def vjps(self) -> list:
        """The op's vjp for every cotangent, in float64 (each call on copies: call_vjp)."""
        if self._vjps is None:
            self._vjps = []
            for g in self.cotangents:
                faults: dict[int, str] = {}
                declared: set = set()
                grads = call_vjp(self.node, g, self.out, list(self.args), faults, declared, recheck=False)
                if faults:
                    self.fault = faults[self.node.index]
                    break
                self._vjps.append((grads, declared))
        return self._vjps

    def output_at(self, position: int, x: np.ndarray) -> np.ndarray | None:
        args = list(self.args)
        args[position] = x
        try:
            with np.errstate(all="ignore"):
                value = np.asarray(evaluate_node(self.node, args, np.float64), dtype=np.float64)
        except evaluation_failures(self.node):
            return None
        return value if value.shape == self.out.shape else None

    def check(self, position: int) -> tuple[str, bool]:
        """(what is wrong with the vjp's gradient to this argument or '', whether it forgot the gradient)."""
        vjps = self.vjps
        if self.fault:
            return f"its vjp is faulty: {self.fault}", False
        x = self.args[position]
        self.transposition = ""
        declared = any((self.node.index, position) in d for _, d in vjps)
        for _ in range(LOCAL_DIRECTIONS):
            direction = self.rng.choice([-1.0, 1.0], size=x.shape) * element_scale(x)
            derivative = self.directional(position, x, direction)
            if derivative is None:
                continue  # not differentiable along this direction here (a kink, a domain edge): no evidence
            jd, error = derivative
            if declared:
                if float(np.max(np.abs(jd), initial=0.0)) > 10 * float(np.max(error, initial=0.0)) + 1e-12 * max(
                        1.0, float(np.max(np.abs(self.out), initial=0.0))):
                    return ("forgotten gradient: its vjp returns None for this argument, which requires grad, "
                            "while finite differences of the op alone show its output depends on it"), True
                return "", False
            for g, (grads, _) in zip(self.cotangents, vjps, strict=True):
                problem = self.compare(position, g, np.asarray(grads[position], dtype=np.float64), direction, jd, error)
                if problem:
                    return problem, False
            if not self.transposition:
                self.transposition = self.transpose(position, direction, vjps)
        return "", False

    def check_element(self, position: int, flat: int) -> str:
        """The gradient the vjp passes to one element of the argument, with the graph's own cotangent, against
        finite differences of the op alone (the edge-by-edge look at an element a global check found wrong)."""
        if self.fault or not self.vjps:
            return f"its vjp is faulty: {self.fault}" if self.fault else ""
        x = self.args[position]
        direction = np.zeros(x.shape)
        direction.reshape(-1)[flat] = float(element_scale(x).reshape(-1)[flat])
        derivative = self.directional(position, x, direction)
        if derivative is None:
            return ""
        grads, _ = self.vjps[0]
        if grads[position] is None:
            return ""
        return self.compare(position, self.cotangents[0], np.asarray(grads[position], dtype=np.float64), direction,
                            *derivative)

    def directional(self, position: int, x: np.ndarray, direction: np.ndarray):
        """J d for the op alone, element by element of its output, with an error bound per element; None where
        the op is not smooth along d at the step the estimate needs (a branch decision changes)."""
        reference = decisions_of(self.node, self.args) if self.node.op_info.branches is not None else ()
        cache: dict[float, np.ndarray | None] = {}

        def along(t: float):
            if t not in cache:
                cache[t] = self.output_at(position, x + t * direction)
            value = cache[t]
            return np.nan if value is None else value

        weights = self.rng.standard_normal(self.out.shape)
        magnitude = float(np.sum(np.abs(weights * self.out))) + 1e-300
        enough = 1e-3 * self.tol.rtol * magnitude

        def projected(t):
            return float(np.sum(weights * along(t)))
        # the usual step first; where its Richardson pair disagrees, a step chosen on a random projection of the
        # output by the error-balancing sequence; every element is then read at that step
        h = FIRST_STEP
        coarse = (projected(h) - projected(-h)) / (2 * h)
        fine = (projected(h / 4) - projected(-h / 4)) / (h / 2)
        if not (np.isfinite(coarse) and np.isfinite(fine) and abs(fine - coarse) / 15 <= enough):
            best = adaptive_derivative(projected, FIRST_STEP, magnitude, enough=enough)
            if not np.isfinite(best.value):
                return None
            h = best.step
        if reference:
            for t in (h, -h, h / 4, -h / 4):
                args = list(self.args)
                args[position] = x + t * direction
                try:
                    moved = decisions_of(self.node, args)
                except evaluation_failures(self.node):
                    return None
                if any(not np.array_equal(m, r) for m, r in zip(moved, reference, strict=True)):
                    return None
        coarse = (along(h) - along(-h)) / (2 * h)
        fine = (along(h / 4) - along(-h / 4)) / (h / 2)
        jd = (16 * fine - coarse) / 15
        roundoff = 4 * MACHINE_EPS * (np.abs(self.out) + np.abs(along(h))) / (h / 4)
        if self.node.op_info.branches is None and self.kinked(along, h, roundoff):
            return None
        error = np.abs(fine - coarse) / 15 + roundoff
        if not np.all(np.isfinite(jd)):
            return None
        return jd, error

    def kinked(self, along, h: float, roundoff: np.ndarray) -> bool:
        """Whether the op has a kink along the direction, for an op that declares no branch decisions.

        The gap between the one-sided slopes of a smooth function is h·f'' and shrinks with the step; at a kink
        it is the jump in the derivative and stays (a central difference there is their average, and
        Richardson cannot tell)."""
        base = along(0.0)
        gap = np.abs((along(h) - base) / h - (base - along(-h)) / h)
        gap_quarter = np.abs((along(h / 4) - base) / (h / 4) - (base - along(-h / 4)) / (h / 4))
        stays = (gap_quarter > 0.5 * gap) & (gap_quarter > 10 * roundoff + self.tol.atol)
        return bool(np.any(stays))

    def compare(self, position, g, passed, direction, jd, error) -> str:
        analytic = float(np.sum(passed * direction))
        numeric = float(np.sum(g * jd))
        # the op's own scale: the sum of the absolute terms of both inner products; if every element of the
        # gradient passed on were within atol + rtol |element|, the inner product would be within the first term
        scale = float(np.sum(np.abs(g * jd))) + float(np.sum(np.abs(passed * direction)))
        allowed = float(np.sum(np.abs(direction) * (self.tol.atol + self.tol.rtol * np.abs(passed))))
        bound = (allowed + self.tol.rtol * float(np.sum(np.abs(g * jd))) + float(np.sum(np.abs(g) * error))
                 + 16 * MACHINE_EPS * scale)
        if not np.isfinite(analytic) or abs(analytic - numeric) > bound:
            which = "the cotangent the graph gives" if g is self.cotangents[0] else "a random cotangent"
            return (f"checked on its own with {which}: <vjp(g), d> = {analytic:.6g} where finite differences of "
                    f"the op alone give <g, J d> = {numeric:.6g} (relative error "
                    f"{abs(analytic - numeric) / max(scale, 1e-300):.2g}, along a random direction d)")
        return ""

    def transpose(self, position: int, direction: np.ndarray, vjps) -> str:
        """<g, J t> = <J^T g, t>: the op's jvp and vjp must be each other's transpose."""
        if not self.node.op_info.has_jvp:
            return ""
        tangents = tuple((direction if i == position else np.zeros_like(a)) if differentiable(a) else None
                         for i, a in enumerate(self.args))
        try:
            with np.errstate(all="ignore"):
                copies = [np.array(a, copy=True) for a in self.args]
                jt = np.asarray(self.node.op_info.impl.jvp(tangents, self.out.copy(), *copies, **self.node.params),
                                dtype=np.float64)
        except (SystemExit, Exception) as error:
            return f"its jvp is faulty: {rule_failure('jvp', error)}"
        if jt.shape != self.out.shape:
            return ""  # the jvp check reports the shape
        for g, (grads, _) in zip(self.cotangents, vjps, strict=True):
            passed = np.asarray(grads[position], dtype=np.float64)
            forward_side, reverse_side = float(np.sum(g * jt)), float(np.sum(passed * direction))
            scale = float(np.sum(np.abs(g * jt))) + float(np.sum(np.abs(passed * direction)))
            if abs(forward_side - reverse_side) > self.tol.rtol * scale + 16 * MACHINE_EPS * scale:
                return (f"its jvp and vjp are not each other's transpose for argument {position}: "
                        f"<g, jvp(t)> = {forward_side:.6g}, <vjp(g), t> = {reverse_side:.6g}")
        return ""


def local_fault(graph: Graph, backward: BackwardPass, values, node: Node, position: int, tol: Tolerance) -> str:
    """What is wrong with the gradient node's vjp passes to its argument at position, or '' if nothing is
    (the checks above, for one edge)."""
    if node.index in backward.faults:
        fault = backward.faults[node.index]
        return f"its {fault_rule(fault)} is faulty: {fault}"
    adjoint = backward.adjoints[node.index]
    if adjoint is None or not np.all(np.isfinite(adjoint)):
        return ""
    if not differentiable(values[node.args[position]]) or position in node.op_info.integer_args:
        return ""
    message, _ = OpCheck(graph, node, backward, values, tol).check(position)
    return message
