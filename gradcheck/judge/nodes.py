"""Analytic vs numeric, node by node: tolerances, the full element-wise check, directional probes.

Every element is judged by ``verdict``.  An element that fails the first comparison is re-checked
with a Richardson-extrapolated difference (so round-off or truncation in the first estimate is
not reported as a bug); if it still fails, the one-sided slopes decide whether it is at a kink.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..engine import BackwardPass, ForwardPass
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, Evaluator, NodeDifferentiator
from ..results import NodeResult, Outcome, Status
from ..spec import Tolerance, stable_seed
from .local import local_fault
from .options import CheckOptions
from .verdict import classify, element_status, outcome, relative_error

MAX_REFINED_ELEMENTS = 64


class Comparator:
    def __init__(self, graph: Graph, analytic_fwd: ForwardPass, backward: BackwardPass, reference: ForwardPass,
                 method: str, eps: float | None, options: CheckOptions):
        self.graph = graph
        self.spec = graph.spec
        self.analytic_fwd = analytic_fwd
        self.backward = backward
        self.reference = reference
        self.method = method
        self.eps = eps
        self.options = options
        self.evaluator = Evaluator(graph, reference.values, reference.projection)
        self.notes: list[str] = []

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
                    user = self.graph.nodes[consumer]
                    message = local_fault(self.graph, self.backward, self.reference.values, user, position,
                                          self.tolerance(user))
                    found = (consumer, position, message) if message else faulty[consumer]
                    if found is not None:
                        faulty[node.index] = found
                        break
            self._first_faulty_edge = faulty
        return self._first_faulty_edge

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
        fault = self.backward.faults.get(node.index)
        if np.size(value) == 0:
            return replace(described, analytic=analytic, message=fault)
        if node.index not in self.globally_checked:
            return self.vouched(node, described, analytic)
        differ = self.differentiator(node)
        use_probes = self.options.mode == "fast" or (self.options.mode == "auto" and not self.small(node))
        if use_probes:
            found, message = self.probe(node, differ, analytic, tol, fault)
            return replace(described, **found.outcome_fields(), analytic=analytic, checked="probes", message=message)
        found, numeric = self.full(differ, analytic, tol)
        return replace(described, **found.outcome_fields(), analytic=analytic, numeric=numeric, checked="full",
                       message=fault)

    @property
    def differentiable_reach(self) -> list[bool]:
        """Nodes with a path to the output that crosses no non-differentiable argument (labels, ids, conditions)."""
        if not hasattr(self, "_differentiable_reach"):
            reach = [False] * len(self.graph.nodes)
            reach[self.graph.output] = True
            for node in reversed(self.graph.nodes[: self.graph.output + 1]):
                if reach[node.index] and node.kind == "op":
                    for position, arg in enumerate(node.args):
                        declared = (node.index, position) in self.backward.declared_none
                        if position not in node.op.integer_args and not declared:
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
        return NodeDifferentiator(self.evaluator, node.index, method, self.eps, self.tolerance(node).atol)

    # ---------------------------------------------------------------------------------- full check
    def full(self, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance) -> tuple[Outcome, np.ndarray]:
        """Every element against its finite difference; returns the outcome and the numeric reference used."""
        estimate = differ.gradient()
        numeric = estimate.values.copy()
        flat_a, flat_n = analytic.reshape(-1), numeric.reshape(-1)
        failing, kinks = classify(flat_a, flat_n, tol, estimate.error_bound)
        for flat in np.flatnonzero(failing)[:MAX_REFINED_ELEMENTS]:
            status, better = self.recheck(differ, flat, flat_a[flat], tol, estimate.steps[flat])
            if status == Status.PASS:
                flat_n[flat], failing[flat] = better, False
            elif status == Status.KINK:
                kinks[flat], failing[flat] = True, False
        return outcome(analytic, numeric, failing, kinks, tol, analytic.shape), numeric

    def recheck(self, differ: NodeDifferentiator, flat: int, analytic: float, tol: Tolerance,
                first_step: float = 0.0) -> tuple[Status, float]:
        """The verdict on one element that failed the first comparison, against a better estimate (returned)."""
        if not np.isfinite(analytic):
            return Status.FAIL, float("nan")
        refined = differ.refined(flat, first_step)
        status = element_status(analytic, refined.value, tol, refined.error_bound, slopes=lambda: differ.one_sided(flat))
        return status, refined.value

    # ---------------------------------------------------------------------------------- probes
    def probe(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance,
              fault: str | None) -> tuple[Outcome, str | None]:
        """Random directional probes; a failing probe is bisected down to one element, which is judged.
        Returns the outcome and the node's message (the vjp's fault, else what the probes found)."""
        rng = np.random.default_rng(stable_seed(self.spec.seed, "probe", node.name))
        scale = differ.scale
        worst_gap = 0.0
        worst_rel = 0.0
        for _ in range(self.options.probes):
            direction = rng.choice([-1.0, 1.0], size=differ.x.shape) * scale
            gap, bound, numeric_dir, analytic_dir = self.directional_gap(differ, analytic, direction, tol)
            worst_gap = max(worst_gap, gap)
            worst_rel = max(worst_rel, float(relative_error(np.float64(analytic_dir), np.float64(numeric_dir))))
            if not gap <= bound:
                flat = self.localise(differ, analytic, direction, tol)
                found = self.judge_element(differ, analytic, flat, tol)
                if found.status == Status.PASS:
                    found.status, found.failing = Status.FAIL, 1
                    return found, (f"a directional probe disagreed by {gap:.3g} (tolerance {bound:.3g}); "
                                   "no single element accounts for it")
                return found, fault
        checked = f"checked by {self.options.probes} random directional probes"
        return Outcome(max_abs_error=float(worst_gap), max_rel_error=float(worst_rel)), fault or checked

    def directional_gap(self, differ, analytic, direction, tol: Tolerance):
        numeric_dir = differ.directional(direction)
        analytic_dir = float(np.sum(analytic * direction))
        # per-element tolerances combined as independent errors (root-sum-square), plus the probe's own round-off
        bound = float(np.sqrt(np.sum((direction * (tol.atol + tol.rtol * np.abs(analytic))) ** 2)))
        bound += 10 * MACHINE_EPS * (abs(differ.f0) + 1.0) / 6e-6
        gap = abs(analytic_dir - numeric_dir) if np.isfinite(numeric_dir) and np.isfinite(analytic_dir) else np.inf
        return gap, bound, numeric_dir, analytic_dir

    def localise(self, differ, analytic, direction, tol: Tolerance) -> int:
        indices = np.arange(differ.x.size)
        flat_direction = direction.reshape(-1)
        while indices.size > 1:
            halves = np.array_split(indices, 2)
            ratios = []
            for half in halves:
                masked = np.zeros(differ.x.size)
                masked[half] = flat_direction[half]
                gap, bound, _, _ = self.directional_gap(differ, analytic, masked.reshape(differ.x.shape), tol)
                ratios.append(gap / bound if bound > 0 else gap)
            indices = halves[int(np.argmax(ratios))]
        return int(indices[0])

    def judge_element(self, differ, analytic, flat: int, tol: Tolerance) -> Outcome:
        a = float(analytic.reshape(-1)[flat])
        first = differ.element(flat)
        status, estimate = element_status(a, first.value, tol, first.error_bound), first.value
        if status != Status.PASS:
            status, better = self.recheck(differ, flat, a, tol)
            if status == Status.PASS:
                estimate = better
        return outcome([a], [estimate], [status == Status.FAIL], [status == Status.KINK], tol, analytic.shape, [flat])
