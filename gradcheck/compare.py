"""Analytic vs numeric, node by node: tolerances, error metrics, statuses, kinks, suspects.

An element passes when |a - n| <= atol + rtol * |n|.  An element that fails is re-checked
with a Richardson-extrapolated difference (so round-off or truncation in the first estimate
is not reported as a bug); if it still fails and the one-sided slopes disagree with the
analytic value lying between them, the function has a kink there: status ``kink``, not ``fail``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine import BackwardPass, ForwardPass, evaluate_node
from .graph import Graph, Node
from .numeric import MACHINE_EPS, Evaluator, NodeDifferentiator, element_scale, richardson_central
from .results import NodeResult, Suspect
from .spec import Tolerance, stable_seed

MAX_REFINED_ELEMENTS = 64


@dataclass(frozen=True)
class CheckOptions:
    mode: str = "auto"          # full | fast | auto
    strict: bool = False
    probes: int = 3
    full_limit: int = 4096      # auto: nodes with at most this many elements are checked element by element,
    full_budget: float = 5e5    # ... when perturbing each of them re-evaluates at most this many values in all
    keep_values: bool = True


def within(analytic, numeric, tol: Tolerance, noise=0.0):
    """|a - n| <= atol + rtol |n|, widened by the numeric estimate's own round-off bound where it has one."""
    return np.abs(analytic - numeric) <= tol.atol + tol.rtol * np.abs(numeric) + noise


def relative_error(analytic, numeric):
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, np.abs(analytic - numeric) / np.where(scale > 0, scale, 1), 0.0)


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
        results = [self.compare_node(node) for node in self.graph.nodes if node.kind != "constant" or node.is_named]
        return results

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
        result = NodeResult(name=node.name, op=node.op_name, parent=node.parent, shape=tuple(np.shape(value)),
                            status="pass", atol=tol.atol, rtol=tol.rtol, text=node.text,
                            line=node.location.line if node.location else None,
                            column=node.location.column if node.location else None, value=value)
        reason = self.skip_reason(node, value)
        if reason:
            result.status, result.message, result.checked = "skip", reason, "none"
            if np.asarray(value).dtype.kind == "f" and self.backward.adjoints[node.index] is not None:
                result.analytic = self.analytic_of(node)
            return result
        analytic = self.analytic_of(node)
        result.analytic = analytic
        if node.index in self.backward.faults:
            result.message = self.backward.faults[node.index]
        if np.size(value) == 0:
            return result
        differ = self.differentiator(node)
        use_probes = self.options.mode == "fast" or (self.options.mode == "auto" and not self.small(node))
        if use_probes:
            self.probe(node, differ, analytic, tol, result)
        else:
            self.full(differ, analytic, tol, result)
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
    def full(self, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance, result: NodeResult) -> None:
        numeric = differ.gradient()
        flat_a, flat_n = analytic.reshape(-1), numeric.reshape(-1)
        failing = ~within(flat_a, flat_n, tol, differ.noise)
        kinks = np.zeros_like(failing)
        for flat in np.flatnonzero(failing)[:MAX_REFINED_ELEMENTS]:
            verdict, better = self.recheck(differ, flat, flat_a[flat], tol)
            if verdict == "pass":
                flat_n[flat], failing[flat] = better, False
            elif verdict == "kink":
                kinks[flat], failing[flat] = True, False
        result.numeric = numeric
        self.summarise(result, analytic, numeric, failing, kinks, tol)
        result.checked = "full"

    def recheck(self, differ: NodeDifferentiator, flat: int, analytic: float, tol: Tolerance) -> tuple[str, float]:
        """pass (with a better estimate), kink, or fail for one element that failed the first comparison."""
        if not np.isfinite(analytic):
            return "fail", float("nan")
        refined = differ.refined(flat)
        if np.isfinite(refined) and within(analytic, refined, tol, differ.refined_noise):
            return "pass", refined
        right, left = differ.one_sided(flat)
        low, high = min(right, left), max(right, left)
        bound = tol.atol + tol.rtol * max(abs(right), abs(left))
        if np.isfinite(low) and np.isfinite(high) and high - low > bound and low - bound <= analytic <= high + bound:
            return "kink", refined
        return "fail", refined

    def summarise(self, result: NodeResult, analytic, numeric, failing, kinks, tol: Tolerance) -> None:
        abs_error = np.abs(analytic - numeric)
        abs_error = np.where(np.isnan(abs_error), np.inf, abs_error)
        rel_error = relative_error(analytic, numeric)
        rel_error = np.where(np.isnan(rel_error), np.inf, rel_error)
        flat_fail = failing.reshape(-1)
        flat_kink = kinks.reshape(-1)
        result.failing = int(flat_fail.sum())
        result.kinks = int(flat_kink.sum())
        excess = (abs_error - (tol.atol + tol.rtol * np.abs(numeric))).reshape(-1)
        if result.failing:
            candidates = np.where(flat_fail, excess, -np.inf)
        elif result.kinks:
            candidates = np.where(flat_kink, excess, -np.inf)
        else:
            candidates = abs_error.reshape(-1)
        worst = int(np.argmax(candidates)) if candidates.size else 0
        result.max_abs_error = float(abs_error.max()) if abs_error.size else 0.0
        result.max_rel_error = float(rel_error.max()) if rel_error.size else 0.0
        if analytic.size:
            index = np.unravel_index(worst, analytic.shape) if analytic.ndim else ()
            result.worst_index = tuple(int(i) for i in index)
            result.worst_analytic = float(analytic.reshape(-1)[worst])
            result.worst_numeric = float(numeric.reshape(-1)[worst])
        result.status = "fail" if result.failing else "kink" if result.kinks else "pass"

    # ---------------------------------------------------------------------------------- probes
    def probe(self, node: Node, differ: NodeDifferentiator, analytic: np.ndarray, tol: Tolerance,
              result: NodeResult) -> None:
        """Random directional probes; a failing probe is bisected down to one element."""
        rng = np.random.default_rng(stable_seed(self.spec.seed, "probe", node.name))
        scale = differ.scale
        result.checked = "probes"
        worst_gap = 0.0
        worst_rel = 0.0
        for _ in range(self.options.probes):
            direction = rng.choice([-1.0, 1.0], size=differ.x.shape) * scale
            gap, bound, numeric_dir, analytic_dir = self.directional_gap(differ, analytic, direction, tol)
            worst_gap = max(worst_gap, gap)
            worst_rel = max(worst_rel, float(relative_error(np.float64(analytic_dir), np.float64(numeric_dir))))
            if not gap <= bound:
                flat = self.localise(differ, analytic, direction, tol)
                self.judge_element(differ, analytic, flat, tol, result)
                if result.status == "pass":
                    result.status = "fail"
                    result.failing = max(result.failing, 1)
                    result.message = (f"a directional probe disagreed by {gap:.3g} (tolerance {bound:.3g}); "
                                      "no single element accounts for it")
                return
        result.max_abs_error, result.max_rel_error = float(worst_gap), float(worst_rel)
        result.message = result.message or f"checked by {self.options.probes} random directional probes"

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

    def judge_element(self, differ, analytic, flat: int, tol: Tolerance, result: NodeResult) -> None:
        a = float(analytic.reshape(-1)[flat])
        estimate = differ.element(flat).value
        failing = not within(a, estimate, tol)
        kink = False
        if failing:
            verdict, better = self.recheck(differ, flat, a, tol)
            failing, kink = verdict == "fail", verdict == "kink"
            if verdict == "pass":
                estimate = better
        index = np.unravel_index(flat, analytic.shape) if analytic.ndim else ()
        result.worst_index = tuple(int(i) for i in index)
        result.worst_analytic, result.worst_numeric = a, float(estimate)
        result.max_abs_error = float(abs(a - estimate)) if np.isfinite(a - estimate) else float("inf")
        result.max_rel_error = float(relative_error(np.float64(a), np.float64(estimate)))
        result.failing, result.kinks = int(failing), int(kink)
        result.status = "fail" if failing else "kink" if kink else "pass"

    # ---------------------------------------------------------------------------------- suspects
    def suspects(self, results: list[NodeResult]) -> list[Suspect]:
        """Ops whose own gradient matches while a gradient they pass to an argument does not."""
        by_name = {r.name: r for r in results}
        candidates: dict[int, list[tuple[Node, int]]] = {}
        for node in self.graph.nodes:
            if node.kind != "op" or by_name[node.name].status not in ("pass", "kink"):
                continue
            for position, arg in enumerate(node.args):
                arg_node = self.graph.nodes[arg]
                arg_result = by_name.get(arg_node.name)
                if arg_result is not None and arg_result.status == "fail":
                    candidates.setdefault(arg, []).append((node, position))
        suspects = []
        for arg, edges in candidates.items():
            confirmed = [(node, position, message) for node, position in edges
                         for message in [self.local_fault(node, position)] if message]
            if not confirmed:  # the local checks could not separate them: name every candidate
                confirmed = [(node, position, "") for node, position in edges]
            for node, position, message in confirmed:
                suspects.append(Suspect(node=node.name, op=node.op_name, argument=position,
                                        argument_node=self.graph.nodes[arg].name, message=message))
        return suspects

    def local_fault(self, node: Node, position: int) -> str:
        """Check one edge of one op in isolation: <vjp_position(g), d> against a finite difference of <g, f>."""
        if node.index in self.backward.faults:
            return self.backward.faults[node.index]
        passed = self.backward.edge_grads.get((node.index, position))
        g = self.backward.adjoints[node.index]
        if passed is None or g is None:
            return ""
        g = np.asarray(g, dtype=np.float64)
        args = [self.reference.values[a] for a in node.args]
        x = np.asarray(args[position], dtype=np.float64)
        rng = np.random.default_rng(stable_seed(self.spec.seed, "local", node.name, str(position)))
        direction = rng.choice([-1.0, 1.0], size=x.shape) * element_scale(x)

        def projected(t):
            shifted = list(args)
            shifted[position] = x + t * direction
            try:
                with np.errstate(all="ignore"):
                    return float(np.sum(g * evaluate_node(node, shifted, np.float64)))
            except Exception:
                return float("nan")

        numeric, _ = richardson_central(projected, 1e-3)
        analytic = float(np.sum(np.asarray(passed, dtype=np.float64) * direction))
        scale = max(abs(numeric), abs(analytic), 1e-12)
        if not np.isfinite(analytic) or abs(analytic - numeric) > 1e-5 * scale + 1e-9:
            return (f"passes {analytic:.6g} to '{self.graph.nodes[node.args[position]].name}' along a random direction "
                    f"where finite differences of the op alone give {numeric:.6g}")
        return ""
