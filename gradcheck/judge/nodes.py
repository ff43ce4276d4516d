"""Analytic vs numeric, node by node: tolerances, the full element-wise check, directional probes.

Every element is judged by ``verdict``.  Every element whose first comparison fails, or whose first
estimate is too noisy to resolve the tolerance, gets a second look at the most accurate estimate float64
allows (complex-step where the ops downstream are analytic, else an error-balancing step sequence), which
replaces the first only when its error bound is smaller.  Kinks come from the ops' branch decisions
(``kinks.BranchWatch``): an element whose stencil changes one is judged against its one-sided slopes; for
ops that declare no branches, slopes that stay apart as the step shrinks mark a kink too.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..engine import BackwardPass, ForwardPass
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, Evaluator, NodeDifferentiator, Slopes
from ..numeric.evaluator import MAX_CHANGE_FLOATS
from ..numeric.stencils import BASE_STEP, STENCILS
from ..results import NodeResult, Outcome, Status
from ..sizing import batch_floats
from ..spec import Tolerance, stable_seed
from .kinks import BranchWatch
from .local import LocalChecks, local_fault
from .options import CheckOptions
from .verdict import agrees, allowed_error, classify, element_status, outcome

FIRST_PROBE_STEP = 1e-2  # relative to each element's scale (the directions are scaled per element)
FLOOR_SEARCH_ELEMENTS = 64  # nodes up to this size get the most accurate estimate float64 allows everywhere
KINK_PERSISTENCE = 0.5  # at a kink the one-sided slopes stay apart as the step shrinks; smooth slopes close in


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
            return f"its vjp is faulty: {self.backward.faults[node.index]}"
        source = self.fault_origin.get(node.index)
        if source is None:
            return None
        culprit = self.graph.nodes[source]
        return (f"no gradient to check: the vjp of op '{culprit.op_name}' at node '{culprit.name}' is faulty "
                f"({self.backward.faults[source]})")

    # ---------------------------------------------------------------------------------- per node
    def compare_all(self) -> list[NodeResult]:
        # constants inside expressions are not nodes; a named constant (`c: 2.5`) is, with no gradient to check
        compared = [node for node in self.graph.nodes if node.kind != "constant" or node.is_named]
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
            checkable = [node for node in self.graph.nodes if self.skip_reason(node, self.reference.values[node.index]) is None]
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

    def vouched(self, node: Node, described: NodeResult, analytic: np.ndarray) -> NodeResult:
        """A node beyond the global budget: its adjoint is the sum of what its consumers' vjps pass it, so it is
        right when every vjp between it and the output passes its local check (an induction from the output)."""
        edge = self.first_faulty_edge[node.index]
        if edge is None:
            message = ("vouched for by the local checks of every op between it and the output (auto mode's global "
                       "budget went to the inputs and the nodes nearest the output; --mode full perturbs every node)")
            return replace(described, status=Status.PASS, analytic=analytic, checked="local", message=message)
        consumer, position, message = edge
        user = self.graph.nodes[consumer]
        return replace(described, status=Status.FAIL, failing=int(np.size(analytic)), analytic=analytic, checked="local",
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
        described = NodeResult(name=node.name, op=node.op_name, parent=node.parent, shape=tuple(np.shape(value)),
                               atol=tol.atol, rtol=tol.rtol, text=node.text, location=node.location, value=value)
        reason = self.skip_reason(node, value)
        if reason:
            analytic = None
            if np.asarray(value).dtype.kind == "f" and self.backward.adjoints[node.index] is not None:
                analytic = self.analytic_of(node)
            return replace(described, status=Status.SKIP, message=reason, checked="none", analytic=analytic)
        analytic = self.analytic_of(node)
        fault = self.fault_message(node)
        if np.size(value) == 0:
            return replace(described, analytic=analytic, message=fault)
        if node.index not in self.globally_checked:
            return self.vouched(node, described, analytic)
        differ = self.differentiator(node)
        use_probes = self.options.mode == "fast" or (self.options.mode == "auto" and not self.small(node))
        result = None
        if use_probes:
            found, message = self.probe(node, differ, analytic, tol)
            if found is not None:
                result = replace(described, **found.outcome_fields(), analytic=analytic, checked="probes",
                                 message=fault or message)
        if result is None:  # full mode, a small node, or probes that could not settle it
            found, numeric, errors = self.full(node, differ, analytic, tol)
            result = replace(described, **found.outcome_fields(), analytic=analytic, numeric=numeric,
                             numeric_error=errors, checked="full", message=fault or self.unresolved_message(found))
        return self.judge_precision(node, result)

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

    def differentiator(self, node: Node) -> NodeDifferentiator:
        method = self.method
        if method == "complex-step":
            blocker = self.evaluator.complex_safe(node.index)
            if blocker is not None:
                method = "central"
                note = f"complex-step cannot pass through op '{blocker}' (not analytic): central differences used behind it"
                if note not in self.notes:
                    self.notes.append(note)
        return NodeDifferentiator(self.evaluator, node.index, method, self.eps)

    # ---------------------------------------------------------------------------------- full check
    def full(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance):
        """Every element against its finite difference; returns the outcome, the numeric reference used and
        its error bounds."""
        # small nodes search every element's step down to the float64 floor; in large ones an element stops once
        # its bound settles the verdict (the extra levels cost a pass over the node each)
        resolution = None if differ.x.size <= FLOOR_SEARCH_ELEMENTS else (tol.atol, tol.rtol)
        estimate = differ.gradient(resolution)
        numeric = estimate.values.astype(np.float64).reshape(-1)
        errors = np.asarray(estimate.error_bound, dtype=np.float64).copy()
        flat_a = analytic.reshape(-1)
        first = classify(flat_a, numeric, tol, errors)
        failing, inconclusive = first.failing.copy(), first.inconclusive.copy()
        kinks = np.zeros(flat_a.size, dtype=bool)
        slopes: dict[int, Slopes] = {}
        # branches are watched at the scheme's first step, or the chosen one where shorter: a step the error
        # estimate lengthened may reach a decision a shorter one does not (its truncation estimate covers it)
        first_steps = differ.base * differ.scale.reshape(-1)
        watched = np.minimum(self.stencil_steps(differ, estimate.steps), self.stencil_steps(differ, first_steps))
        flips = self.watch.element_flips(node.index, watched, self.stencil_offsets(differ.method))
        for flat in np.flatnonzero(flips):
            status, found = self.kink_verdict(differ, int(flat), float(flat_a[flat]), tol, watched[flat],
                                              compound=flips[flat] > 1)
            if status is not None:
                slopes[int(flat)] = found
                failing[flat], inconclusive[flat], kinks[flat] = status == Status.FAIL, False, status == Status.KINK
        judged_at_kink = np.isin(np.arange(flat_a.size), list(slopes))
        second = np.flatnonzero((failing | inconclusive) & ~kinks & ~judged_at_kink)
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
                     compound: bool = False):
        """An element whose stencil changes a branch decision: KINK if the analytic value is a one-sided slope
        or lies between them, FAIL if it is neither; None where the slopes agree (no kink the objective sees).
        At a compound kink (several outputs' decisions change at once) the one-sided slopes along the element do
        not bound the valid choices of the ops' rules, so a finite analytic value is a KINK."""
        found = differ.one_sided(flat, step)
        right, left = float(found.right), float(found.left)
        if not (np.isfinite(right) and np.isfinite(left) and np.isfinite(analytic)):
            return (Status.FAIL, found) if not np.isfinite(analytic) else (None, found)
        bound = tol.atol + tol.rtol * max(abs(right), abs(left))
        low, high = min(right, left), max(right, left)
        if high - low <= bound:
            return None, found
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
        for k, step in zip(judged, real_steps, strict=True):
            status = element_status(float(analytic[k]), float(values[k]), tol, float(errors[k]))
            if status == Status.FAIL:
                found = self.persistent_slopes(differ, int(flats[k]), float(step))
                if found is not None and element_status(float(analytic[k]), float(values[k]), tol, float(errors[k]),
                                                        slopes=found) == Status.KINK:
                    status, slopes[int(k)] = Status.KINK, found
            statuses[k] = status
        return statuses, values, errors, slopes

    # ---------------------------------------------------------------------------------- probes
    def probe(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance):
        """Random directional probes, each judged against the error estimate of its own directional derivative.

        Elements whose own stencil changes a branch decision are judged one by one and left out of the
        directions.  A probe that disagrees is bisected down to one element, which is judged; returns
        (None, None) where the probes cannot settle the node (an unresolvable probe, a probe crossing a
        branch, a disagreement no single element accounts for): the caller then checks every element.
        """
        rng = np.random.default_rng(stable_seed(self.spec.seed, "probe", node.name))
        flat_a = analytic.reshape(-1)
        steps = BASE_STEP["central"] * differ.scale.reshape(-1)
        at_kink = self.watch.element_flips(node.index, steps) > 0
        singles = [int(flat) for flat in np.flatnonzero(at_kink)]
        worst_gap = 0.0
        for _ in range(self.options.probes):
            direction = rng.choice([-1.0, 1.0], size=differ.x.size) * differ.scale.reshape(-1)
            direction[at_kink] = 0.0
            if not direction.any():
                break
            verdict = self.directional_verdict(node, differ, flat_a, direction, tol)
            if verdict is None:
                return None, None
            gap, bound, step = verdict
            worst_gap = max(worst_gap, gap)
            if gap > bound:
                flat = self.localise(node, differ, flat_a, direction, tol, step)
                if flat is None:
                    return None, None
                found = self.judge_elements(differ, flat_a, [flat], tol, analytic.shape)
                if found.status in (Status.PASS, Status.KINK):
                    return None, None
                return found, f"found by directional probes (a probe disagreed by {gap:.3g}, its error bound {bound:.3g})"
        if singles:
            found = self.judge_elements(differ, flat_a, singles, tol, analytic.shape)
            if found.status != Status.PASS:
                return found, (f"checked by {self.options.probes} random directional probes and {len(singles)} "
                               "element(s) at branch decisions one by one")
        checked = f"checked by {self.options.probes} random directional probes"
        return Outcome(max_abs_error=float(worst_gap)), checked

    def directional_verdict(self, node: Node, differ: NodeDifferentiator, flat_a: np.ndarray,
                            direction: np.ndarray, tol: Tolerance, step: float | None = None):
        """(gap, bound, step) of one probe, or None where it cannot be trusted: its estimate cannot resolve the
        tolerance, or its stencil crosses a branch decision.  Without a step, the step is chosen from the
        error estimate (stencils.adaptive_derivative); bisection reuses the probe's."""
        shaped = direction.reshape(differ.x.shape)
        analytic_dir = float(np.sum(flat_a * direction))
        # if every element were within its tolerance, the directional gap would be within this (triangle inequality)
        allowed = float(np.sum(np.abs(direction) * (tol.atol + tol.rtol * np.abs(flat_a))))
        if step is None:  # one Richardson pair at the usual step first; the step sequence only if it is too rough
            estimate = differ.directional_at(shaped, FIRST_PROBE_STEP)
            if not (np.isfinite(estimate.value) and estimate.error_bound <= 0.01 * allowed):
                estimate = differ.directional_adaptive(shaped, enough=0.01 * allowed)
        else:
            estimate = differ.directional_at(shaped, step)
        if not (np.isfinite(estimate.value) and np.isfinite(analytic_dir)) or estimate.error_bound > allowed:
            return None
        s = estimate.step
        if self.watch.direction_flips(node.index, shaped, (s, -s, s / 4, -s / 4)):
            return None
        # the analytic dot product's own round-off: a few ulps of the sum of its absolute terms
        roundoff = 4 * MACHINE_EPS * np.sqrt(direction.size) * float(np.sum(np.abs(flat_a * direction)))
        bound = 3 * estimate.error_bound + roundoff
        return abs(analytic_dir - estimate.value), bound, s

    def localise(self, node: Node, differ, flat_a, direction, tol: Tolerance, step: float) -> int | None:
        indices = np.flatnonzero(direction)
        while indices.size > 1:
            halves = np.array_split(indices, 2)
            ratios = []
            for half in halves:
                masked = np.zeros(differ.x.size)
                masked[half] = direction[half]
                verdict = self.directional_verdict(node, differ, flat_a, masked, tol, step)
                if verdict is None:
                    return None
                gap, bound, _ = verdict
                ratios.append(gap / bound if bound > 0 else (np.inf if gap > 0 else 0.0))
            indices = halves[int(np.argmax(ratios))]
        return int(indices[0]) if indices.size else None

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
