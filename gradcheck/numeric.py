"""The numeric reference: finite differences of the objective with respect to one node's value.

Always float64.  Perturbing node k re-evaluates only what lies downstream of k (and on the
way to the output); everything else is read from the cached float64 forward values.

Steps scale with each element's magnitude: h_i = base * max(|x_i|, typical |x| of the node),
with base the scheme's optimal relative step (cube root of machine epsilon for central
differences, fifth root for five-point, ...).  A step that leaves an op's domain (NaN/Inf)
is shrunk, then replaced by a one-sided difference from the side that stays inside.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .batching import batched_apply
from .engine import evaluate_node
from .graph import Graph

MACHINE_EPS = np.finfo(np.float64).eps
BASE_STEP = {
    "central": MACHINE_EPS ** (1 / 3),       # error h^2 f'''/6 + eps f / h is smallest near eps^(1/3)
    "forward": MACHINE_EPS ** (1 / 2),       # error h f''/2 + eps f / h: eps^(1/2)
    "backward": MACHINE_EPS ** (1 / 2),
    "five-point": MACHINE_EPS ** (1 / 5),    # error O(h^4): eps^(1/5)
    "richardson": MACHINE_EPS ** (1 / 5),
    "complex-step": 1e-20,                   # no cancellation: any tiny step is exact to rounding
}
REFINE_STEP = 1e-3  # relative step of the Richardson refinement used to re-check a failing element
# difference quotients as sum_k weight_k * f(x + offset_k * h) / h; offset 0 is the unperturbed objective
STENCILS = {
    "central": ((1, 0.5), (-1, -0.5)),
    "forward": ((1, 1.0), (0, -1.0)),
    "backward": ((0, 1.0), (-1, -1.0)),
    "five-point": ((2, -1 / 12), (1, 8 / 12), (-1, -8 / 12), (-2, 1 / 12)),
}
MAX_BATCH_FLOATS = 4_000_000  # perturbed copies evaluated at once are capped at ~32 MB of downstream values


MAX_RELATIVE_STEP = 0.1   # the largest step a too-flat element may grow to, relative to max(|x|, 1)


def richardson_central(along, h: float):
    """d/ds along(s) at 0 from central differences at h and h/2, combined to cancel the h² term
    (Richardson: (4 D(h/2) - D(h)) / 3, error O(h⁴)); returns the estimate and |D(h/2) - D(h)| / 3,
    an estimate of the error left in D(h/2)."""
    coarse = (along(h) - along(-h)) / (2 * h)
    fine = (along(h / 2) - along(-h / 2)) / h
    return (4 * fine - coarse) / 3, np.abs(fine - coarse) / 3


@dataclass
class ElementEstimate:
    value: float
    step: float
    noise: float = 0.0    # round-off bound of the estimate


class Evaluator:
    """Evaluates the objective with one node's value replaced, recomputing only its downstream."""

    def __init__(self, graph: Graph, values64: list[np.ndarray], projection: np.ndarray | None):
        self.graph = graph
        self.values = values64
        self.projection = projection
        self.evaluations = 0

    @cached_property
    def f0(self) -> float:
        """The objective at the unperturbed values, shared by every node's differences."""
        return float(np.real(self.objective(self.values[self.graph.output])))

    def objective(self, output_value) -> float | complex:
        if self.projection is None:
            return np.sum(output_value)
        return np.sum(self.projection * output_value)

    def objective_with(self, index: int, new_value: np.ndarray):
        self.evaluations += 1
        overlay = {index: new_value}
        try:
            with np.errstate(all="ignore"):
                for j in self.graph.downstream(index):
                    node = self.graph.nodes[j]
                    args = [overlay.get(a, self.values[a]) for a in node.args]
                    dtype = np.complex128 if any(a.dtype.kind == "c" for a in args) else np.float64
                    overlay[j] = evaluate_node(node, args, dtype)
                result = self.objective(overlay.get(self.graph.output, self.values[self.graph.output]))
        except Exception:
            return np.nan
        return result

    def objectives_batch(self, index: int, stacked: np.ndarray) -> np.ndarray | None:
        """The objective for each copy stacked on axis 0 (None if the batched pass raised)."""
        count = stacked.shape[0]
        self.evaluations += count
        overlay = {index: stacked}
        evaluate = lambda node, args, params=None: evaluate_node(node, args, np.float64, params)  # noqa: E731
        try:
            with np.errstate(all="ignore"):
                for j in self.graph.downstream(index):
                    node = self.graph.nodes[j]
                    args = [overlay.get(a, self.values[a]) for a in node.args]
                    batched = [a in overlay for a in node.args]
                    overlay[j] = batched_apply(node, args, batched, count, np.shape(self.values[j]), evaluate)
                out = overlay[self.graph.output]
                weighted = out if self.projection is None else self.projection * out
                return weighted.reshape(count, -1).sum(axis=1)
        except Exception:
            return None

    def path_magnitude(self, index: int) -> float:
        """The largest value met downstream of node index: round-off is relative to it, not to the objective,
        when large terms cancel on the way (a + s - s)."""
        magnitudes = [float(np.max(np.abs(self.values[j]))) for j in self.graph.downstream(index)
                      if np.size(self.values[j]) and self.values[j].dtype.kind in "fc"]
        return max(magnitudes, default=0.0)

    def copy_floats(self, index: int) -> int:
        """Floats one perturbed copy of node index occupies along its downstream."""
        return sum(int(np.size(self.values[j])) for j in [index] + self.graph.downstream(index))

    def complex_safe(self, index: int) -> str | None:
        """None if complex-step can run through node index's downstream, else the op that forbids it."""
        for j in self.graph.downstream(index):
            op = self.graph.nodes[j].op
            if not op.complex_safe:
                return op.name
        return None


SMALLEST_SCALE = 1e-150  # below this a relative step underflows; the round-off check grows it if need be


def element_scale(x: np.ndarray) -> np.ndarray:
    """Per-element step scale: |x_i|, but never below the node's typical magnitude (or 1 if all zero)."""
    magnitude = np.abs(x)
    typical = float(np.median(magnitude)) if magnitude.size else 0.0
    if typical == 0.0:
        typical = float(np.mean(magnitude)) if magnitude.size else 0.0
    if typical == 0.0:
        typical = 1.0
    return np.maximum(np.maximum(magnitude, typical), SMALLEST_SCALE)


class NodeDifferentiator:
    """Finite differences of the objective w.r.t. the elements of one node."""

    def __init__(self, evaluator: Evaluator, index: int, method: str, eps: float | None, atol: float = 1e-6):
        self.evaluator = evaluator
        self.index = index
        self.x = np.asarray(evaluator.values[index], dtype=np.float64)
        self.method = method
        self.scale = element_scale(self.x)
        self.base = eps if eps is not None else BASE_STEP[method]
        self._magnitude = None
        self.steps = None
        self.noise = None
        self.noise_target = 0.1 * atol if atol > 0 else 1e-12  # round-off must stay well inside the tolerance
        self.refined_noise = 0.0

    @property
    def f0(self) -> float:
        return self.evaluator.f0

    def at(self, flat_index: int, offset) -> float | complex:
        shifted = self.x.astype(np.complex128) if np.iscomplexobj(offset) else self.x.copy()
        shifted.reshape(-1)[flat_index] += offset
        return self.evaluator.objective_with(self.index, shifted)

    def gradient(self) -> np.ndarray:
        self.steps = np.empty(self.x.size)
        self.noise = np.zeros(self.x.size)
        grad = np.full(self.x.size, np.nan)
        if self.method in STENCILS:
            self.batched_gradient(grad)
        for flat_index in np.flatnonzero(~np.isfinite(grad) | (self.noise > self.noise_target)):
            # one at a time: steps that left a domain, steps too short for the round-off, failed batches
            estimate = self.element(int(flat_index))
            grad[flat_index], self.steps[flat_index], self.noise[flat_index] = estimate.value, estimate.step, estimate.noise
        return grad.reshape(self.x.shape)

    def batched_gradient(self, grad: np.ndarray) -> None:
        """Every element's stencil in vectorised passes: copies of x, each with one element moved, on a batch axis."""
        stencil = STENCILS[self.method]
        offsets = [offset for offset, _ in stencil if offset != 0]
        steps = self.base * self.scale.reshape(-1)
        self.steps[:] = steps
        self.noise[:] = self.roundoff(steps, self.method)
        chunk = max(1, MAX_BATCH_FLOATS // (len(offsets) * max(1, self.evaluator.copy_floats(self.index))))
        flat_x = self.x.reshape(-1)
        for start in range(0, self.x.size, chunk):
            elements = np.arange(start, min(self.x.size, start + chunk))
            copies = np.tile(flat_x, (len(offsets) * len(elements), 1))
            rows = np.arange(copies.shape[0])
            copies[rows, np.tile(elements, len(offsets))] += np.repeat(offsets, len(elements)) * np.tile(steps[elements], len(offsets))
            objectives = self.evaluator.objectives_batch(self.index, copies.reshape((-1,) + self.x.shape))
            if objectives is None:
                continue  # left NaN: these elements are redone one at a time
            by_offset = dict(zip(offsets, objectives.reshape(len(offsets), len(elements))))
            total = sum(weight * (self.f0 if offset == 0 else by_offset[offset]) for offset, weight in stencil)
            grad[elements] = total / steps[elements]

    def element(self, flat_index: int, method: str | None = None) -> ElementEstimate:
        method = method or self.method
        h = float(BASE_STEP[method] if method != self.method else self.base) * self.scale.reshape(-1)[flat_index]
        for _ in range(8):
            value = self._scheme(method, flat_index, h)
            if not np.isfinite(value):
                h = self.closer(flat_index, h)  # the step left the domain of some op downstream
                continue
            h_before_growth = h
            noise = self.roundoff(h, method)
            if noise > self.noise_target and h < self.max_step(flat_index):
                # round-off in the objective swamps this element's difference: a longer step is needed
                h = min(h * noise / (0.5 * self.noise_target), self.max_step(flat_index))
                longer = self._scheme(method, flat_index, h)
                if np.isfinite(longer):
                    value = longer
                else:
                    h = h_before_growth
            return ElementEstimate(float(value), h, self.roundoff(h, method))
        for side in (+1, -1):  # last resort: the one side that stays inside the domain
            value = self._scheme("forward" if side > 0 else "backward", flat_index, h)
            if np.isfinite(value):
                return ElementEstimate(float(value), h, self.roundoff(h, "forward"))
        return ElementEstimate(float("nan"), h, 0.0)

    def roundoff(self, h: float, method: str) -> float:
        """Bound on the round-off in a difference quotient: a few ulps of the objective over the step."""
        if method == "complex-step":
            return 0.0
        return 4 * MACHINE_EPS * self.magnitude / h

    @property
    def magnitude(self) -> float:
        if self._magnitude is None:
            # projected through v, a value's ulps reach the objective scaled by |v| (at most a few)
            scale = 1.0 if self.evaluator.projection is None else float(np.max(np.abs(self.evaluator.projection)))
            self._magnitude = max(abs(self.f0), scale * self.evaluator.path_magnitude(self.index), 1e-300)
        return self._magnitude

    def max_step(self, flat_index: int) -> float:
        return MAX_RELATIVE_STEP * max(float(self.scale.reshape(-1)[flat_index]), 1.0)

    def _scheme(self, method: str, i: int, h: float) -> float:
        if method in STENCILS:
            return sum(weight * (self.f0 if offset == 0 else self.at(i, offset * h)) for offset, weight in STENCILS[method]) / h
        if method == "richardson":
            return self.richardson(i, h)
        if method == "complex-step":
            return float(np.imag(self.at(i, 1j * h)) / h)
        raise ValueError(method)

    def richardson(self, i: int, h: float) -> float:
        """Two levels of Richardson extrapolation on central differences at h, h/2, h/4 (error O(h^6))."""
        d = [(self.at(i, s) - self.at(i, -s)) / (2 * s) for s in (h, h / 2, h / 4)]
        r1 = [(4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3]
        return (16 * r1[1] - r1[0]) / 15

    def refined(self, flat_index: int) -> float:
        """A second, more accurate estimate for an element that failed the first comparison."""
        first_step = self.steps[flat_index] if getattr(self, "steps", None) is not None else 0.0
        h = max(REFINE_STEP * self.scale.reshape(-1)[flat_index], 10 * first_step)
        for _ in range(8):
            value = self.richardson(flat_index, h)
            if np.isfinite(value):
                self.refined_noise = 3 * self.roundoff(h / 4, "central")
                return float(value)
            h = self.closer(flat_index, h)
        return float("nan")

    def closer(self, flat_index: int, h: float) -> float:
        """A smaller step after one that left some op's domain (log, sqrt near 0).

        Domain boundaries are usually at 0, so the element's own magnitude bounds the step:
        a step of 1e-3 |x_i| keeps the truncation error near 1e-6 relative.
        """
        magnitude = abs(float(self.x.reshape(-1)[flat_index]))
        return min(h / 10, 1e-3 * magnitude) if magnitude > 0 else h / 10

    def one_sided(self, flat_index: int) -> tuple[float, float]:
        """(right slope, left slope) at the element, to tell a kink from a wrong gradient."""
        h = BASE_STEP["central"] * self.scale.reshape(-1)[flat_index]
        right = (self.at(flat_index, h) - self.f0) / h
        left = (self.f0 - self.at(flat_index, -h)) / h
        return float(right), float(left)

    def directional(self, direction: np.ndarray) -> float:
        """d objective along x + t * direction at t = 0, by central differences (direction scaled per element)."""
        h = BASE_STEP["central"] if self.method not in ("five-point", "richardson") else BASE_STEP[self.method]
        for _ in range(6):
            if self.method in ("five-point", "richardson"):
                f = lambda t: self.evaluator.objective_with(self.index, self.x + t * direction)
                value = (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)
            else:
                value = (self.evaluator.objective_with(self.index, self.x + h * direction)
                         - self.evaluator.objective_with(self.index, self.x - h * direction)) / (2 * h)
            if np.isfinite(value):
                return float(value)
            h /= 10
        return float("nan")
