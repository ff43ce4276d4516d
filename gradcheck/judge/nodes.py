"""Analytic vs numeric, node by node: tolerances, the full element-wise check, directional probes.

Every element is judged by ``verdict``.  Every element whose first comparison fails, or whose first
estimate is too noisy to resolve the tolerance, gets a second look at the most accurate estimate float64
allows (complex-step where the ops downstream are analytic, else an error-balancing step sequence), which
replaces the first only when its error bound is smaller.  Kinks come from the ops' branch decisions
(``kinks.BranchWatch``): an element whose stencil changes one is judged against its one-sided slopes; for
ops that declare no branches (custom and framework ops), one-sided slopes whose jump stays as the step
shrinks mark a kink too (``slopes``): measured on every element of the nodes such an op is downstream of,
also where the first comparison passes.
"""
from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from ..engine import BackwardPass, ForwardPass, fault_rule
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, Estimate, Evaluator, NodeDifferentiator, Slopes
from ..numeric.differentiator import (
    MAX_STEP_LEVELS,
    PROBE_OFFSETS,
    STEP_SHRINK,
    DirectionalEstimate,
    JointDifferentiator,
    directional_estimates,
    joint_directional_estimate,
    power_of_two,
)
from ..numeric.evaluator import MAX_CHANGE_FLOATS
from ..numeric.stencils import BASE_STEP, STENCILS
from ..results import NodeResult, Outcome, Status
from ..sizing import batch_floats
from ..spec import Tolerance, stable_seed
from .kinks import BranchWatch
from .local import LocalChecks, local_fault
from .options import CheckOptions
from .slopes import (
    KINK_PERSISTENCE,
    central_candidates,
    directional_kink,
    kink_steps,
    undeclared_kinks,
    undeclared_ops,
)
from .verdict import agrees, allowed_error, at_kink, classify, element_status, outcome

FIRST_PROBE_STEP = 3e-3  # relative to each element's scale (the directions are scaled per element)
LONGEST_PROBE_STEP = 1e-2  # the balanced step of a probe is capped here (a longer one may leave a domain)
PROBE_STEP_TRIES = 4     # a probe whose stencil crosses a branch decision is retried at steps this many times shorter
PROBE_STEP_SHRINK = 16.0
MISSED_ERRORS_CHANCE = 1e-2  # probes are drawn until wrong elements cancelling in all of them are at most this likely
FLOOR_SEARCH_ELEMENTS = 64  # nodes up to this size get the most accurate estimate float64 allows everywhere
# a failing element whose one-sided slopes stay KINK_PERSISTENCE (slopes.py) of their gap apart at a quarter of the
# step is at a kink (a safety net for a decision a branch watch missed; undeclared kinks: slopes.undeclared_kinks)


class ProbeVerdict(NamedTuple):
    """One directional probe: analytic minus numeric directional derivative, the bound on that difference
    for a right gradient, the step taken and the step the next probe should take."""

    gap: float
    bound: float
    step: float
    next_step: float
    resolved: bool  # the bound resolves one element's tolerance (else only the tolerances of all elements summed)


class ProbePlan:
    """A node's probes before they are taken: its step scales, elements at branch decisions, one element's
    tolerance in direction units (None: some element cannot be probed), the first direction and, when the
    probes of several nodes were swept together, the first estimate, or the first verdict of a probe of several
    nodes moved at once.  The directions after the first come from the node's own random stream (``seed``),
    started when the first of them is drawn."""

    def __init__(self, seed: list[int], scale: np.ndarray, at_kink: np.ndarray, resolution: float | None):
        self.seed, self.scale, self.at_kink, self.resolution = seed, scale, at_kink, resolution
        self._rng: np.random.Generator | None = None
        self.kinks = bool(at_kink.any())
        self.direction = np.zeros(0)
        self.first_estimate: DirectionalEstimate | None = None
        self.joint: ProbeVerdict | None = None  # the first probe, taken with other nodes (Comparator.joint_probe)
        self.joint_with = 0

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def draw(self, uniform: np.ndarray | None = None) -> np.ndarray:
        """d_i = ±u_i·scale_i, u_i uniform on [1, 2], independent signs; 0 at the elements at branch decisions.
        ``uniform``: the draws on [0, 1) to shape (the first directions of several nodes are drawn in one call),
        else drawn from the node's stream."""
        # uniform on [-1, 1): its sign and 1 + its size, independent (in place: one array for a large node)
        direction = self.rng.random(self.scale.size) if uniform is None else uniform
        direction *= 2
        direction -= 1
        direction += np.copysign(1.0, direction)
        direction *= self.scale
        if self.kinks:
            direction[self.at_kink] = 0.0
        return direction


class Comparator:
    def __init__(self, graph: Graph, analytic_fwd: ForwardPass, backward: BackwardPass, reference: ForwardPass,
                 method: str, eps: float | None, options: CheckOptions, forgotten=frozenset(),
                 precision: BackwardPass | None = None, precision_tolerance=None, tolerance_of=None,
                 local_checks: LocalChecks | None = None):
        self.graph = graph
        self.spec = graph.spec
        self.analytic_fwd = analytic_fwd
        self.backward = backward
        self.reference = reference
        self.method = method
        self.eps = eps
        self.options = options
        self.evaluator = Evaluator(graph, reference.values, reference.projection)
        self.evaluator.max_change_floats = min(MAX_CHANGE_FLOATS, batch_floats(options.memory_budget))
        self.watch = BranchWatch(graph, reference.values)
        self.forgotten = forgotten          # (node, position) whose vjp returned None for an argument it needs
        self.precision = precision          # float32 specs: the float32 pass's adjoints, judged against float64
        self.precision_tolerance = precision_tolerance
        self.tolerance_of = tolerance_of    # the correctness tolerance of a node (default: its own or the spec's)
        self.local_checks = local_checks    # the verdicts of the op-local checks already run (judge.local)
        self.notes: list[str] = []
        self.fault_origin = self._fault_origins()
        self._differentiators: dict[int, NodeDifferentiator] = {}
        self._skip_reasons: dict[int, str | None] = {}
        self._probe_plans: dict[int, ProbePlan] = {}
        self._gradients: dict[int, Estimate] = {}  # full(): the numeric gradients plan_gradients took together
        self._first_flips: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # node -> (steps, element_flips there)
        self._tie_slopes: dict[int, dict[int, Slopes]] = {}  # node -> {element at a tie: its branch_slopes}
        self._undeclared: dict[int, list[str]] = {}
        self.undeclared_found: dict[int, int] = {}  # node -> elements found at a kink no op declares

    def _fault_origins(self) -> dict[int, int]:
        """Node -> the nearest consumer downstream whose vjp failed (its NaN reached this node's gradient)."""
        origin: dict[int, int] = {}
        for node in reversed(self.graph.nodes):
            source = node.index if node.index in self.backward.faults else origin.get(node.index)
            if source is None or node.kind != "op":
                continue
            for arg in node.args:
                origin.setdefault(arg, source)
        return origin

    def fault_message(self, node: Node) -> str | None:
        if node.index in self.backward.faults:
            fault = self.backward.faults[node.index]
            return f"its {fault_rule(fault)} is faulty: {fault}"
        source = self.fault_origin.get(node.index)
        if source is None:
            return None
        culprit = self.graph.nodes[source]
        fault = self.backward.faults[source]
        return (f"no gradient to check: the {fault_rule(fault)} of op '{culprit.op_name}' at node '{culprit.name}' "
                f"is faulty ({fault})")

    # ---------------------------------------------------------------------------------- per node
    def compare_all(self) -> list[NodeResult]:
        # constants inside expressions are not nodes; a named constant (`c: 2.5`) is, with no gradient to check
        compared = [node for node in self.graph.nodes if node.kind != "constant" or node.is_named]
        self.plan_probes([node for node in compared if self.probed(node)])
        self.plan_gradients([node for node in compared if self.checked_in_full(node)])
        results = []
        for node in compared:
            started = time.perf_counter()
            results.append(self.compare_node(node))
            results[-1].seconds = time.perf_counter() - started
            if self.options.progress is not None:
                self.options.progress.node_checked(node.name, len(results), len(compared), self.evaluator.evaluations)
        return results

    # ---------------------------------------------------------------------------------- global budget
    @property
    def globally_checked(self) -> set[int]:
        """auto mode: the nodes perturbed end to end.  Perturbing node i re-evaluates what follows it, so checking
        every node of a chain of n costs n²/2 node evaluations; the inputs always are, then the other nodes
        nearest the output first, while the total stays within options.global_budget.  The rest are vouched for
        by the local checks of the ops between them and the output (see vouched)."""
        if not hasattr(self, "_globally_checked"):
            checkable = [node for node in self.graph.nodes if self.why_skipped(node) is None]
            if self.options.mode != "auto":
                self._globally_checked = {node.index for node in checkable}
                return self._globally_checked
            # nodes after i in topological order that reach the output bound the downstream of i (exactly, on a chain)
            after = np.cumsum([self.graph.reaches_output[n.index] for n in reversed(self.graph.nodes)])[::-1]
            cost = {node.index: int(after[node.index]) - 1 for node in checkable}
            chosen = {node.index for node in checkable if node.kind == "input"}
            spent = sum(cost[i] for i in chosen)
            for node in sorted((n for n in checkable if n.kind != "input"), key=lambda n: cost[n.index]):
                if spent + cost[node.index] > self.options.global_budget:
                    break
                chosen.add(node.index)
                spent += cost[node.index]
            self._globally_checked = chosen
        return self._globally_checked

    @property
    def first_faulty_edge(self) -> list[tuple[int, int, str] | None]:
        """For each node, an op edge between it and the output whose vjp fails its local check (None: none does)."""
        if not hasattr(self, "_first_faulty_edge"):
            faulty: list[tuple[int, int, str] | None] = [None] * len(self.graph.nodes)
            reach = self.differentiable_reach
            for node in reversed(self.graph.nodes[: self.graph.output + 1]):
                for consumer, position in self.graph.consumers[node.index]:
                    if not reach[consumer] or consumer > self.graph.output:
                        continue
                    message = self.edge_fault(self.graph.nodes[consumer], position)
                    found = (consumer, position, message) if message else faulty[consumer]
                    if found is not None:
                        faulty[node.index] = found
                        break
            self._first_faulty_edge = faulty
        return self._first_faulty_edge

    def edge_fault(self, node: Node, position: int) -> str:
        """The local check's verdict on the gradient node passes to its argument at position ('' if right): the
        one check_ops_locally reached, else checked now."""
        if self.local_checks is not None and (node.index, position) in self.local_checks.edges:
            return self.local_checks.edges[(node.index, position)]
        return local_fault(self.graph, self.backward, self.reference.values, node, position, self.tolerance(node))

    def vouched(self, node: Node, described: dict[str, Any], analytic: np.ndarray) -> NodeResult:
        """A node beyond the global budget: its adjoint is the sum of what its consumers' vjps pass it, so it is
        right when every vjp between it and the output passes its local check (an induction from the output)."""
        edge = self.first_faulty_edge[node.index]
        if edge is None:
            message = ("vouched for by the local checks of every op between it and the output (auto mode's global "
                       "budget went to the inputs and the nodes nearest the output; --mode full perturbs every node)")
            return NodeResult(**described, status=Status.PASS, analytic=analytic, checked="local", message=message)
        consumer, position, message = edge
        user = self.graph.nodes[consumer]
        return NodeResult(**described, status=Status.FAIL, failing=int(np.size(analytic)), analytic=analytic,
                          checked="local",
                          message=f"its gradient passes through '{user.name}' ({user.op_name}), whose vjp {message}")

    def tolerance(self, node: Node) -> Tolerance:
        if self.tolerance_of is not None:
            return self.tolerance_of(node)
        # lowering gives a named node's automatic op nodes its own tolerance (graph._Builder.lower)
        return node.tolerance if node.tolerance is not None else self.spec.tolerance

    def analytic_of(self, node: Node) -> np.ndarray:
        adjoint = self.backward.adjoints[node.index]
        value = self.reference.values[node.index]
        if adjoint is None:
            return np.zeros(np.shape(value))
        return np.asarray(adjoint, dtype=np.float64)

    def compare_node(self, node: Node) -> NodeResult:
        value = self.reference.values[node.index]
        tol = self.tolerance(node)
        # the fields every result of this node shares; each result is built once, with its outcome
        described: dict[str, Any] = dict(name=node.name, op=node.op_name, parent=node.parent, shape=tuple(np.shape(value)),
                                         atol=tol.atol, rtol=tol.rtol, text=node.text, location=node.location,
                                         value=value)
        reason = self.why_skipped(node)
        if reason:
            analytic = None
            if np.asarray(value).dtype.kind == "f" and self.backward.adjoints[node.index] is not None:
                analytic = self.analytic_of(node)
            return NodeResult(**described, status=Status.SKIP, message=reason, checked="none", analytic=analytic)
        analytic = self.analytic_of(node)
        fault = self.fault_message(node)
        if np.size(value) == 0:
            return NodeResult(**described, analytic=analytic, message=fault)
        if node.index not in self.globally_checked and not self.behind_local_kink(node):
            return self.vouched(node, described, analytic)
        differ = self.differentiator(node)
        result = None
        if self.uses_probes(node):
            found, message = self.probe(node, differ, analytic, tol)
            if found is not None:
                result = NodeResult(**described, **found.outcome_fields(), analytic=analytic, checked="probes",
                                    message=fault or message)
        if result is None:  # full mode, a small node, or probes that could not settle it
            found, numeric, errors = self.full(node, differ, analytic, tol)
            result = NodeResult(**described, **found.outcome_fields(), analytic=analytic, numeric=numeric,
                                numeric_error=errors, checked="full", message=fault or self.unresolved_message(found))
        if self.undeclared_found.get(node.index) and not fault:
            result.message = "; ".join(filter(None, [result.message, self.undeclared_message(node)]))
        return self.judge_precision(node, result)

    def undeclared(self, node: Node) -> list[str]:
        """The custom and framework ops without declared branches downstream of node (slopes.undeclared_ops)."""
        if node.index not in self._undeclared:
            self._undeclared[node.index] = undeclared_ops(self.graph, node.index)
        return self._undeclared[node.index]

    def undeclared_message(self, node: Node) -> str:
        declaring = {self.graph.nodes[j].op_name for j in self.graph.downstream(node.index)
                     if self.graph.nodes[j].kind == "op" and self.graph.nodes[j].op_info.branches is not None}
        without = ", ".join(f"'{name}'" for name in self.undeclared(node) if name not in declaring)
        missing = ", ".join(f"'{name}'" for name in self.undeclared(node) if name in declaring)
        return "; ".join(filter(None, [
            f"{self.undeclared_found[node.index]} element(s) at a kink no op declares: their one-sided slopes "
            "differ by the same jump at steps 16 times apart",
            without and f"op(s) downstream without declared branches: {without} (declaring `branches` names the "
                        "decision)",
            missing and f"custom op(s) downstream whose `branches` report no decision changing there: {missing}"]))

    def behind_local_kink(self, node: Node) -> bool:
        """Whether an op downstream of node showed its op-local check a kink it does not declare: auto mode
        does not vouch for node by those checks (they cannot judge a kink), it checks node itself."""
        if self.local_checks is None or not self.local_checks.kinked:
            return False
        downstream = set(self.graph.downstream(node.index))
        return any(consumer in downstream for consumer, _ in self.local_checks.kinked)

    def unresolved_message(self, found: Outcome) -> str | None:
        if not found.inconclusive or found.failing:
            return None
        return (f"{found.inconclusive} element(s) inconclusive: no float64 estimate resolves the tolerance there "
                f"(numeric error up to {found.worst_numeric_error:.3g} at {list(found.worst_index)}, beyond "
                "atol + rtol·|n|); large terms that cancel or a large constant in the objective swamp the differences. "
                "Loosen atol/rtol for this node, take the constant out of the loss, or make the ops downstream "
                "complex-safe so complex-step applies; --allow-inconclusive makes this a warning")

    def judge_precision(self, node: Node, result: NodeResult) -> NodeResult:
        """float32 specs: correctness was judged in float64; here the float32 gradient is judged against the
        float64 one under the float32 tolerance."""
        if self.precision is None or result.status == Status.SKIP or result.analytic is None:
            return result
        low = self.precision.adjoints[node.index]
        if low is None:
            return result
        low = np.asarray(low, dtype=np.float64)
        tol = self.precision_tolerance(node)
        with np.errstate(invalid="ignore"):
            error = np.abs(low - result.analytic)
        ok = agrees(low, result.analytic, tol)
        worst = float(np.nanmax(error)) if error.size else 0.0
        result.precision = f"float32 gradient within {worst:.3g} of the float64 one (atol {tol.atol:g}, rtol {tol.rtol:g})"
        if not bool(np.all(ok)):
            flat = int(np.argmax(np.where(ok, -np.inf, error - allowed_error(result.analytic, tol)).reshape(-1)))
            where = tuple(int(i) for i in np.unravel_index(flat, np.shape(low))) if np.ndim(low) else ()
            result.precision = (f"float32 gradient off the float64 one at {list(where)}: "
                                f"{low.reshape(-1)[flat]:.6g} vs {result.analytic.reshape(-1)[flat]:.6g} "
                                f"(beyond atol {tol.atol:g}, rtol {tol.rtol:g})")
            result.status = Status.FAIL
            result.message = (result.message + "; " if result.message else "") + result.precision
        return result

    @property
    def differentiable_reach(self) -> list[bool]:
        """Nodes with a path to the output that crosses no non-differentiable argument (labels, ids, conditions)."""
        if not hasattr(self, "_differentiable_reach"):
            reach = [False] * len(self.graph.nodes)
            reach[self.graph.output] = True
            for node in reversed(self.graph.nodes[: self.graph.output + 1]):
                if reach[node.index] and node.kind == "op":
                    for position, arg in enumerate(node.args):
                        declared = ((node.index, position) in self.backward.declared_none
                                    and (node.index, position) not in self.forgotten)
                        if position not in node.op_info.integer_args and not declared:
                            reach[arg] = True
            self._differentiable_reach = reach
        return self._differentiable_reach

    def small(self, node: Node) -> bool:
        size = int(np.size(self.reference.values[node.index]))
        return size <= self.options.full_limit and size * self.evaluator.copy_floats(node.index) <= self.options.full_budget

    def why_skipped(self, node: Node) -> str | None:
        """skip_reason of node's reference value, taken once per node (every stage of the comparison asks)."""
        if node.index not in self._skip_reasons:
            self._skip_reasons[node.index] = self.skip_reason(node, self.reference.values[node.index])
        return self._skip_reasons[node.index]

    def skip_reason(self, node: Node, value) -> str | None:
        if node.kind == "constant":
            return "a constant"
        if not node.check:
            return "check: false"
        if np.asarray(value).dtype.kind != "f":
            return f"{np.asarray(value).dtype} data has no gradient"
        if node.kind == "input" and not node.requires_grad:
            return "data (requires_grad: false)"
        if not self.graph.reaches_output[node.index]:
            return f"does not reach the output '{self.spec.output}'"
        if not self.differentiable_reach[node.index]:
            return "reaches the output only as non-differentiable data (labels, ids, a condition or a mask)"
        return None

    def uses_probes(self, node: Node) -> bool:
        return self.options.mode == "fast" or (self.options.mode == "auto" and not self.small(node))

    def probed(self, node: Node) -> bool:
        """Whether compare_node checks this node by probes (before they are drawn)."""
        value = self.reference.values[node.index]
        return (self.why_skipped(node) is None and np.size(value) > 0 and node.index in self.globally_checked
                and self.uses_probes(node))

    def checked_in_full(self, node: Node) -> bool:
        """Whether compare_node checks this node's every element (full()) without trying probes first."""
        value = self.reference.values[node.index]
        # the budget's choice first: uses_probes sizes the node's downstream, O(nodes) per node, so asking it of
        # every node made a long chain quadratic (72 s instead of 4 for 9000 sin nodes)
        return (self.why_skipped(node) is None and np.size(value) > 0
                and (node.index in self.globally_checked or self.behind_local_kink(node))
                and not self.uses_probes(node))

    def plan_gradients(self, nodes: list[Node]) -> None:
        """The numeric gradients full() will judge, of the nodes whose first level of stencil copies fits one
        sweep, in one step search over all their elements (JointDifferentiator: each level a sweep downstream
        for as many of them as fit one, where node by node each level costs a sweep per node).  Larger nodes
        join that search too (each level's copies of one still go down on their own, in batches: the search's
        per-level arithmetic is shared, not its sweeps), unless a branch decision downstream is watched: those
        are taken on their own."""
        groups: dict[tuple[str, float], list[NodeDifferentiator]] = {}
        for node in nodes:
            differ = self.differentiator(node)
            if differ.method not in STENCILS:
                continue
            # the first level's copies (at most 3 stencil points per element for central) along the downstream
            cost = 2 * len(STENCILS[differ.method]) * differ.x.size * self.evaluator.copy_floats(node.index)
            if cost > self.evaluator.max_change_floats and self.watch.watches(node.index):
                continue
            groups.setdefault((differ.method, differ.base), []).append(differ)
        for differs in groups.values():
            resolutions = [self.gradient_resolution(differ, self.tolerance(self.graph.nodes[differ.index]))
                           for differ in differs]
            settled = self.settled_at_ties(differs)
            enough = np.concatenate([settled[differ.index] for differ in differs])
            estimates = JointDifferentiator(differs).gradients(resolutions, enough)
            self._gradients.update({differ.index: found for differ, found in zip(differs, estimates, strict=True)})

    def settled_at_ties(self, differs: list[NodeDifferentiator]) -> dict[int, np.ndarray]:
        """The error each element's step search may stop at (error_balanced's ``enough``), per node: 0 (search on), except
        at a tie -- an element whose stencil changes a branch decision at its first step and still at the
        shortest step the search can reach (or the shortest that moves the element at all) -- whose kink
        verdict its one-sided slopes settle (KINK or FAIL): there every stencil straddles the kink, so the
        shorter steps never resolve its truncation (which stays at the jump between the slopes) and only cost
        a pass each; they would move the estimate by less than that truncation, its error bound, and the
        verdict is the slopes' either way.  Central differences only: their first step is the one the kink
        verdict takes its slopes at."""
        offsets = self.stencil_offsets("central")
        enough = {differ.index: np.zeros(differ.x.size) for differ in differs}
        watched = [differ for differ in differs if differ.method == "central" and self.watch.watches(differ.index)]
        # the steps full() watches where the search keeps its first level: the shorter of that level's step and
        # the scheme's first step
        firsts = {differ.index: np.minimum(power_of_two(differ.first_steps()), differ.base * differ.scale.reshape(-1))
                  for differ in watched}
        flips = self.watch.element_flips_together(firsts, offsets)
        self._first_flips.update({index: (firsts[index], flips[index]) for index in firsts})
        crossing = {index: np.flatnonzero(found) for index, found in flips.items() if found.any()}
        # ... and still at the search's shortest step, or the shortest that moves the element (x + h == x below it)
        shortest = {differ.index: np.maximum(firsts[differ.index] / STEP_SHRINK ** (MAX_STEP_LEVELS - 1),
                                             2 * np.spacing(np.abs(differ.x.reshape(-1))))
                    for differ in watched if differ.index in crossing}
        still = self.watch.element_flips_together(shortest, offsets, crossing)
        for differ in watched:
            if differ.index not in crossing:
                continue
            ties = crossing[differ.index][still[differ.index] > 0]
            node = self.graph.nodes[differ.index]
            flat_a, tol = self.analytic_of(node).reshape(-1), self.tolerance(node)
            # the step kink_verdict takes its slopes at
            steps = np.maximum(firsts[differ.index][ties], BASE_STEP["central"] * differ.scale.reshape(-1)[ties])
            found_slopes = differ.branch_slopes_at(ties, steps)
            self._tie_slopes[differ.index] = dict(zip(ties.tolist(), found_slopes, strict=True))
            for flat, found in zip(ties.tolist(), found_slopes, strict=True):
                status, _ = self.kink_verdict(differ, flat, float(flat_a[flat]), tol, firsts[differ.index][flat],
                                              compound=flips[differ.index][flat] > 1, found=found)
                if status in (Status.KINK, Status.FAIL):  # any finite bound settles: the search stops after one level
                    enough[differ.index][flat] = np.finfo(np.float64).max
        return enough

    def flips_at(self, differ: NodeDifferentiator, steps: np.ndarray) -> np.ndarray:
        """BranchWatch.element_flips at these steps (the full check's offsets), reusing settled_at_ties' count
        wherever the steps are the ones it took."""
        offsets = self.stencil_offsets(differ.method)
        if differ.index not in self._first_flips:
            return self.watch.element_flips(differ.index, steps, offsets)
        first, flips = self._first_flips.pop(differ.index)
        flips = flips.copy()
        moved = np.flatnonzero(steps != first)
        if moved.size:
            flips[moved] = self.watch.element_flips(differ.index, steps, offsets, elements=moved)
        return flips

    @staticmethod
    def gradient_resolution(differ: NodeDifferentiator, tol: Tolerance) -> tuple[float, float] | None:
        # small nodes search every element's step down to the float64 floor; in large ones an element stops once
        # its bound settles the verdict (the extra levels cost a pass over the node each)
        return None if differ.x.size <= FLOOR_SEARCH_ELEMENTS else (tol.atol, tol.rtol)

    def differentiator(self, node: Node) -> NodeDifferentiator:
        if node.index in self._differentiators:
            return self._differentiators[node.index]
        method = self.method
        if method == "complex-step":
            blocker = self.evaluator.complex_safe(node.index)
            if blocker is not None:
                # the most accurate real stencil: complex-step was asked for its accuracy
                method = "richardson"
                note = f"complex-step cannot pass through {blocker}: Richardson extrapolation used behind it"
                if note not in self.notes:
                    self.notes.append(note)
        self._differentiators[node.index] = NodeDifferentiator(self.evaluator, node.index, method, self.eps)
        return self._differentiators[node.index]

    # ---------------------------------------------------------------------------------- full check
    def full(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance):
        """Every element against its finite difference; returns the outcome, the numeric reference used and
        its error bounds."""
        estimate = self._gradients.pop(node.index, None)  # taken with other nodes' by plan_gradients, or now
        if estimate is None:
            estimate = differ.gradient(self.gradient_resolution(differ, tol))
        numeric = estimate.values.astype(np.float64).reshape(-1)
        errors = np.asarray(estimate.error_bound, dtype=np.float64).copy()
        flat_a = analytic.reshape(-1)
        first = classify(flat_a, numeric, tol, errors)
        failing, inconclusive = first.failing.copy(), first.inconclusive.copy()
        kinks = np.zeros(flat_a.size, dtype=bool)
        slopes: dict[int, Slopes] = {}
        # branches are watched at the scheme's first step, or the chosen one where shorter: a step the error
        # estimate lengthened may reach a decision a shorter one does not (its truncation estimate covers it)
        if self.watch.watches(node.index):  # (with no op with branches downstream no stencil changes a decision)
            first_steps = differ.base * differ.scale.reshape(-1)
            watched = np.minimum(self.stencil_steps(differ, estimate.steps), self.stencil_steps(differ, first_steps))
            pre_watched = self._first_flips.get(node.index)
            flips = self.flips_at(differ, watched)
            # a tie's slopes, taken where full() watches the element now (else kink_verdict takes them at its step)
            tie_slopes = {flat: found for flat, found in self._tie_slopes.pop(node.index, {}).items()
                          if pre_watched is not None and watched[flat] == pre_watched[0][flat]}
            for flat in np.flatnonzero(flips):
                status, found = self.kink_verdict(differ, int(flat), float(flat_a[flat]), tol, watched[flat],
                                                  compound=flips[flat] > 1, found=tie_slopes.get(int(flat)))
                if status is not None:
                    slopes[int(flat)] = found
                    failing[flat], inconclusive[flat], kinks[flat] = status == Status.FAIL, False, status == Status.KINK
        judged_at_kink = np.zeros(flat_a.size, dtype=bool)
        judged_at_kink[list(slopes)] = True
        second = np.flatnonzero((failing | inconclusive) & ~kinks & ~judged_at_kink)
        if self.undeclared(node):
            # the first comparison passed these: a kink no op declares can hide behind a central difference
            tested = np.flatnonzero(~(failing | inconclusive | kinks | judged_at_kink)
                                    & central_candidates(differ, numeric, errors, tol))
            steps = kink_steps(differ, tested, self.stencil_steps(differ, estimate.steps)[tested])
            for k, at_undeclared in undeclared_kinks(differ, tested, steps, tol).items():
                element = int(tested[k])
                slopes[element] = at_undeclared
                kinks[element] = bool(at_kink(flat_a[element], at_undeclared, tol))
                failing[element] = not kinks[element]
                self.undeclared_found[node.index] = self.undeclared_found.get(node.index, 0) + 1
        if second.size:
            statuses, numeric[second], errors[second], found_slopes = self.second_looks(
                differ, second, flat_a[second], tol, numeric[second], errors[second])
            failing[second], inconclusive[second] = statuses == Status.FAIL, statuses == Status.INCONCLUSIVE
            kinks[second] = statuses == Status.KINK
            slopes.update({int(second[k]): found for k, found in found_slopes.items()})
        found = outcome(analytic, numeric.reshape(analytic.shape), failing, kinks, tol, analytic.shape,
                        inconclusive=inconclusive, numeric_error=errors, slopes=slopes)
        return found, numeric.reshape(analytic.shape), errors.reshape(analytic.shape)

    @staticmethod
    def stencil_offsets(method: str) -> tuple[float, ...]:
        if method in STENCILS:
            return tuple(float(offset) for offset, _ in STENCILS[method] if offset != 0)
        return (1.0, -1.0)  # Richardson's central differences; complex-step is watched at the central step

    @staticmethod
    def stencil_steps(differ: NodeDifferentiator, steps: np.ndarray) -> np.ndarray:
        if differ.method == "complex-step":  # an imaginary step never crosses a real branch
            return BASE_STEP["central"] * differ.scale.reshape(-1)
        return np.asarray(steps, dtype=np.float64)

    def kink_verdict(self, differ: NodeDifferentiator, flat: int, analytic: float, tol: Tolerance, step: float,
                     compound: bool = False, found: Slopes | None = None):
        """An element whose stencil changes a branch decision: KINK if the analytic value is a one-sided slope
        or lies between them, FAIL if it is neither; where the slopes agree (no kink the objective sees), PASS if
        the analytic value is that slope, else None (the element's own estimate decides).
        At a compound kink (several outputs' decisions change at once) the one-sided slopes along the element do
        not bound the valid choices of the ops' rules, so a finite analytic value is a KINK.  ``found``: the
        slopes branch_slopes gives at this element's central step, already taken (settled_at_ties)."""
        if found is None:
            # a second-order estimate balances round-off at the central step, so no shorter step is taken
            found = differ.branch_slopes(flat, max(step, BASE_STEP["central"] * float(differ.scale.reshape(-1)[flat])))
        right, left = float(found.right), float(found.left)
        if not (np.isfinite(right) and np.isfinite(left) and np.isfinite(analytic)):
            return (Status.FAIL, found) if not np.isfinite(analytic) else (None, found)
        bound = tol.atol + tol.rtol * max(abs(right), abs(left))
        low, high = min(right, left), max(right, left)
        if high - low <= bound:  # differentiable across the branch (a smooth join, huber's boundary)
            agrees_with_both = abs(analytic - right) <= bound and abs(analytic - left) <= bound
            return (Status.PASS if agrees_with_both else None), found
        inside = compound or low - bound <= analytic <= high + bound
        return (Status.KINK if inside else Status.FAIL), found

    def persistent_slopes(self, differ: NodeDifferentiator, flat: int, step: float) -> Slopes | None:
        """One-sided slopes that stay apart when the step shrinks fourfold (a kink the op does not declare),
        else None: the slopes of a smooth function close in with the step."""
        coarse = differ.one_sided(flat, step)
        fine = differ.one_sided(flat, step / 4)
        if abs(fine.right - fine.left) >= KINK_PERSISTENCE * abs(coarse.right - coarse.left):
            return fine
        return None

    def undeclared_ops_of(self, differ: NodeDifferentiator) -> list[str]:
        return self.undeclared(self.graph.nodes[differ.index])

    def second_look(self, differ: NodeDifferentiator, flat: int, analytic: float, tol: Tolerance,
                    first_value: float, first_error: float):
        """second_looks() for one element: (status, value, error bound, slopes or None)."""
        statuses, values, errors, slopes = self.second_looks(differ, np.array([flat]), np.array([analytic]), tol,
                                                             np.array([first_value]), np.array([first_error]))
        return statuses[0], float(values[0]), float(errors[0]), slopes.get(0)

    def second_looks(self, differ: NodeDifferentiator, flats: np.ndarray, analytic: np.ndarray, tol: Tolerance,
                     first_values: np.ndarray, first_errors: np.ndarray):
        """The verdicts on elements the first estimate could not pass, at the most accurate estimate there is
        (NodeDifferentiator.most_accurate, every element in the same vectorised passes); it replaces the first
        only where its error bound is smaller.  Returns the statuses (an object array), the values and bounds
        used, and the one-sided slopes of the elements found at a kink no op declares (by position in flats)."""
        analytic = np.asarray(analytic, dtype=np.float64)
        values = np.asarray(first_values, dtype=np.float64).copy()
        errors = np.asarray(first_errors, dtype=np.float64).copy()
        statuses = np.full(flats.size, Status.FAIL, dtype=object)
        slopes: dict[int, Slopes] = {}
        judged = np.flatnonzero(np.isfinite(analytic))  # a NaN analytic value fails whatever the reference
        if not judged.size:
            return statuses, values, errors, slopes
        first = values[judged]
        enough = 0.01 * (tol.atol + tol.rtol * np.abs(np.where(np.isfinite(first), first, 0.0)))
        better = differ.most_accurate(flats[judged], enough)
        replace_first = np.isfinite(better.values) & (~np.isfinite(first) | (better.error_bound < errors[judged]))
        values[judged] = np.where(replace_first, better.values, first)
        errors[judged] = np.where(replace_first, better.error_bound, errors[judged])
        central_steps = BASE_STEP["central"] * differ.scale.reshape(-1)[flats[judged]]
        # a real step to watch the slopes at: the estimate's own, unless it was an imaginary (complex) one
        real_steps = np.where(np.isfinite(better.steps) & (better.steps > 1e-3 * central_steps), better.steps, central_steps)
        undeclared = (undeclared_kinks(differ, flats[judged], np.minimum(real_steps, central_steps), tol)
                      if self.undeclared_ops_of(differ) else {})
        for position, (k, step) in enumerate(zip(judged, real_steps, strict=True)):
            status = element_status(float(analytic[k]), float(values[k]), tol, float(errors[k]))
            if position in undeclared:  # whatever the values: the element is judged against its slopes
                slopes[int(k)] = undeclared[position]
                status = Status.KINK if at_kink(float(analytic[k]), undeclared[position], tol) else Status.FAIL
                self.undeclared_found[differ.index] = self.undeclared_found.get(differ.index, 0) + 1
            elif status == Status.FAIL:
                found = self.persistent_slopes(differ, int(flats[k]), float(step))
                if found is not None and element_status(float(analytic[k]), float(values[k]), tol, float(errors[k]),
                                                        slopes=found) == Status.KINK:
                    status, slopes[int(k)] = Status.KINK, found
            statuses[k] = status
        return statuses, values, errors, slopes

    # ---------------------------------------------------------------------------------- probes
    def probe(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance):
        """Random directional probes, each judged against the error estimate of its own directional derivative.

        A direction is d_i = ±u_i·scale_i, with random signs and u_i uniform on [1, 2].  A probe's gap is
        Σ d_i e_i, for the errors e_i = analytic_i - true_i, up to its estimate's error bound T.  Each probe
        must resolve one element's tolerance, 2T < min_i scale_i·tol_i: then a single element j beyond its
        tolerance gives a gap of at least |d_j e_j| - T > scale_j tol_j - T > T, since |d_j| >= scale_j, and
        is flagged.  Several wrong elements could cancel; but given every other draw, d_j e_j is spread
        uniformly (u_j) over a length scale_j |e_j|, so the sum lands within 2T of zero with probability at
        most 4T / (scale_j |e_j|) < 4T / min_i scale_i·tol_i.  Probes are drawn until the product of those
        bounds is below MISSED_ERRORS_CHANCE (one usually suffices), at most options.probes of them; else
        every element is checked.

        Elements whose own stencil changes a branch decision are judged one by one and left out of the
        directions.  A probe that disagrees is bisected down to one element, which is judged; returns
        (None, None) where the probes cannot settle the node (no step resolves the tolerance, every step
        crosses a branch decision, or the element found agrees): the caller then checks every element.
        """
        plan = self._probe_plans.pop(node.index, None) or self.probe_plan(node, differ, analytic, tol)
        flat_a = analytic.reshape(-1)
        if plan.resolution is None:
            return None, None  # a NaN gradient or an element that must be exact: judged element by element
        missed = 1.0 if np.isfinite(plan.resolution) else 0.0  # infinite: every element is judged one by one
        count, worst_gap, step, direction, first = 0, 0.0, FIRST_PROBE_STEP, plan.direction, plan.first_estimate
        large = not self.small(node)  # checking every element is beyond auto mode's budget
        unresolved = 0.0  # the largest bound of a probe that resolves only the tolerances summed
        first_probe: tuple[np.ndarray, float] | None = None  # (direction, step) of the first probe taken
        while missed > MISSED_ERRORS_CHANCE and count < self.options.probes:
            if count:
                direction = plan.draw()
            verdict: ProbeVerdict | None
            if not count and plan.joint is not None:
                verdict = plan.joint  # agreed: a wrong element of this node could only hide by cancelling
            else:
                verdict = self.directional_verdict(node, differ, flat_a, direction, step, plan.resolution, tol, first)
            first = None
            if verdict is None or not (verdict.resolved or large):
                return None, None
            count += 1
            first_probe = first_probe or (direction, verdict.step)
            unresolved = max(unresolved, 0.0 if verdict.resolved else verdict.bound)
            worst_gap = max(worst_gap, abs(verdict.gap))
            if abs(verdict.gap) > verdict.bound:
                flat = self.localise(differ, flat_a, direction, verdict)
                found = self.judge_elements(differ, flat_a, [flat], tol, analytic.shape)
                if found.status != Status.FAIL:  # the element agrees (or cannot tell): every element is judged
                    return None, None
                return found, (f"found by directional probes (a probe disagreed by {abs(verdict.gap):.3g}, "
                               f"its error bound {verdict.bound:.3g})")
            missed *= min(1.0, 4 * verdict.bound / plan.resolution)
            step = verdict.next_step
        if missed > MISSED_ERRORS_CHANCE and not large:
            return None, None
        if first_probe is not None and self.undeclared(node) and directional_kink(differ, *first_probe, plan.resolution):
            # a probe through an element at a kink no op declares measures the average of its slopes: a kink
            # question for every element (the element test finds which)
            return None, None
        singles = [int(flat) for flat in np.flatnonzero(plan.at_kink)] if plan.kinks else []
        probes = f"checked by {count} random directional probe{'s' if count != 1 else ''}"
        if unresolved:
            checked = (f"{probes} that cannot resolve one element's tolerance (their error bound {unresolved:.3g} is "
                       f"above half of it, {plan.resolution / 2:.3g} in the probe's units: the round-off of a large "
                       "objective): an error within twice that bound in a single element may pass; --mode full "
                       "judges every element")
        else:
            checked = (f"{probes} (each resolves one element's tolerance, so a single wrong element cannot pass; "
                       f"errors cancelling across elements would pass with probability below {missed:.1g})")
        if plan.joint is not None:
            others = f"{plan.joint_with} other node{'s' if plan.joint_with != 1 else ''}"
            checked += (f"; the first probe moved this node and {others} at once, its derivative the sum of theirs "
                        "(a wrong element in any of them shows as in a probe of its node alone)")
        if singles:
            found = self.judge_elements(differ, flat_a, singles, tol, analytic.shape)
            checked = (checked + " and " if count else "") + f"{len(singles)} element(s) at branch decisions one by one"
            if found.status != Status.PASS:
                return found, checked
        return Outcome(max_abs_error=float(worst_gap)), checked

    def directional_verdict(self, node: Node, differ: NodeDifferentiator, flat_a: np.ndarray, direction: np.ndarray,
                            step: float, resolution: float, tol: Tolerance,
                            first: DirectionalEstimate | None = None) -> ProbeVerdict | None:
        """One probe along direction: the first step (from step down) whose stencil crosses no branch decision,
        the estimate there (or ``first``, taken at step and known to cross none), a second estimate at the step
        balancing its truncation and round-off if the first cannot resolve one element's tolerance (bound above
        resolution / 2), then the adaptive step sequence.  None where the estimate is not finite, where every step
        crosses a branch decision (a kink question, not a failure), or where even the tolerances of all the
        elements summed are not resolved; a verdict that resolves only that sum says so (``resolved``)."""
        shaped = direction.reshape(differ.shape)
        if first is None:
            for _ in range(PROBE_STEP_TRIES):
                if not self.crosses_branch(node, shaped, step):
                    break
                step /= PROBE_STEP_SHRINK
            else:
                return None
        estimate = first or differ.directional_at(shaped[None], step)[0]
        balanced = min(estimate.balanced_step(), LONGEST_PROBE_STEP)
        if not self.resolves(estimate, resolution) and not step / 2 <= balanced <= 2 * step:
            if not self.crosses_branch(node, shaped, balanced):
                estimate = min(estimate, differ.directional_at(shaped[None], balanced)[0], key=self.error_or_inf)
        if not self.resolves(estimate, resolution):
            adaptive = differ.directional_adaptive(shaped, enough=0.01 * resolution)
            s = adaptive.step
            if not self.watch.direction_flips(node.index, shaped, np.array([s, -s, s / 4, -s / 4])):
                estimate = min(estimate, adaptive, key=self.error_or_inf)
        analytic_dir = float(np.dot(flat_a, direction))
        if not (np.isfinite(estimate.value) and np.isfinite(analytic_dir)):
            return None
        resolved = self.resolves(estimate, resolution)
        # if every element were within its tolerance, the gap would be within this (triangle inequality)
        summed = float(np.dot(np.abs(direction), tol.atol + tol.rtol * np.abs(flat_a)))
        if not (resolved or estimate.error_bound <= 0.01 * summed):
            return None
        # the analytic dot product's own round-off: a few ulps of the sum of its absolute terms
        roundoff = 4 * MACHINE_EPS * np.sqrt(direction.size) * float(np.dot(np.abs(flat_a), np.abs(direction)))
        return ProbeVerdict(analytic_dir - estimate.value, estimate.error_bound + roundoff, estimate.step,
                            min(estimate.balanced_step(), LONGEST_PROBE_STEP), resolved)

    def crosses_branch(self, node: Node, direction: np.ndarray, step: float) -> bool:
        return self.watch.direction_flips(node.index, direction, step * np.array(PROBE_OFFSETS))

    def probe_plan(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance,
                   first: bool = True) -> ProbePlan:
        """What a node's probes need before the first is taken: its elements at branch decisions (left out of
        the directions), one element's tolerance in direction units, the first direction (``first``: drawn
        from the node's stream, else left to the caller)."""
        flat_a = analytic.reshape(-1)
        scale = differ.scale.reshape(-1)
        allowed = np.abs(flat_a).astype(np.float64, copy=False)  # scale·(atol + rtol·|a|), in one array
        allowed *= tol.rtol
        allowed += tol.atol
        allowed *= scale
        if self.watch.watches(node.index):
            at_kink = self.watch.element_flips(node.index, BASE_STEP["central"] * scale) > 0
            allowed = allowed[~at_kink]
        else:
            at_kink = np.zeros(scale.size, dtype=bool)
        smallest = float(allowed.min()) if allowed.size else np.inf
        resolution = smallest if np.isfinite(flat_a).all() and smallest > 0 else None
        plan = ProbePlan(stable_seed(self.spec.seed, "probe", node.name), scale, at_kink, resolution)
        if first:
            plan.direction = plan.draw()
        return plan

    def plan_probes(self, nodes: list[Node]) -> None:
        """The plans of the nodes to be probed, and their first probes at FIRST_PROBE_STEP: one probe of every node
        with no branch decision downstream moved at once (joint_probe), and where that is not possible or does
        not agree, each node's own first probe, all in one sweep downstream (directional_estimates), where the
        stencil crosses no branch."""
        planned: list[tuple[Node, NodeDifferentiator, ProbePlan]] = []
        plans = []
        for node in nodes:
            differ = self.differentiator(node)
            plan = self.probe_plan(node, differ, self.analytic_of(node), self.tolerance(node), first=False)
            self._probe_plans[node.index] = plan
            plans.append(plan)
            if plan.resolution is not None and np.isfinite(plan.resolution):
                planned.append((node, differ, plan))
        # every node's first direction from one call of the spec's probe stream (a generator per node costs more
        # than the draws of a small node); the directions after it come from the node's own stream
        uniform = np.random.default_rng(stable_seed(self.spec.seed, "first probes")).random(
            sum(plan.scale.size for plan in plans))
        start = 0
        for plan in plans:
            plan.direction = plan.draw(uniform[start: start + plan.scale.size])
            start += plan.scale.size
        self.joint_probe([entry for entry in planned if not self.watch.watches(entry[0].index)])
        swept = [(node, differ, plan) for node, differ, plan in planned if plan.joint is None
                 and not self.crosses_branch(node, plan.direction.reshape(differ.shape), FIRST_PROBE_STEP)]
        estimates = directional_estimates([differ for _, differ, _ in swept],
                                          [plan.direction[None] for _, _, plan in swept], FIRST_PROBE_STEP)
        for (_, _, plan), (estimate,) in zip(swept, estimates, strict=True):
            plan.first_estimate = estimate

    def joint_probe(self, planned: list[tuple[Node, NodeDifferentiator, ProbePlan]]) -> None:
        """One probe of several nodes at once: each node's value moved along its own first direction, added to
        what the moves upstream of it give it.  The adjoint of a node is the objective's derivative with respect
        to such an addition, so the joint directional derivative is the sum of the nodes' own, and its gap
        the sum of theirs: sum_j d_j e_j over every element of every node.  probe()'s argument then holds for
        the elements of all the nodes as for one node's: a probe whose error bound T resolves every element's
        tolerance (2T below the smallest resolution) shows a single wrong element anywhere, and a wrong element
        of node j cancels against all the other errors with probability below 4T / (node j's resolution).  A
        joint probe that agrees is each node's first probe (plan.joint); one that disagrees, or cannot resolve,
        leaves each node to its own first probe, which tells which is wrong.  Only nodes with no branch decision
        downstream take part (a joint move's crossings are not watched)."""
        if len(planned) < 2:
            return
        differs = [differ for _, differ, _ in planned]
        floats = len(PROBE_OFFSETS) * sum(int(np.size(self.reference.values[j]))
                                          for j in range(min(d.index for d in differs), self.graph.output + 1))
        if floats > batch_floats(self.options.memory_budget):
            return
        estimate = joint_directional_estimate(differs, [plan.direction for _, _, plan in planned], FIRST_PROBE_STEP)
        resolution = min(plan.resolution for _, _, plan in planned if plan.resolution is not None)
        if estimate is None or not self.resolves(estimate, resolution):
            return
        flat_as = [self.analytic_of(node).reshape(-1) for node, _, _ in planned]
        analytic_dir = sum(float(np.dot(flat_a, plan.direction)) for flat_a, (_, _, plan) in zip(flat_as, planned, strict=True))
        size = sum(flat_a.size for flat_a in flat_as)
        # the analytic dot products' round-off: a few ulps of the sum of their absolute terms
        roundoff = 4 * MACHINE_EPS * np.sqrt(size) * sum(float(np.dot(np.abs(flat_a), np.abs(plan.direction)))
                                                         for flat_a, (_, _, plan) in zip(flat_as, planned, strict=True))
        bound = estimate.error_bound + roundoff
        gap = analytic_dir - estimate.value
        if not (np.isfinite(gap) and abs(gap) <= bound):
            return
        verdict = ProbeVerdict(gap, bound, estimate.step, min(estimate.balanced_step(), LONGEST_PROBE_STEP), True)
        for _, _, plan in planned:
            plan.joint, plan.joint_with = verdict, len(planned) - 1

    @staticmethod
    def resolves(estimate: DirectionalEstimate, resolution: float) -> bool:
        return bool(np.isfinite(estimate.value) and 2 * estimate.error_bound < resolution)

    @staticmethod
    def error_or_inf(estimate: DirectionalEstimate) -> float:
        return estimate.error_bound if np.isfinite(estimate.value) else np.inf

    def localise(self, differ: NodeDifferentiator, flat_a: np.ndarray, direction: np.ndarray,
                 verdict: ProbeVerdict) -> int:
        """Bisects a disagreeing probe down to one element: each level estimates the directional derivative
        along one half of the direction (at the probe's step); the other half's follows by linearity (the
        two add up to the whole), its error bound the sum of both.  The half whose gap is further beyond its
        bound holds the element."""
        indices = np.flatnonzero(direction)
        gap, bound = verdict.gap, verdict.bound
        while indices.size > 1:
            first, second = np.array_split(indices, 2)
            masked = np.zeros(differ.x.size)
            masked[first] = direction[first]
            estimate = differ.directional_at(masked[None], verdict.step)[0]
            terms = flat_a[first] * direction[first]
            first_gap = float(np.sum(terms)) - estimate.value
            first_bound = estimate.error_bound + 4 * MACHINE_EPS * np.sqrt(first.size) * float(np.sum(np.abs(terms)))
            halves = [(first, first_gap, first_bound), (second, gap - first_gap, bound + first_bound)]
            indices, gap, bound = max(halves, key=lambda half: abs(half[1]) / half[2] if half[2] > 0 else np.inf)
        return int(indices[0])

    def judge_elements(self, differ: NodeDifferentiator, flat_a: np.ndarray, flats: list[int], tol: Tolerance,
                       shape) -> Outcome:
        """The full verdict (first estimate, second look, kinks) on some elements of a probed node."""
        statuses, numeric, errors, slopes = [], [], [], {}
        for k, flat in enumerate(flats):
            a = float(flat_a[flat])
            first = differ.element(flat)
            status, value, error = element_status(a, first.value, tol, first.error_bound), first.value, first.error_bound
            step = self.stencil_steps(differ, np.array([first.step]))[0]
            changed = self.watch.element_flips(differ.index, np.full(differ.x.size, step), elements=[flat])[0]
            if changed:
                verdict, found = self.kink_verdict(differ, flat, a, tol, step, compound=changed > 1)
                if verdict is not None:
                    status, slopes[k] = verdict, found
            if status in (Status.FAIL, Status.INCONCLUSIVE) and k not in slopes:
                status, value, error, found = self.second_look(differ, flat, a, tol, value, error)
                if found is not None:
                    slopes[k] = found
            statuses.append(status)
            numeric.append(value)
            errors.append(error)
        status_array = np.array(statuses, dtype=object)
        return outcome([flat_a[f] for f in flats], numeric, status_array == Status.FAIL, status_array == Status.KINK, tol,
                       shape, flats, inconclusive=status_array == Status.INCONCLUSIVE, numeric_error=errors, slopes=slopes)
