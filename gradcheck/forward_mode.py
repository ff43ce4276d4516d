"""Forward-mode rules: every op that has a `jvp` is checked against finite differences of the op alone.

For each op node and each differentiable argument i, a tangent t (random signs, scaled to the
argument's magnitude) goes in at position i and zeros elsewhere; the rule's J_i·t is compared,
element by element of the op's output, with the directional derivative
    d/ds f(x_1, …, x_i + s·t, …) at s = 0
estimated by central differences with one Richardson step (error O(h⁴)), in float64.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .compare import relative_error, within
from .engine import BackwardPass, ForwardPass, differentiable, evaluate_node
from .errors import clip
from .graph import Graph, Node
from .numeric import element_scale
from .results import JvpResult
from .spec import Tolerance, stable_seed

STEP = 1e-3  # relative to each element's scale; Richardson removes the h² term
MAX_SHORTENINGS = 8
RETRIES = 2


def check_jvps(graph: Graph, analytic_fwd: ForwardPass, reference: ForwardPass, backward: BackwardPass,
               tolerance_of) -> list[JvpResult]:
    results = []
    for node in graph.nodes:
        if node.kind != "op" or not node.op.has_jvp or not node.check:
            continue
        for position, arg in enumerate(node.args):
            if not differentiable(reference.values[arg]) or (node.index, position) in backward.declared_none:
                continue
            results.append(JvpCheck(graph, node, position, analytic_fwd, reference, tolerance_of(node)).run())
    return results


class JvpCheck:
    def __init__(self, graph: Graph, node: Node, position: int, analytic_fwd: ForwardPass, reference: ForwardPass,
                 tol: Tolerance):
        self.node, self.position, self.tol = node, position, tol
        self.reference_args = [np.asarray(reference.values[a]) for a in node.args]
        self.analytic_args = [analytic_fwd.values[a] for a in node.args]
        self.analytic_out = analytic_fwd.values[node.index]
        x = np.asarray(self.reference_args[position], dtype=np.float64)
        rng = np.random.default_rng(stable_seed(graph.spec.seed, "jvp", node.name, str(position)))
        self.direction = rng.choice([-1.0, 1.0], size=x.shape) * element_scale(x)
        location = node.location
        self.result = JvpResult(node=node.name, op=node.op_name, argument=position,
                                argument_node=graph.nodes[node.args[position]].name,
                                shape=tuple(np.shape(self.analytic_out)), status="pass",
                                atol=tol.atol, rtol=tol.rtol, text=node.text,
                                line=location.line if location else None,
                                column=location.column if location else None)

    def run(self) -> JvpResult:
        """A wrong rule fails at every step length; truncation error shrinks with it, so retry shorter."""
        best = None
        for _ in range(RETRIES + 1):
            numeric, noise, forward_slope, backward_slope = self.numeric()  # may shorten the tangent first
            analytic = self.analytic()
            if analytic is None:
                self.result.status = "error"
                return self.result
            self.compare(analytic, numeric, noise, forward_slope, backward_slope)
            attempt = replace(self.result)
            if best is None or attempt.failing < best.failing:
                best = attempt
            if not attempt.failing:
                break
            self.direction = self.direction / 10
        return best

    def analytic(self) -> np.ndarray | None:
        """The rule's J·t in the pass's precision; None (with the message set) when the rule misbehaves."""
        tangents = []
        for i, arg in enumerate(self.analytic_args):
            if not differentiable(arg):
                tangents.append(None)
            elif i == self.position:
                tangents.append(self.direction.astype(np.asarray(arg).dtype))
            else:
                tangents.append(np.zeros_like(arg))
        node = self.node
        try:
            with np.errstate(all="ignore"):
                value = node.op.impl.jvp(tuple(tangents), self.analytic_out, *self.analytic_args, **node.params)
        except SystemExit as error:
            self.result.message = f"jvp called exit({clip(error.code)})"
            return None
        except Exception as error:
            self.result.message = f"jvp raised {type(error).__name__}: {clip(error, 200)}"
            return None
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            self.result.message = f"jvp returned {type(value).__name__}, not an array"
            return None
        if value.shape != self.result.shape:
            self.result.message = (f"jvp returned shape {value.shape}, expected the output's shape "
                                   f"{self.result.shape}")
            return None
        return value

    def numeric(self):
        """Richardson-extrapolated central difference, its error estimate, and the one-sided slopes.

        Where a step leaves the op's domain (log, sqrt near 0) the tangent is shortened, tenfold at a time.
        """
        f0 = self.evaluate(0.0)
        for _ in range(MAX_SHORTENINGS):
            f = {s: self.evaluate(s) for s in (STEP, -STEP, STEP / 2, -STEP / 2)}
            outside = np.isfinite(f0) & ~np.all([np.isfinite(v) for v in f.values()], axis=0)
            if not outside.any():
                break
            self.direction = self.direction / 10
        coarse = (f[STEP] - f[-STEP]) / (2 * STEP)
        fine = (f[STEP / 2] - f[-STEP / 2]) / STEP
        numeric = (4 * fine - coarse) / 3
        roundoff = 4 * np.finfo(np.float64).eps * np.max(np.abs(list(f.values())), axis=0) / STEP
        noise = np.abs(fine - coarse) / 3 + roundoff
        forward_slope = (f[STEP / 2] - f0) / (STEP / 2)
        backward_slope = (f0 - f[-STEP / 2]) / (STEP / 2)
        return numeric, noise, forward_slope, backward_slope

    def evaluate(self, s: float) -> np.ndarray:
        args = list(self.reference_args)
        args[self.position] = np.asarray(args[self.position], dtype=np.float64) + s * self.direction
        with np.errstate(all="ignore"):
            try:
                return np.asarray(evaluate_node(self.node, args, np.float64), dtype=np.float64)
            except Exception:
                return np.full(self.result.shape, np.nan)

    def compare(self, analytic, numeric, noise, forward_slope, backward_slope) -> None:
        result, tol = self.result, self.tol
        ok = within(analytic, numeric, tol, noise)
        # a kink within the step: the one-sided slopes disagree and the rule gives one of them (or between)
        low, high = np.minimum(forward_slope, backward_slope), np.maximum(forward_slope, backward_slope)
        sides_differ = ~within(forward_slope, backward_slope, tol)
        between = (analytic >= low - tol.atol - tol.rtol * np.abs(low)) & (
            analytic <= high + tol.atol + tol.rtol * np.abs(high))
        kink = ~ok & sides_differ & between
        failing = ~ok & ~kink
        error = np.abs(analytic - numeric)
        result.max_abs_error = float(np.max(error, initial=0.0)) if np.all(np.isfinite(error)) else float("inf")
        result.max_rel_error = float(np.max(relative_error(analytic, numeric), initial=0.0))
        result.failing, result.kinks = int(np.count_nonzero(failing)), int(np.count_nonzero(kink))
        result.worst_index, result.worst_analytic, result.worst_numeric = (), None, None
        if result.failing or result.kinks:
            mask = failing if result.failing else kink
            excess = np.where(mask, np.nan_to_num(error, nan=np.inf), -np.inf)
            flat = int(np.argmax(excess))
            index = np.unravel_index(flat, result.shape) if result.shape else ()
            result.worst_index = tuple(int(i) for i in index)
            result.worst_analytic = float(analytic.reshape(-1)[flat])
            result.worst_numeric = float(numeric.reshape(-1)[flat])
        result.status = "fail" if result.failing else "kink" if result.kinks else "pass"
