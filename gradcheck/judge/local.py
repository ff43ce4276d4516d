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

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..batching import batched_forward
from ..engine import BackwardPass, call_vjp, differentiable, evaluate_node, evaluation_failures, fault_rule, rule_failure
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, shared_scale
from ..numeric.stencils import ROW_BY_ROW_ELEMENTS, adaptive_derivative
from ..plaindata import PlainData
from ..results import Suspect
from ..spec import Tolerance, stable_seed
from .kinks import decisions_of

LOCAL_COTANGENTS = 2      # random cotangents besides the graph's own
LOCAL_DIRECTIONS = 1      # random directions of the argument (a random g and a random d see any wrong rule)
FIRST_STEP = 1e-2         # the step sequence starts at 1e-2 of each element's scale
# the step tried first: the sequence's second level (its points are the sequence's own where it runs), short
# enough that the Richardson pair of a smooth op settles at once, long enough that round-off stays far below it
FIRST_TRY = FIRST_STEP / 4
# an argument the op declares itself affine in (its linear_in hook) is moved by these multiples of the direction,
# whose elements are one element scale long: exact differences need no short step (see OpCheck.linear_directional)
LINEAR_STEPS = (1.0, -0.5)


@dataclass(eq=False, repr=False)
class LocalChecks(PlainData):
    """What the op-local checks of one pass found, edge by edge."""

    suspects: list[Suspect] = field(default_factory=list)
    forgotten: set[tuple[int, int]] = field(default_factory=set)   # (node, position): a gradient the vjp forgot
    # (node, position, message): jvp and vjp not each other's transpose -- which of the two is wrong, the jvp
    # check against finite differences and the vjp checks above tell
    transposes: list[tuple[str, int, str]] = field(default_factory=list)
    # (node, position) -> what is wrong with the gradient that edge passes on ('' if nothing): every edge
    # checked, so vouching for a node reads these verdicts instead of checking the edges again
    edges: dict[tuple[int, int], str] = field(default_factory=dict)
    # (node, position): along a random direction the op showed a kink it declares no branch for (slopes.py's
    # question: the nodes upstream are then checked globally, not vouched for)
    kinked: set[tuple[int, int]] = field(default_factory=set)
    # (node, position) -> what the jvp check of that edge would compute itself, where the local check already has
    # it: the edges of built-in ops declared affine there (their J d exact), whose jvp it called for the transpose
    tangents: dict[tuple[int, int], SharedTangent] = field(default_factory=dict)


class SharedTangent(NamedTuple):
    """A tangent t of one argument, f(.., x + t, ..) - f(..) (J t for an op affine in x) with its round-off bound,
    and what the op's jvp gives for t."""

    direction: np.ndarray
    numeric: np.ndarray
    error_bound: np.ndarray
    jvp: np.ndarray


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
    """The local checks of every op edge that carries a gradient; backward is the pass over these values."""
    found = LocalChecks()
    needs = needs_gradient(graph, values)
    rng = np.random.default_rng(stable_seed(graph.spec.seed, "local"))
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
            message = f"its {fault_rule(fault)} is faulty: {fault}"
            found.suspects.extend(suspect(graph, node, position, message) for position in positions)
            found.edges.update({(node.index, position): message for position in positions})
            continue
        if not np.isfinite(adjoint).all():
            continue  # a faulty vjp downstream poisoned this op's cotangent: that op is the suspect
        checker = OpCheck(graph, node, backward, values, tolerance_of(node), rng)
        for position in positions:
            message, forgotten = checker.check(position)
            found.edges[(node.index, position)] = message
            if forgotten:
                found.forgotten.add((node.index, position))
            if checker.kink_seen:
                found.kinked.add((node.index, position))
            if checker.shared is not None:
                found.tangents[(node.index, position)] = checker.shared
            if message:
                found.suspects.append(suspect(graph, node, position, message))
            elif checker.transposition:
                found.transposes.append((node.name, position, checker.transposition))
    return found


def output_at(node: Node, args: list, position: int, x: np.ndarray, shape: tuple) -> np.ndarray | None:
    """The op's float64 output with argument ``position`` replaced by x (None where it cannot be evaluated)."""
    args = list(args)
    args[position] = x
    try:
        value = np.asarray(evaluate_node(node, args, np.float64), dtype=np.float64)
    except evaluation_failures(node):
        return None
    return value if value.shape == shape else None


def outputs_along(node: Node, args: list, position: int, x: np.ndarray, direction: np.ndarray,
                  steps: tuple[float, ...], shape: tuple) -> np.ndarray:
    """The op's output at x + t·direction (argument ``position``) for every t in steps, (len(steps), *shape): one
    vectorised call where the op's batching rule allows it (gradcheck/batching.py), else one call per step; NaN
    where the op cannot be evaluated."""
    stacked = stacked_along(x, direction, steps)
    args = list(args)
    args[position] = stacked
    batched = [i == position for i in range(len(args))]
    try:
        values = batched_forward(node, args, batched, len(steps), shape,
                                 lambda node, a, params=None: evaluate_node(node, a, np.float64, params))
    except evaluation_failures(node):
        values = None
    if values is not None and np.asarray(values).dtype.kind == "f":
        return np.asarray(values, dtype=np.float64)
    rows = [output_at(node, args, position, copy, shape) for copy in stacked]
    return np.stack([np.full(shape, np.nan) if row is None else row for row in rows])


def stacked_along(x: np.ndarray, direction: np.ndarray, steps: tuple[float, ...]) -> np.ndarray:
    """x + t·direction for every t in steps, (len(steps), *x.shape): copy by copy with a scalar operand where a
    copy is large (ROW_BY_ROW_ELEMENTS), else in one broadcast call."""
    stacked = np.empty((len(steps),) + x.shape)
    if x.size < ROW_BY_ROW_ELEMENTS:
        np.multiply(np.reshape(steps, (-1,) + (1,) * x.ndim), direction, out=stacked)
        stacked += x
        return stacked
    for k, step in enumerate(steps):
        copy = stacked[k, ...]  # a view also where x is a scalar
        np.multiply(direction, step, out=copy)
        copy += x
    return stacked


def random_signs(rng: np.random.Generator, magnitudes: np.ndarray) -> np.ndarray:
    """±magnitudes with equal chances, independently per element, from one random bit each (the generator's raw
    64-bit draws unpacked: a sixth of the time of drawing integers in [0, 2) on a large argument)."""
    size = magnitudes.size
    raw = np.asarray(rng.bit_generator.random_raw((size + 63) // 64), dtype=np.uint64)
    signs = np.unpackbits(raw.view(np.uint8), count=size).astype(np.float64)
    signs *= -2.0
    signs += 1.0
    signed = signs.reshape(magnitudes.shape)
    signed *= magnitudes
    return signed


def uniform_cotangents(rng: np.random.Generator, shape: tuple, out: np.ndarray | None = None) -> np.ndarray:
    """Independent draws of mean 0 and variance 1, uniform on [-sqrt 3, sqrt 3): a fifth of the time of normal
    draws.  Any continuous law serves: a wrong rule's error e gives <g, e> = 0 only on a null set of g.  ``out``:
    the array of that shape to draw into."""
    draws = rng.random(shape) if out is None else rng.random(out=out)
    draws *= 2 * math.sqrt(3.0)
    draws -= math.sqrt(3.0)
    return draws


def suspect(graph: Graph, node: Node, position: int, message: str) -> Suspect:
    return Suspect(node=node.name, op=node.op_name, argument=position,
                   argument_node=graph.nodes[node.args[position]].name, message=message)


class OpCheck:
    """The local checks of one op node.

    backward is the pass over these values: the gradients its vjp call passed on with the graph's cotangent are
    those this check judges (the op is called again only for the random cotangents)."""

    def __init__(self, graph: Graph, node: Node, backward: BackwardPass, values, tol: Tolerance,
                 rng: np.random.Generator | None = None):
        self.graph, self.node, self.tol, self.backward = graph, node, tol, backward
        self.values = values
        self.args = [np.asarray(values[a], dtype=np.float64) if differentiable(values[a]) else values[a]
                     for a in node.args]
        self.out = np.asarray(values[node.index], dtype=np.float64)
        # one stream for a whole pass (check_ops_locally), or the node's own
        self.rng = np.random.default_rng(stable_seed(graph.spec.seed, "local", node.name)) if rng is None else rng
        g = np.asarray(backward.adjoints[node.index], dtype=np.float64)
        g = np.broadcast_to(g, self.out.shape).copy() if g.shape != self.out.shape else g
        # the random cotangents are of unit scale, not the graph's: a loss scaled by 1e-9 (or a cotangent made tiny
        # downstream) must not shrink the op's error under atol; all of them rows of one matrix (and their absolute
        # values another), so that each inner product with the output's side is one matrix-vector product
        rows = np.empty((1 + LOCAL_COTANGENTS, self.out.size))
        rows[0] = g.reshape(-1)
        uniform_cotangents(self.rng, (LOCAL_COTANGENTS, self.out.size), out=rows[1:])
        self.cotangent_rows = rows
        self.cotangents = [row.reshape(self.out.shape) for row in rows]
        # the step's random projection of the output (a random cotangent serves), shared by the node's edges
        self.weights = rows[-1]
        self._vjps: list | None = None
        self.fault = ""
        self.transposition = ""   # what the last check found wrong between the jvp and the vjp
        self.shared: SharedTangent | None = None  # the last check's exact J d and the jvp's, for the jvp check
        self.exact_derivative = False             # the last directional() came from declared_linear_directional
        self.jvp_value: np.ndarray | None = None  # the jvp the last transpose() called
        self.kink_seen = False    # a kink the op declares no branch for met along a direction

    @cached_property
    def abs_cotangent_rows(self) -> np.ndarray:
        return np.abs(self.cotangent_rows)

    @cached_property
    def abs_out(self) -> np.ndarray:
        return np.abs(self.out)

    @cached_property
    def magnitude(self) -> float:
        """|w|·|out| for the step's projection w: the scale its round-off is judged at."""
        return float(np.abs(self.weights) @ self.abs_out.reshape(-1)) + 1e-300

    @property
    def vjps(self) -> list:
        """The op's vjp for every cotangent, in float64 (each call on copies: call_vjp)."""
        if self._vjps is None:
            graphs = self.graph_vjp()
            batched = self.batched_vjps(0 if graphs is None else 1)
            if batched is not None:
                self._vjps = batched if graphs is None else [graphs, *batched]
                return self._vjps
            self._vjps = []
            for number, g in enumerate(self.cotangents):
                if number == 0 and graphs is not None:
                    self._vjps.append(graphs)
                    continue
                faults: dict[int, str] = {}
                declared: set = set()
                grads = call_vjp(self.node, g, self.out, list(self.args), faults, declared, recheck=False)
                if faults:
                    self.fault = faults[self.node.index]
                    break
                self._vjps.append((grads, declared))
        return self._vjps

    def batched_vjps(self, first: int) -> list | None:
        """The vjps of the cotangents from number ``first`` on, from one call of a built-in op's batched_vjp (its
        declaration is tested against one call per cotangent, tests/test_batched_vjp.py), as call_vjp gives them;
        None where the op declares none, or the call raises or gives anything but (K, *argument shape) float64
        gradients: one call per cotangent then, which names what is wrong."""
        op, count = self.node.op_info, len(self.cotangents) - first
        if op.batched_vjp is None or op.source != "builtin":
            return None
        stacked_cotangents = self.cotangent_rows[first:].reshape((count,) + self.out.shape)
        try:
            stacked = op.batched_vjp(stacked_cotangents, self.out, *self.args, **self.node.params)
        except Exception:
            return None
        if not isinstance(stacked, (tuple, list)) or len(stacked) != len(self.args):
            return None
        declared: set = set()
        per_argument: list = []
        for position, (grads, arg) in enumerate(zip(stacked, self.args, strict=True)):
            if not differentiable(arg):
                per_argument.append(None)
            elif grads is None:  # the op declares this argument non-differentiable (call_vjp's zeros)
                declared.add((self.node.index, position))
                per_argument.append(np.zeros((count,) + np.shape(arg)))
            elif not (isinstance(grads, np.ndarray) and grads.dtype == np.float64
                      and grads.shape == (count,) + np.shape(arg)):
                return None
            else:
                per_argument.append(grads)
        return [([None if grads is None else grads[k] for grads in per_argument], declared) for k in range(count)]

    def graph_vjp(self) -> tuple[list, set] | None:
        """What the backward pass's own vjp call passed on, where that call is the one this check would make (a
        float64 pass over these values, g of the output's shape); None: the op is called again."""
        node, adjoint = self.node, np.asarray(self.backward.adjoints[self.node.index])
        if adjoint.dtype != np.float64 or adjoint.shape != self.out.shape:
            return None
        if any(differentiable(self.values[a]) and np.asarray(self.values[a]).dtype != np.float64 for a in node.args):
            return None
        grads: list = []
        declared = set()
        for position, arg in enumerate(self.args):
            edge = (node.index, position)
            if edge in self.backward.edge_grads:
                grads.append(self.backward.edge_grads[edge])
            elif edge in self.backward.declared_none:
                declared.add(edge)
                grads.append(np.zeros(np.shape(arg)))
            elif differentiable(arg):
                return None  # not recorded by this pass
            else:
                grads.append(None)
        return grads, declared

    def scale_of(self, position: int) -> np.ndarray:
        return shared_scale(self.args[position])

    def output_at(self, position: int, x: np.ndarray) -> np.ndarray | None:
        return output_at(self.node, self.args, position, x, self.out.shape)

    def outputs_along(self, position: int, x: np.ndarray, direction: np.ndarray, steps: tuple[float, ...]) -> np.ndarray:
        return outputs_along(self.node, self.args, position, x, direction, steps, self.out.shape)

    def check(self, position: int) -> tuple[str, bool]:
        """(what is wrong with the vjp's gradient to this argument or '', whether it forgot the gradient)."""
        with np.errstate(all="ignore"):
            return self._check(position)

    def _check(self, position: int) -> tuple[str, bool]:
        vjps = self.vjps
        if self.fault:
            return f"its vjp is faulty: {self.fault}", False
        x = self.args[position]
        self.transposition, self.kink_seen, self.shared = "", False, None
        declared = any((self.node.index, position) in d for _, d in vjps)
        for _ in range(LOCAL_DIRECTIONS):
            direction = random_signs(self.rng, self.scale_of(position))
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
            passed = [np.asarray(grads[position], dtype=np.float64) for grads, _ in vjps]
            problem = self.compare(passed, self.cotangents, direction, jd, error)
            if problem:
                return problem, False
            if not self.transposition:
                self.jvp_value = None
                self.transposition = self.transpose(position, direction, vjps)
                if not self.transposition and self.exact_derivative and self.jvp_value is not None:
                    self.shared = SharedTangent(direction, jd, error, self.jvp_value)
        return "", False

    def check_element(self, position: int, flat: int) -> str:
        """The gradient the vjp passes to one element of the argument, with the graph's own cotangent, against
        finite differences of the op alone (the edge-by-edge look at an element a global check found wrong)."""
        with np.errstate(all="ignore"):
            return self._check_element(position, flat)

    def _check_element(self, position: int, flat: int) -> str:
        if self.fault or not self.vjps:
            return f"its vjp is faulty: {self.fault}" if self.fault else ""
        x = self.args[position]
        direction = np.zeros(x.shape)
        direction.reshape(-1)[flat] = float(self.scale_of(position).reshape(-1)[flat])
        derivative = self.directional(position, x, direction)
        if derivative is None:
            return ""
        grads, _ = self.vjps[0]
        if grads[position] is None:
            return ""
        return self.compare([np.asarray(grads[position], dtype=np.float64)], self.cotangents[:1], direction,
                            *derivative)

    def directional(self, position: int, x: np.ndarray, direction: np.ndarray):
        """J d for the op alone, element by element of its output, with an error bound per element; None where
        the op is not smooth along d at the step the estimate needs (a branch decision changes)."""
        self.exact_derivative = False
        if self.node.op_info.is_linear_in(position):
            found = self.linear_directional(position, x, direction)
            if found is not None:
                return found
        return self.stencil_directional(position, x, direction)

    def linear_directional(self, position: int, x: np.ndarray, direction: np.ndarray):
        """J d for an argument the op declares itself affine in: for a custom op, from the op at x + d and x - d/2
        (one call), or None where those show it is not (the five-point stencil then decides); for a built-in op,
        whose declaration is tested, from x + d alone (declared_linear_directional).

        For an affine f, f(x + t d) = f(x) + t J d exactly, so (f(x + d) - f(x - d/2)) / 1.5 is J d up to the
        round-off of the two results, at a step that makes that round-off as small as it gets.  The residual
        r = f(x + d) + 2 f(x - d/2) - 3 f(x) vanishes for an affine f; with f(x + t d) = f(x) + t a + t² b + t³ c,
        r = 1.5 b + 0.75 c while the estimate errs by 0.5 b + 0.75 c, so |r| joins the error bound, and where r
        is beyond round-off on the random projection of the output (a wrong declaration), the stencil decides."""
        builtin = self.node.op_info.source == "builtin"
        steps = LINEAR_STEPS
        if self.node.op_info.branches is not None:
            try:
                if self.decisions_move(position, x, direction, (1.0,) if builtin else steps,
                                       decisions_of(self.node, self.args)):
                    return None
            except evaluation_failures(self.node):
                return None
        if builtin:
            return self.declared_linear_directional(position, x, direction)
        ahead, behind = self.outputs_along(position, x, direction, steps)
        jd = (ahead - behind) / (steps[0] - steps[1])
        residual = ahead + 2 * behind - 3 * self.out
        roundoff = np.abs(ahead)
        roundoff += np.abs(behind)
        roundoff *= 4 * MACHINE_EPS / (steps[0] - steps[1])
        projected = float(self.weights @ residual.reshape(-1))
        if not (np.isfinite(projected) and abs(projected) <= 1e-3 * self.tol.rtol * self.magnitude
                and np.isfinite(jd).all()):
            return None
        error = np.abs(residual)
        error += roundoff
        return jd, error

    def declared_linear_directional(self, position: int, x: np.ndarray, direction: np.ndarray):
        """linear_directional() for a built-in op, whose declaration tests/test_linear_ops.py verifies for every
        registered op: f(x + d) - f(x) is J d up to the round-off of the two results (one evaluation)."""
        ahead = self.output_at(position, x + direction)
        if ahead is None:
            return None
        jd = ahead - self.out
        if not np.isfinite(jd).all():
            return None
        error = np.abs(ahead)
        error += self.abs_out
        error *= 4 * MACHINE_EPS
        self.exact_derivative = True
        return jd, error

    def stencil_directional(self, position: int, x: np.ndarray, direction: np.ndarray):
        """directional() by the five-point stencil of an error-balanced step (any op)."""
        reference = decisions_of(self.node, self.args) if self.node.op_info.branches is not None else ()
        weights, magnitude = self.weights, self.magnitude
        enough = 1e-3 * self.tol.rtol * magnitude
        # the usual step first (its four points in one call); where its Richardson pair disagrees on a random
        # projection of the output, a step chosen on that projection by the error-balancing sequence; every
        # element is then read at that step
        h = FIRST_TRY
        steps = (h, -h, h / 4, -h / 4, 0.0)  # the op at 0 again, in the same call as the others (kinked)
        points = self.outputs_along(position, x, direction, steps)
        projected = points.reshape(len(steps), -1) @ weights
        coarse = (projected[0] - projected[1]) / (2 * h)
        fine = (projected[2] - projected[3]) / (h / 2)
        if not (np.isfinite(coarse) and np.isfinite(fine) and abs(fine - coarse) / 15 <= enough):
            cache: dict[float, np.ndarray] = dict(zip(steps, points, strict=True))

            def along(t: float) -> np.ndarray:
                if t not in cache:
                    value = self.output_at(position, x + t * direction)
                    cache[t] = np.full(self.out.shape, np.nan) if value is None else value
                return cache[t]

            best = adaptive_derivative(lambda t: float(weights @ along(t).reshape(-1)), FIRST_STEP, magnitude,
                                       enough=enough)
            if not np.isfinite(best.value):
                return None
            h = best.step
            points = np.stack([along(t) for t in (h, -h, h / 4, -h / 4, 0.0)])
        if reference:
            try:
                if self.decisions_move(position, x, direction, (h, -h, h / 4, -h / 4), reference):
                    return None
            except evaluation_failures(self.node):
                return None
        # row by row with scalar operands (a broadcast operand of one value per row costs a third more), on
        # flat rows (arrays also where the output is a scalar, for the operations in place)
        shape, points = self.out.shape, points.reshape(len(points), -1)
        coarse = points[0] - points[1]
        coarse /= 2 * h
        fine = points[2] - points[3]
        fine /= h / 2
        jd = 16 * fine
        jd -= coarse
        jd /= 15
        roundoff = np.abs(points[0])
        roundoff += self.abs_out.reshape(-1)
        roundoff *= 16 * MACHINE_EPS / h  # 4 eps (|f(0)| + |f(h)|) / (h / 4)
        if self.node.op_info.branches is None and self.kinked(points, h, roundoff):
            self.kink_seen = True
            return None
        error = fine - coarse
        np.abs(error, out=error)
        error /= 15
        error += roundoff
        if not np.isfinite(jd).all():
            return None
        return jd.reshape(shape), error.reshape(shape)

    def decisions_move(self, position: int, x: np.ndarray, direction: np.ndarray, steps: tuple[float, ...],
                       reference: tuple[np.ndarray, ...]) -> bool:
        """Whether a branch decision of the op at x + t·direction differs from the reference one for some t: every
        step in one call for a built-in op whose forward (and so its decisions) broadcasts over leading axes."""
        op = self.node.op_info
        if op.source == "builtin" and op.batching == "broadcast":
            stacked = stacked_along(x, direction, steps)
            rank = max(np.ndim(a) for a in self.args)
            args = list(self.args)
            args[position] = stacked.reshape((len(steps),) + (1,) * (rank - x.ndim) + x.shape)
            moved = decisions_of(self.node, args)
            if len(moved) == len(reference) and all(m.shape == (len(steps),) + r.shape
                                                    for m, r in zip(moved, reference, strict=True)):
                return any(bool(np.any(m != r)) for m, r in zip(moved, reference, strict=True))
        for t in steps:
            args = list(self.args)
            args[position] = x + t * direction
            moved = decisions_of(self.node, args)
            if len(moved) != len(reference) or any(not np.array_equal(m, r) for m, r in zip(moved, reference, strict=True)):
                return True
        return False

    def kinked(self, points: np.ndarray, h: float, roundoff: np.ndarray) -> bool:
        """Whether the op has a kink along the direction, for an op that declares no branch decisions; points
        holds the output at steps h, -h, h/4, -h/4 and 0, one flat row each.

        The gap between the one-sided slopes of a smooth function, (f(h) - 2 f(0) + f(-h)) / h, is h·f'' and
        shrinks with the step; at a kink it is the jump in the derivative and stays (a central difference there
        is their average, and Richardson cannot tell)."""
        twice_at_zero = 2 * points[4]
        gap = points[0] + points[1]
        gap -= twice_at_zero
        np.abs(gap, out=gap)
        gap /= h
        gap_quarter = points[2] + points[3]
        gap_quarter -= twice_at_zero
        np.abs(gap_quarter, out=gap_quarter)
        gap_quarter /= h / 4
        gap *= 0.5
        stays = gap_quarter > gap  # the quarter step's gap above half the whole step's
        if not stays.any():  # a smooth op's gaps shrink by 4: the common case, decided here
            return False
        stays &= gap_quarter > 10 * roundoff + self.tol.atol
        return bool(stays.any())

    def compare(self, passed: list[np.ndarray], cotangents: list[np.ndarray], direction, jd, error) -> str:
        """<vjp(g), d> against <g, J d> for each cotangent g and the gradient passed for it, in turn."""
        flat_d, flat_jd = direction.reshape(-1), jd.reshape(-1)
        abs_d = np.abs(flat_d)
        atol_terms = self.tol.atol * float(abs_d.sum())
        count = len(cotangents)
        own = count <= len(self.cotangents) and all(g is mine for g, mine in zip(cotangents, self.cotangents, strict=False))
        rows = self.cotangent_rows[:count] if own else np.stack([np.reshape(g, -1) for g in cotangents])
        numerics = rows @ flat_jd
        flat_grads = [grad.reshape(-1) for grad in passed]
        analytics = [float(flat_grad @ flat_d) for flat_grad in flat_grads]
        # every term of the bound below is non-negative: a gap within atol_terms passes whatever the others are,
        # the common case decided from two inner products per cotangent (a NaN gap goes on to the whole bound)
        if all(abs(analytic - float(numeric)) <= atol_terms for analytic, numeric in zip(analytics, numerics, strict=True)):
            return ""
        abs_rows = self.abs_cotangent_rows[:count] if own else np.abs(rows)
        # the bound's terms on the output's side, |g|·|J d| and |g|·error, for every cotangent in one product
        numeric_terms_all, error_terms = (abs_rows @ np.stack([np.abs(flat_jd), error.reshape(-1)], axis=1)).T
        for number, (flat_grad, analytic) in enumerate(zip(flat_grads, analytics, strict=True)):
            numeric = float(numerics[number])
            # the op's own scale: the sum of the absolute terms of both inner products (|a·b| summed is |a|·|b|);
            # if every element of the gradient passed on were within atol + rtol |element|, the inner product
            # would be within atol_terms + rtol·analytic_terms
            numeric_terms, analytic_terms = float(numeric_terms_all[number]), float(np.abs(flat_grad) @ abs_d)
            scale = numeric_terms + analytic_terms
            bound = (atol_terms + self.tol.rtol * (analytic_terms + numeric_terms) + float(error_terms[number])
                     + 16 * MACHINE_EPS * scale)
            if not np.isfinite(analytic) or abs(analytic - numeric) > bound:
                which = "the cotangent the graph gives" if number == 0 else "a random cotangent"
                return (f"checked on its own with {which}: <vjp(g), d> = {analytic:.6g} where finite differences "
                        f"of the op alone give <g, J d> = {numeric:.6g} (relative error "
                        f"{abs(analytic - numeric) / max(scale, 1e-300):.2g}, along a random direction d)")
        return ""

    def transpose(self, position: int, direction: np.ndarray, vjps) -> str:
        """<g, J t> = <J^T g, t>: the op's jvp and vjp must be each other's transpose."""
        if not self.node.op_info.has_jvp:
            return ""
        builtin = self.node.op_info.source == "builtin"  # a built-in rule leaves its arguments as they are
        tangents = tangents_moving_one(self.args, position, direction, builtin)
        try:
            copies = self.args if builtin else [np.array(a, copy=True) for a in self.args]
            out = self.out if builtin else self.out.copy()
            jt = np.asarray(self.node.op_info.impl.jvp(tangents, out, *copies, **self.node.params), dtype=np.float64)
        except (SystemExit, Exception) as error:
            return f"its jvp is faulty: {rule_failure('jvp', error)}"
        if jt.shape != self.out.shape:
            return ""  # the jvp check reports the shape
        self.jvp_value = jt
        # <g, J t> and its absolute terms for every cotangent in two products (the cotangents are rows of one matrix)
        flat_jt, flat_d = jt.reshape(-1), direction.reshape(-1)
        forward_sides = self.cotangent_rows[:len(vjps)] @ flat_jt
        forward_terms = self.abs_cotangent_rows[:len(vjps)] @ np.abs(flat_jt)
        abs_d = np.abs(flat_d)
        for number, (grads, _) in enumerate(vjps):
            passed = np.asarray(grads[position], dtype=np.float64).reshape(-1)
            forward_side, reverse_side = float(forward_sides[number]), float(passed @ flat_d)
            scale = float(forward_terms[number]) + float(np.abs(passed) @ abs_d)
            if abs(forward_side - reverse_side) > self.tol.rtol * scale + 16 * MACHINE_EPS * scale:
                return (f"its jvp and vjp are not each other's transpose for argument {position}: "
                        f"<g, jvp(t)> = {forward_side:.6g}, <vjp(g), t> = {reverse_side:.6g}")
        return ""


def tangents_moving_one(args: list, position: int, tangent: np.ndarray, builtin: bool) -> tuple:
    """A jvp's tangents moving argument ``position`` alone: None for the other arguments of a built-in op, whose rules
    all take None for "no tangent" (a zero tangent would only add zero terms, such as the convolution of a zero
    kernel), zeros for a custom op's other differentiable arguments (its rule may expect an array), None for data."""
    return tuple(tangent if i == position else np.zeros_like(a) if differentiable(a) and not builtin else None
                 for i, a in enumerate(args))


def local_fault(graph: Graph, backward: BackwardPass, values, node: Node, position: int, tol: Tolerance) -> str:
    """What is wrong with the gradient node's vjp passes to its argument at position, or '' if nothing is
    (the checks above, for one edge)."""
    if node.index in backward.faults:
        fault = backward.faults[node.index]
        return f"its {fault_rule(fault)} is faulty: {fault}"
    adjoint = backward.adjoints[node.index]
    if adjoint is None or not np.isfinite(adjoint).all():
        return ""
    if not differentiable(values[node.args[position]]) or position in node.op_info.integer_args:
        return ""
    message, _ = OpCheck(graph, node, backward, values, tol).check(position)
    return message
