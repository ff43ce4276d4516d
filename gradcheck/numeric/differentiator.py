"""Finite differences of the objective with respect to one node's value, returned as estimates.

Steps scale with each element's magnitude: h_i = base * max(|x_i|, typical |x| of the node),
with base the scheme's optimal relative step (cube root of machine epsilon for central
differences, fifth root for five-point, ...).  A step that leaves an op's domain (NaN/Inf)
is shrunk, then replaced by a one-sided difference from the side that stays inside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluator import Evaluator
from .stencils import (
    BASE_STEP,
    MACHINE_EPS,
    MAX_RELATIVE_STEP,
    REFINE_STEP,
    STENCILS,
    Slopes,
    element_scale,
    one_sided_slopes,
    richardson_twice,
)

BATCHED_METHODS = (*STENCILS, "richardson", "complex-step")


@dataclass(frozen=True)
class ElementEstimate:
    """d objective / d x_i at one element: the value, the step it was taken with, and a bound on its round-off."""

    value: float
    step: float
    error_bound: float = 0.0


@dataclass(frozen=True)
class Estimate:
    """d objective / d x for every element of a node (values node-shaped, steps and bounds flat)."""

    values: np.ndarray
    steps: np.ndarray
    error_bound: np.ndarray


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
        self.noise_target = 0.1 * atol if atol > 0 else 1e-12  # round-off must stay well inside the tolerance

    @property
    def f0(self) -> float:
        return self.evaluator.f0

    def at(self, flat_index: int, offset) -> float | complex:
        return self.evaluator.objectives_at(self.index, np.array([flat_index]), np.array([offset]))[0]

    def gradient(self) -> Estimate:
        steps = np.empty(self.x.size)
        error_bound = np.zeros(self.x.size)
        grad = np.full(self.x.size, np.nan)
        if self.method in BATCHED_METHODS:
            self.batched_gradient(grad, steps, error_bound)
        longest = MAX_RELATIVE_STEP * np.maximum(self.scale.reshape(-1), 1.0)
        redo = ~np.isfinite(grad) | (error_bound > self.noise_target)
        if self.method in BATCHED_METHODS:  # the batch already grew the steps of too-flat elements, up to the longest
            redo &= ~np.isfinite(grad) | (steps < longest)
        for flat_index in np.flatnonzero(redo):
            # one at a time: steps that left a domain, elements too flat for the longest step
            estimate = self.element(int(flat_index))
            grad[flat_index], steps[flat_index], error_bound[flat_index] = estimate.value, estimate.step, estimate.error_bound
        return Estimate(grad.reshape(self.x.shape), steps, error_bound)

    def batched_gradient(self, grad: np.ndarray, steps_out: np.ndarray, error_bound_out: np.ndarray) -> None:
        """Every element's difference quotient in vectorised passes (Evaluator.changes_at: each perturbation
        carries its change downstream); elements whose round-off swamps the difference are redone at a
        longer step, as element() does one at a time."""
        elements = np.arange(self.x.size)
        if not elements.size:
            return
        steps = self.base * self.scale.reshape(-1)
        grad[:] = self.quotients(elements, steps)
        steps_out[:] = steps
        error_bound_out[:] = self.roundoff(steps, self.method)
        too_flat = np.flatnonzero(np.isfinite(grad) & (error_bound_out > self.noise_target))
        if too_flat.size:
            longest = MAX_RELATIVE_STEP * np.maximum(self.scale.reshape(-1)[too_flat], 1.0)
            longer = np.minimum(steps[too_flat] * error_bound_out[too_flat] / (0.5 * self.noise_target), longest)
            grown = longer > steps[too_flat]
            too_flat, longer = too_flat[grown], longer[grown]
        if too_flat.size:
            values = self.quotients(too_flat, longer)
            kept = np.isfinite(values)
            grad[too_flat[kept]] = values[kept]
            steps_out[too_flat[kept]] = longer[kept]
            error_bound_out[too_flat[kept]] = self.roundoff(longer[kept], self.method)

    def quotients(self, elements: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The method's difference quotient at each element with its step, every evaluation in one batch."""
        def along(offsets):  # the objective's change with each element moved by its offset (stacked per offset)
            return self.evaluator.changes_at(self.index, np.tile(elements, len(offsets) // len(elements)), offsets)

        if self.method == "complex-step":
            return np.imag(along(1j * steps)) / steps
        if self.method == "richardson":
            return richardson_twice(along, steps)  # six batches: ±h, ±h/2, ±h/4 for every element at once
        stencil = [(offset, weight) for offset, weight in STENCILS[self.method] if offset != 0]
        changes = along(np.concatenate([offset * steps for offset, _ in stencil])).reshape(len(stencil), -1)
        # the unperturbed point's change is 0: the stencil sums the changes alone
        return sum(weight * change for (_, weight), change in zip(stencil, changes, strict=True)) / steps

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
            return richardson_twice(lambda s: self.at(i, s), h)
        if method == "complex-step":
            return float(np.imag(self.at(i, 1j * h)) / h)
        raise ValueError(method)

    def refined(self, flat_index: int, first_step: float = 0.0) -> ElementEstimate:
        """A second, more accurate estimate for an element that failed the comparison with a first one
        (taken with first_step): Richardson at a step at least ten times longer."""
        h = max(REFINE_STEP * self.scale.reshape(-1)[flat_index], 10 * first_step)
        for _ in range(8):
            value = richardson_twice(lambda s: self.at(flat_index, s), h)
            if np.isfinite(value):
                return ElementEstimate(float(value), h, 3 * self.roundoff(h / 4, "central"))
            h = self.closer(flat_index, h)
        return ElementEstimate(float("nan"), h, 0.0)

    def closer(self, flat_index: int, h: float) -> float:
        """A smaller step after one that left some op's domain (log, sqrt near 0).

        Domain boundaries are usually at 0, so the element's own magnitude bounds the step:
        a step of 1e-3 |x_i| keeps the truncation error near 1e-6 relative.
        """
        magnitude = abs(float(self.x.reshape(-1)[flat_index]))
        return min(h / 10, 1e-3 * magnitude) if magnitude > 0 else h / 10

    def one_sided(self, flat_index: int) -> Slopes:
        """The right and left slopes at the element, to tell a kink from a wrong gradient."""
        h = BASE_STEP["central"] * self.scale.reshape(-1)[flat_index]
        slopes = one_sided_slopes(lambda s: self.at(flat_index, s), self.f0, h)
        return Slopes(float(slopes.right), float(slopes.left))

    def directional(self, direction: np.ndarray) -> float:
        """d objective along x + t * direction at t = 0, by central differences (direction scaled per element)."""
        five_point = self.method in ("five-point", "richardson")
        h = BASE_STEP[self.method] if five_point else BASE_STEP["central"]
        for _ in range(6):
            if five_point:
                f2, f1, b1, b2 = self.evaluator.changes_along(self.index, direction, np.array([2 * h, h, -h, -2 * h]))
                value = (-f2 + 8 * f1 - 8 * b1 + b2) / (12 * h)
            else:
                forward, backward = self.evaluator.changes_along(self.index, direction, np.array([h, -h]))
                value = (forward - backward) / (2 * h)
            if np.isfinite(value):
                return float(value)
            h /= 10
        return float("nan")
