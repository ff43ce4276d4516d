"""Forward-mode rules: every op that has a `jvp` is checked against finite differences of the op alone.

For each op node and each differentiable argument i, a tangent t (random signs, scaled to the
argument's magnitude) goes in at position i and zeros elsewhere; the rule's J_i·t is compared,
element by element of the op's output, with the directional derivative
    d/ds f(x_1, …, x_i + s·t, …) at s = 0
estimated by central differences with one Richardson step (error O(h⁴)), in float64 -- or, for an argument
a built-in op is affine in (its tested linear_in declaration), exactly by f(.., x_i + t, ..) - f(..): one
evaluation, and no retry at a shorter tangent, since there is no truncation error to shrink.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..engine import BackwardPass, ForwardPass, differentiable, rule_failure
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, Slopes, one_sided_slopes, richardson_central, shared_scale
from ..results import JvpResult, Status
from ..spec import Tolerance, stable_seed
from .local import SharedTangent, output_at, outputs_along, tangents_moving_one
from .verdict import classify, outcome

STEP = 1e-3  # relative to each element's scale; Richardson removes the h² term
MAX_SHORTENINGS = 8
RETRIES = 2


def check_jvps(graph: Graph, analytic_fwd: ForwardPass, reference: ForwardPass, backward: BackwardPass,
               tolerance_of, shared: Mapping[tuple[int, int], SharedTangent] | None = None) -> list[JvpResult]:
    """Every jvp rule checked; ``shared``: the tangents the op-local checks took (LocalChecks.tangents), each edge's
    reused where its check would compute the same values (an affine built-in op in float64)."""
    results = []
    for node in graph.nodes:
        if node.kind != "op" or not node.op_info.has_jvp or not node.check:
            continue
        for position, arg in enumerate(node.args):
            if not differentiable(reference.values[arg]) or (node.index, position) in backward.declared_none:
                continue
            taken = None if shared is None else shared.get((node.index, position))
            results.append(JvpCheck(graph, node, position, analytic_fwd, reference, tolerance_of(node), taken).run())
    return results


class JvpCheck:
    def __init__(self, graph: Graph, node: Node, position: int, analytic_fwd: ForwardPass, reference: ForwardPass,
                 tol: Tolerance, shared: SharedTangent | None = None):
        self.node, self.position, self.tol = node, position, tol
        self.reference_args = [np.asarray(reference.values[a]) for a in node.args]
        self.analytic_args = [analytic_fwd.values[a] for a in node.args]
        self.analytic_out = analytic_fwd.values[node.index]
        # a built-in op's linear_in declaration is tested (tests/test_linear_ops.py): for an affine map
        # f(x + t) - f(x) is J t exactly, up to the round-off of the two results
        info = node.op_info
        self.affine = info.source == "builtin" and info.is_linear_in(position) and info.branches is None
        # the op-local check's tangent, its exact J t and the jvp's, where this check would compute the same: the
        # jvp called on the same float64 arguments (a built-in rule, deterministic) and J t by the same formula
        self.shared = shared if self.affine and analytic_fwd is reference else None
        x = np.asarray(self.reference_args[position], dtype=np.float64)
        if self.shared is not None:
            self.direction = self.shared.direction
        else:
            rng = np.random.default_rng(stable_seed(graph.spec.seed, "jvp", node.name, str(position)))
            self.direction = rng.choice([-1.0, 1.0], size=x.shape) * shared_scale(x)
        from .diagnosis import rule_source  # here: a spec without jvp rules never loads the diagnosis

        self.template = JvpResult(node=node.name, op=node.op_name, argument=position,
                                  argument_node=graph.nodes[node.args[position]].name,
                                  shape=tuple(np.shape(self.analytic_out)), atol=tol.atol, rtol=tol.rtol,
                                  text=node.text, location=node.location, source=rule_source(node.op_info, "jvp"))
        self.f0 = np.asarray(reference.values[node.index], dtype=np.float64)  # the op's float64 forward value
        self.names = [graph.nodes[a].name for a in node.args]

    def run(self) -> JvpResult:
        """A wrong rule fails at every step length; truncation error shrinks with it, so retry shorter."""
        if self.shared is not None:  # exact: no truncation error to retry for, and no kink (its slopes are one)
            taken = self.shared
            return self.compare(taken.jvp, taken.numeric, taken.error_bound, None)
        best: JvpResult | None = None
        for _ in range(RETRIES + 1):
            exact = self.affine_numeric() if self.affine else None
            numeric, error_bound, slopes = self.numeric() if exact is None else exact  # may shorten the tangent
            analytic, fault = self.analytic()
            if fault:
                return replace(self.template, status=Status.ERROR, message=fault)
            attempt = self.compare(analytic, numeric, error_bound, slopes)
            if best is None or attempt.failing < best.failing:
                best = attempt
            if not attempt.failing or exact is not None:  # no truncation error to shrink
                break
            self.direction = self.direction / 10
        assert best is not None  # the loop above runs at least once
        return best

    def analytic(self) -> tuple[np.ndarray | None, str]:
        """The rule's J·t in the pass's precision, or what went wrong with the rule."""
        node = self.node
        tangent = self.direction.astype(np.asarray(self.analytic_args[self.position]).dtype)
        tangents = tangents_moving_one(self.analytic_args, self.position, tangent, node.op_info.source == "builtin")
        try:
            with np.errstate(all="ignore"):
                value = node.op_info.impl.jvp(tangents, self.analytic_out, *self.analytic_args, **node.params)
        except (SystemExit, Exception) as error:
            return None, rule_failure("jvp", error)
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return None, f"jvp returned {type(value).__name__}, not an array"
        if value.shape != self.template.shape:
            return None, f"jvp returned shape {value.shape}, expected the output's shape {self.template.shape}"
        return value, ""

    def affine_numeric(self):
        """numeric() for an argument a built-in op is affine in: f(x + t) - f(x), from one evaluation, with the
        round-off of the two results as its bound (None where x + t cannot be evaluated: the stencil decides)."""
        x = np.asarray(self.reference_args[self.position], dtype=np.float64)
        with np.errstate(all="ignore"):
            ahead = output_at(self.node, self.reference_args, self.position, x + self.direction, self.template.shape)
        if ahead is None or not np.all(np.isfinite(ahead) | ~np.isfinite(self.f0)):
            return None
        numeric = ahead - self.f0
        bound = np.abs(ahead)
        bound += np.abs(self.f0)
        bound *= 4 * MACHINE_EPS
        return numeric, bound, None  # exact: both one-sided slopes are the numeric value, no kink

    def numeric(self):
        """Richardson-extrapolated central difference, its error estimate, and the one-sided slopes.

        Where a step leaves the op's domain (log, sqrt near 0) the tangent is shortened, tenfold at a time.
        """
        steps = (STEP, -STEP, STEP / 2, -STEP / 2)
        for _ in range(MAX_SHORTENINGS):
            f = dict(zip(steps, self.evaluate(steps), strict=True))
            outside = np.isfinite(self.f0) & ~np.all([np.isfinite(v) for v in f.values()], axis=0)
            if not outside.any():
                break
            self.direction = self.direction / 10
        numeric, truncation = richardson_central(f.__getitem__, STEP)
        roundoff = 4 * MACHINE_EPS * np.max(np.abs(list(f.values())), axis=0) / STEP
        return numeric, truncation + roundoff, one_sided_slopes(f.__getitem__, self.f0, STEP / 2)

    def evaluate(self, steps: tuple[float, ...]) -> np.ndarray:
        """The op at x + s·t for each step s, in one vectorised call where the op's batching rule allows it."""
        x = np.asarray(self.reference_args[self.position], dtype=np.float64)
        with np.errstate(all="ignore"):
            return outputs_along(self.node, self.reference_args, self.position, x, self.direction, steps,
                                 self.template.shape)

    def compare(self, analytic, numeric, error_bound, slopes: Slopes | None) -> JvpResult:
        failing, kinks, _ = classify(analytic, numeric, self.tol, error_bound, slopes)
        found = outcome(analytic, numeric, failing, kinks, self.tol, self.template.shape)
        if found.status == Status.PASS:  # a rule that holds has no element to name
            found.worst_index, found.worst_analytic, found.worst_numeric = (), None, None
        diagnosis = None
        if found.status == Status.FAIL:
            from .diagnosis import LocalEstimate
            from .diagnosis import classify as diagnose

            estimates: list[LocalEstimate | None] = [None] * len(self.reference_args)
            estimates[self.position] = LocalEstimate(np.asarray(numeric, dtype=np.float64),
                                                     np.broadcast_to(error_bound, np.shape(numeric)))
            diagnosis = diagnose(analytic, estimates, self.position, self.reference_args, self.tol,
                                 names=self.names, output_shape=self.template.shape)
        return replace(self.template, **found.outcome_fields(), diagnosis=diagnosis)
