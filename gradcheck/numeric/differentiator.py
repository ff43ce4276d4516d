"""Finite differences of the objective with respect to one node's value, returned as estimates.

A node's elements start from h_i = base * max(|x_i|, typical |x| of the node, 1), base the scheme's
optimal relative step (cube root of machine epsilon for central differences, fifth root for
five-point, ...), and each goes on to the step its own error estimate balances (error_balanced).
A step that leaves an op's domain (NaN/Inf) is shrunk, then replaced by a one-sided difference
from the side that stays inside.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import overload

import numpy as np

from ..ops.changes import derived
from ..plaindata import FrozenPlainData
from .evaluator import Evaluator
from .stencils import (
    BASE_STEP,
    MACHINE_EPS,
    ORDER,
    REFINE_STEP,
    SEQUENCE_RATIO,
    STENCILS,
    Slopes,
    adaptive_derivative,
    element_scale,
    one_sided_slopes,
    richardson_twice,
    roundoff_weight,
)

BATCHED_METHODS = (*STENCILS, "complex-step")
MAX_STEP_LEVELS = 12   # steps tried per element by error_balanced (16^12: from a step spanning periods to round-off)
STEP_SHRINK = 16.0     # a level shortens the step by at most this factor ...
STEP_GROWTH = 16.0     # ... and lengthens it by at most this one
NOISE_STEP_GROWTH = 4.0  # ... at least this one where the truncation estimate is round-off alone
COMPLEX_STEP_SECOND = 4.0 / 3.0  # a second complex step of another mantissa: its rounding differs from the first
COMPLEX_STEP_SAMPLE = 256  # elements whose complex-step derivatives give a one-element estimate its node's scale
CHANGE_ROUNDINGS = 16.0  # roundings a perturbation's change may carry to the objective, each of a relative eps
NOISE_PROBE_SHRINK = 4.0  # a step this much shorter shows the round-off where truncation dominated (T / 4^p)
NOISE_SAFETY = 2.0     # a round-off measured from one truncation estimate is taken this much larger
QUIET_LEVELS_TRUSTED = 2  # levels whose truncation estimate is QUIET_MARGIN below M's round-off: the bound
QUIET_MARGIN = 100.0      # takes its round-off from what they show, NOISE_SAFETY_OF_BOUNDS times over
NOISE_SAFETY_OF_BOUNDS = 10.0
LONGEST_STEP = 0.1     # steps grow to at most this times max(scale, 1) (tanh is flat far out)
RESOLVED_FRACTION = 0.01  # a bound this far inside the tolerance settles the verdict ...
# ... once the estimate's error is near eps^(p / (p + 1)), what the scheme of order p reaches on a unit-scaled
# smooth function; none goes on below this fraction of it (a linear objective would lengthen its step forever)
REACHED_FRACTION = 0.1
SETTLED_NEAR_REACHED = 3.0  # ... a settled verdict stops the search within this many times eps^(p / (p + 1))
PROBE_OFFSETS = (1.0, -1.0, 0.5, -0.5, 0.25, -0.25)  # a directional estimate's steps, in units of its step h
# round-off of (64 D(h/4) - 20 D(h/2) + D(h)) / 45 with every objective change off by at most e:
# |D(s)| errs by e / s, so the estimate by (64 * 4 + 20 * 2 + 1) / 45 = 6.6 e / h
PROBE_ROUNDOFF_GAIN = 297 / 45
ADAPTIVE_LEVELS_PER_PASS = 4  # directional_adaptive evaluates this many steps of its sequence per pass


def power_of_two(steps: np.ndarray) -> np.ndarray:
    """Each step rounded to the nearest power of two, as error_balanced takes it (see there)."""
    return np.exp2(np.round(np.log2(steps)))


def shared_scale(x: np.ndarray) -> np.ndarray:
    """element_scale(x), computed once per array object while it lives (its median is a partition of the whole
    node): the local checks of x's consumers, x's own differentiator and its probes all read this one result,
    which is read-only so that none of them can change it under the others."""
    return derived(_read_only_scale, x)


def _read_only_scale(x: np.ndarray) -> np.ndarray:
    scale = element_scale(x)
    scale.setflags(write=False)
    return scale


@dataclass(frozen=True, eq=False, repr=False)
class ElementEstimate(FrozenPlainData):
    """d objective / d x_i at one element: the value, the step it was taken with, and a bound on its round-off."""

    value: float
    step: float
    error_bound: float = 0.0


@dataclass(frozen=True, eq=False, repr=False)
class DirectionalEstimate(FrozenPlainData):
    """d objective / dt of x + t * direction at t = 0: the value, the step, and its error in two parts."""

    value: float
    step: float
    truncation: float      # estimated from the change between successive extrapolations
    roundoff: float        # bound on the round-off of the stencil

    @property
    def error_bound(self) -> float:
        return self.truncation + self.roundoff

    def balanced_step(self) -> float:
        """The step at which the estimated truncation (O(h^4) for the first-level value) and round-off (O(1/h))
        would balance, from this estimate's split: minimises a h^4 + b / h at h = (b / 4a)^(1/5)."""
        if not (self.truncation > 0 and self.roundoff > 0 and np.isfinite(self.truncation)):
            return self.step
        a, b = self.truncation / self.step ** 4, self.roundoff * self.step
        return float((b / (4 * a)) ** 0.2)


@dataclass(frozen=True, eq=False, repr=False)
class Estimate(FrozenPlainData):
    """d objective / d x for every element of a node (values node-shaped, steps and bounds flat)."""

    values: np.ndarray
    steps: np.ndarray
    error_bound: np.ndarray


class NodeDifferentiator:
    """Finite differences of the objective w.r.t. the elements of one node."""

    def __init__(self, evaluator: Evaluator, index: int, method: str, eps: float | None):
        self.evaluator = evaluator
        self.index = index
        # C order: at() writes one element through a flat view, which a reshape of another layout would copy
        self.x = np.ascontiguousarray(evaluator.values[index], dtype=np.float64)
        self.shape = np.shape(evaluator.values[index])  # the node's own shape (x is at least 1-d)
        self.method = method
        self.scale = shared_scale(self.x)
        self.base = eps if eps is not None else BASE_STEP[method]
        self._magnitude: float | None = None

    @property
    def f0(self) -> float:
        return self.evaluator.f0

    @overload
    def at(self, flat_index: int, offset: float) -> float: ...
    @overload
    def at(self, flat_index: int, offset: complex) -> complex: ...

    def at(self, flat_index: int, offset: float | complex) -> float | complex:
        return self.evaluator.objectives_at(self.index, np.array([flat_index]), np.array([offset]))[0]

    def gradient(self, resolution: tuple[float, float] | None = None) -> Estimate:
        """Every element's estimate; with resolution (atol, rtol), an element's step search stops once its error
        bound is within RESOLVED_FRACTION of atol + rtol |value| (else it goes on to the float64 floor)."""
        steps = np.empty(self.x.size)
        error_bound = np.zeros(self.x.size)
        grad = np.full(self.x.size, np.nan)
        if self.method in BATCHED_METHODS:
            self.batched_gradient(grad, steps, error_bound, resolution)
        return self.completed(grad, steps, error_bound)

    def completed(self, grad: np.ndarray, steps: np.ndarray, error_bound: np.ndarray) -> Estimate:
        """The batched estimates (flat, changed in place), the elements they left NaN taken one at a time."""
        for flat_index in np.flatnonzero(~np.isfinite(grad)):
            # one at a time: steps that left a domain, failed batches
            estimate = self.element(int(flat_index))
            grad[flat_index], steps[flat_index], error_bound[flat_index] = estimate.value, estimate.step, estimate.error_bound
        return Estimate(grad.reshape(self.x.shape), steps, error_bound)

    def first_steps(self) -> np.ndarray:
        """The steps batched_gradient starts every element from."""
        # at least the unit step: weights of |x| ~ 0.05 feed objectives that vary on a scale of 1, where
        # base * |x| is round-off bound (and a step too long for a steep function is shortened level by level);
        # complex-step has no round-off to balance
        unit = 0.0 if self.method == "complex-step" else 1.0
        return self.base * np.maximum(self.scale.reshape(-1), unit)

    def batched_gradient(self, grad: np.ndarray, steps_out: np.ndarray, error_bound_out: np.ndarray,
                         resolution: tuple[float, float] | None = None) -> None:
        """Every element's derivative in vectorised passes (Evaluator.changes_at: each perturbation carries its
        change downstream), at a step chosen per element from an error estimate (error_balanced)."""
        elements = np.arange(self.x.size)
        if not elements.size:
            return
        found = self.error_balanced(elements, self.method, self.first_steps(), resolution=resolution)
        grad[:], steps_out[:], error_bound_out[:] = found.values, found.steps, found.error_bound

    def error_balanced(self, elements: np.ndarray, method: str, first_steps: np.ndarray,
                       enough: np.ndarray | float = 0.0,
                       resolution: tuple[float | np.ndarray, float | np.ndarray] | None = None) -> Estimate:
        """The method's derivative at each element, at the step its own error estimate says is best, all elements
        at once.

        At each step h the quotient Q comes with an estimate T of its truncation error (quotient_and_truncation:
        from Q(2h), or for central differences from one more point), and the round-off is R = 4 eps w M / h (w the
        stencil's sum of |weights|, M the largest magnitude on the way to the objective).  The step that
        balances them, h (R / (p T))^(1 / (p + 1)), is tried next wherever it promises an error less than half
        the best so far (at most 16x shorter or 4x longer per level: a step that spans periods of a periodic
        function or reaches a pole gives a T that only says "shorter"), until no element gains or its error is
        within ``enough`` (and, given resolution = (atol, rtol), within RESOLVED_FRACTION of atol + rtol |value|).
        Each element keeps its estimate of smallest bound T + R (or 2^p T + R/2 at 2h);
        complex-step has no truncation to speak of and is taken once.  Values are NaN where no step stayed in
        the ops' domains (the caller takes those elements one at a time).  The resolution's atol and rtol may be
        arrays, one value per element (JointDifferentiator: the elements of several nodes).
        """
        count = elements.size
        values = np.full(count, np.nan)
        bounds = np.full(count, np.inf)
        h = np.asarray(first_steps, dtype=np.float64).copy()
        chosen = h.copy()
        if method == "complex-step":
            return self.complex_step(elements, h)
        order, weight = ORDER[method], roundoff_weight(method)
        magnitudes = self.magnitudes_at(elements)
        settles = None if resolution is None else (np.broadcast_to(resolution[0], (count,)),
                                                   np.broadcast_to(resolution[1], (count,)))
        gain = 2.0 ** order  # the truncation of Q(2h) is this times Q(h)'s
        enough = np.broadcast_to(np.asarray(enough, dtype=np.float64), (count,))
        scores = np.full(count, np.inf)
        misses = np.zeros(count, dtype=int)
        # the kept estimate's truncation, and its round-off per unit of noise scale (noise / h)
        kept_truncation, kept_per_step = np.full(count, np.inf), np.zeros(count)
        noise_scale = np.full(count, np.inf)  # round-off of the quotient times h, measured (else modelled)
        noise_measured = np.zeros(count, dtype=bool)  # whether a level's truncation estimate has shown it
        truncation_coefficient = np.full(count, np.nan)  # a in T = a h^p, from the last level T was not noise at
        probed = np.zeros(count, dtype=bool)  # whether a shorter step was taken to measure the round-off
        quiet_levels = np.zeros(count, dtype=int)  # levels whose truncation estimate was far below M's round-off
        shown_scale = np.zeros(count)  # the largest magnitude those levels' estimates would be the round-off of
        last_step, last_truncation = np.full(count, np.inf), np.full(count, np.inf)
        pending = np.arange(count)
        for _ in range(MAX_STEP_LEVELS):
            if not pending.size:
                break
            # a power of two, so that x + m h is exact for the stencil's multipliers m: otherwise, at |x| >> h,
            # the step actually taken differs from h by up to ulp(x) (relative 6e-5 at x = 1e6, h = 2e-6)
            h[pending] = power_of_two(h[pending])
            near, truncation, far = self.quotient_and_truncation(elements[pending], method, h[pending])
            with np.errstate(all="ignore"):
                # the step is chosen by the round-off the objective itself would show: changes are carried
                # without cancelling against the values on the way, whose magnitudes only bound it
                likely_scale = 2 * MACHINE_EPS * weight * max(abs(self.f0), 1e-300)
                likely = likely_scale / h[pending]
                # a truncation estimate no larger than the round-off its own differences carry is noise: the true
                # truncation is smaller still, so the step is longer than balancing that noise would say; and
                # that noise, measured, is the round-off the quotient actually shows (often far below `likely`)
                # (noise shrinks as the step grows, truncation grows: an estimate above the last level's is not noise)
                noise_only = (np.isfinite(truncation) & (truncation <= self.truncation_noise(method, likely))
                              & ~((h[pending] > last_step[pending]) & (truncation > last_truncation[pending])))
                last_step[pending], last_truncation[pending] = h[pending], truncation
                # (at least 1/64 of the model's: an estimate of exactly 0 is chance, not an exact change; an offset no
                # change carries, sum(sin(x)) + 100, puts the model 100x above what the changes show)
                observed = np.maximum(NOISE_SAFETY * truncation * h[pending] * likely
                                      / self.truncation_noise(method, likely), likely_scale / 64)
                # the largest round-off the noise-only levels showed (the model's until one has)
                measured = np.where(noise_only & ~noise_measured[pending], observed,
                                    np.maximum(noise_scale[pending], np.where(noise_only, observed, 0.0)))
                noise_measured[pending] |= noise_only
                noise_scale[pending] = np.minimum(measured, likely_scale)
                shows_truncation = ~noise_only & np.isfinite(truncation) & (truncation > 0)
                truncation_coefficient[pending[shows_truncation]] = (truncation / h[pending] ** order)[shows_truncation]
                # the bound's round-off, 4 eps w S / h: S = M, the largest value on the way, unless levels showed
                # truncation estimates far below the round-off M would put in them (a 1e12 divided out again is
                # exact): then S is what those estimates show, NOISE_SAFETY_OF_BOUNDS times over, at least |f0|
                magnitude = magnitudes[pending]
                modelled = 4 * MACHINE_EPS * weight * magnitude / h[pending]
                quiet = truncation <= self.truncation_noise(method, modelled) / QUIET_MARGIN
                shown = truncation * magnitude / self.truncation_noise(method, modelled)
                quiet_levels[pending] += quiet
                shown_scale[pending] = np.maximum(shown_scale[pending], np.where(quiet, shown, 0.0))
                roundoff_scale = np.where(quiet_levels[pending] >= QUIET_LEVELS_TRUSTED, np.minimum(magnitude,
                                          np.maximum(abs(self.f0), NOISE_SAFETY_OF_BOUNDS * shown_scale[pending])),
                                          magnitude)
                roundoff = 4 * MACHINE_EPS * weight * roundoff_scale / h[pending]
                # the steps kept so far are rescored with the round-off measured since
                scores[pending] = kept_truncation[pending] + kept_per_step[pending] * noise_scale[pending]
                bounds[pending] = np.where(np.isfinite(kept_truncation[pending]), kept_truncation[pending]
                                           + kept_per_step[pending] * roundoff * h[pending], np.inf)
                likely = noise_scale[pending] / h[pending]
                improved = np.zeros(pending.size, dtype=bool)
                candidates = [(near, truncation, 1.0, h[pending])]
                if far is not None:
                    candidates.append((far, gain * truncation, 0.5, 2 * h[pending]))
                for value, trunc, noise, step in candidates:
                    score = trunc + noise * likely
                    better = np.isfinite(value) & np.isfinite(score) & (score < scores[pending])
                    take = pending[better]
                    values[take], scores[take], chosen[take] = value[better], score[better], step[better]
                    kept_truncation[take], kept_per_step[take] = trunc[better], noise / h[take]
                    bounds[take] = (trunc + noise * roundoff)[better]
                    improved |= better
                ratio = np.where(truncation > 0, (likely / (order * truncation)) ** (1 / (order + 1)), 1.0)
                ratio[noise_only] = np.maximum(ratio[noise_only], NOISE_STEP_GROWTH)
                # round-off measured after a level showed the truncation a h^p: the step balancing the two,
                # (noise / (p a))^(1 / (p + 1)), straight away -- where a h^p predicts this level's estimate to
                # be noise, as it is (a stencil that reached past a kink showed no h^p: its a is no model)
                coefficient = truncation_coefficient[pending]
                predicted = coefficient * h[pending] ** order
                rebalanced = (noise_only & np.isfinite(coefficient)
                              & (predicted <= self.truncation_noise(method, likely_scale / h[pending])))
                ratio[rebalanced] = ((noise_scale[pending] / (order * coefficient)) ** (1 / (order + 1))
                                     / h[pending])[rebalanced]
                ratio = np.clip(ratio, 1 / STEP_SHRINK, STEP_GROWTH)
                left_domain = ~(np.isfinite(near) & np.isfinite(truncation))
                ratio[left_domain] = 1 / STEP_SHRINK
                misses[pending] = np.where(improved, 0, misses[pending] + 1)
                promised = np.where(noise_only, likely / ratio, truncation * ratio ** order + likely / ratio)
                # truncation far above any round-off: not yet in the range where the estimate means anything
                # (a step spanning periods of sin): shorten whatever the levels so far found
                unresolved = truncation > 100 * likely_scale / h[pending]
                ratio[unresolved] = np.minimum(ratio[unresolved], 1 / STEP_GROWTH)
                # no element needs more than a tenth of what the scheme reaches on a unit-scaled smooth function,
                # eps^(p / (p + 1)) (a linear objective would otherwise lengthen its step level after level)
                reachable = MACHINE_EPS ** (order / (order + 1)) * np.maximum(1.0, np.abs(values[pending]))
                at_floor = scores[pending] <= REACHED_FRACTION * reachable
                # a level whose truncation estimate is round-off alone promises nothing but that round-off shrunk by
                # the step's growth: an element already within SETTLED_NEAR_REACHED of what the scheme reaches keeps
                # it (the longer step can gain no more than that factor, the margin a settled verdict accepts, and
                # its truncation, hidden in the noise, may as well grow 2^p-fold per doubling)
                at_floor |= noise_only & (scores[pending] <= SETTLED_NEAR_REACHED * reachable)
                done = bounds[pending] <= enough[pending]
                if settles is not None:
                    # a bound that settles the verdict ends the search only near what the scheme reaches: a
                    # short first step (|x| ~ 0.05 on an objective varying on a scale of 1) would otherwise keep
                    # an estimate 10-100 times above it
                    allowed = settles[0][pending] + settles[1][pending] * np.abs(values[pending])
                    settled = bounds[pending] <= RESOLVED_FRACTION * allowed
                    done |= settled & (scores[pending] <= SETTLED_NEAR_REACHED * reachable)
                goes_on = ((left_domain | unresolved | ((promised < 0.7 * scores[pending]) & ((truncation > 0) | noise_only)))
                           & ~done & ~at_floor & ((misses[pending] < 2) | unresolved))
                # balanced against modelled round-off (2 eps w |f0| / h, often far above what the changes carry)
                # and still above what the scheme reaches: measure the round-off at a shorter step, where the
                # truncation estimate is noise alone
                measure = (~goes_on & ~done & ~noise_measured[pending] & ~probed[pending] & shows_truncation
                           & ~left_domain & (scores[pending] > SETTLED_NEAR_REACHED * reachable))
                probed[pending[measure]] = True
                ratio[measure] = 1 / NOISE_PROBE_SHRINK
                goes_on |= measure
            longest = LONGEST_STEP * np.maximum(self.scale.reshape(-1)[elements[pending]], 1.0)
            goes_on &= ~((ratio > 1) & (h[pending] >= longest))  # a flat stretch far away is no derivative
            h[pending] = np.minimum(h[pending] * ratio, np.maximum(longest, h[pending]))
            pending = pending[goes_on & (h[pending] > 0)]
        # the quotient is never more exact than its own arithmetic: the change at offset m h, |c| ~ |m h Q|, comes
        # out of a chain of rounded operations, so Q errs by ~ (chain) eps sum_k |w_k m_k| |Q| at any step (a
        # linear objective, whose truncation estimates are exactly 0, shows no other round-off)
        arithmetic = CHANGE_ROUNDINGS * MACHINE_EPS * sum(abs(w * m) for m, w in STENCILS[method]) * np.abs(values)
        return Estimate(values, chosen, bounds + np.nan_to_num(arithmetic))

    def quotient_and_truncation(self, elements: np.ndarray, method: str,
                                steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The method's difference quotient at each step, an estimate of its truncation error, and (except for
        central differences) the quotient at twice the step, from one batch of evaluations.

        Central differences take one more point instead of a second pair: with c(s) the objective's change at
        offset s, c(2h) - 3 c(h) - c(-h) = h^3 f^(3) + O(h^4) (Taylor), so the truncation error h^2 f^(3) / 6
        of (c(h) - c(-h)) / 2h costs one evaluation, not two.  Otherwise T = |Q(2h) - Q(h)| / (2^p - 1), with
        the offsets the two stencils share (five-point's 2h, Richardson's h and h/2) evaluated once."""
        stencil = [(float(offset), weight) for offset, weight in STENCILS[method] if offset != 0]
        if method == "central":
            multipliers = [-1.0, 1.0, 2.0]
        else:
            multipliers = sorted({m for offset, _ in stencil for m in (offset, 2 * offset)})
        changes = self.changes_at(np.tile(elements, len(multipliers)), np.concatenate([m * steps for m in multipliers]))
        by_multiplier = dict(zip(multipliers, changes.reshape(len(multipliers), -1), strict=True))
        # the unperturbed point's change is 0: a stencil sums the changes alone
        near = sum(weight * by_multiplier[offset] for offset, weight in stencil) / steps
        if method == "central":
            third = by_multiplier[2.0] - 3 * by_multiplier[1.0] - by_multiplier[-1.0]
            return near, np.abs(third) / (6 * steps), None
        far = sum(weight * by_multiplier[2 * offset] for offset, weight in stencil) / (2 * steps)
        return near, np.abs(far - near) / (2.0 ** ORDER[method] - 1), far

    def changes_at(self, elements: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The objective's change with element elements[k] moved by offsets[k] (Evaluator.changes_at)."""
        return self.evaluator.changes_at(self.index, elements, offsets)

    def magnitudes_at(self, elements: np.ndarray) -> np.ndarray:
        """The magnitude each element's round-off is relative to (the node's: see magnitude)."""
        return np.full(np.size(elements), self.magnitude)

    @staticmethod
    def truncation_noise(method: str, likely: np.ndarray) -> np.ndarray:
        """The round-off of quotient_and_truncation's truncation estimate, given that of the quotient (likely):
        central's |c(2h) - 3 c(h) - c(-h)| / 6h sums 5 changes' errors over 6h against the quotient's 2 over 2h;
        |Q(2h) - Q(h)| / (2^p - 1) carries Q(h)'s error and half of it again (Q(2h) divides by twice the step)."""
        if method == "central":
            return 5 / 6 * likely
        return 1.5 * likely / (2.0 ** ORDER[method] - 1)

    def complex_step(self, elements: np.ndarray, steps: np.ndarray, node_scale: float = 0.0) -> Estimate:
        """Im f(x + i h e_k) / h at each element k, with its error bound (error_of_complex_step, the node's largest
        derivative at least node_scale): the quotients at h and at COMPLEX_STEP_SECOND h, the second a step of
        another mantissa (rounded differently: the two differ by the rounding of the terms the imaginary part
        sums, which cancel in neither), in one batched evaluation of the two copies of every element."""
        elements = np.asarray(elements, dtype=np.intp).reshape(-1)
        steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), elements.shape)
        both = np.concatenate([steps, COMPLEX_STEP_SECOND * steps])
        with np.errstate(all="ignore"):
            quotients = np.imag(self.evaluator.changes_at(self.index, np.tile(elements, 2), 1j * both)) / both
        values, again = quotients[:elements.size], quotients[elements.size:]
        return Estimate(values, steps.copy(), self.error_of_complex_step(values, again, node_scale))

    @cached_property
    def complex_step_scale(self) -> float:
        """The largest |complex-step derivative| among up to COMPLEX_STEP_SAMPLE evenly spaced elements of the node
        (one batched evaluation): the node term of a one-element estimate's bound, whose node's other derivatives
        are not at hand.  Measured on the shipped specs, the spread of the two steps alone leaves 1,649 of
        20,369 elements beyond their bound (up to 51x); the node's largest derivative covers them, and a sample of
        256 elements gives it closely enough (none beyond; 16 leave 37, by up to 1.8x)."""
        elements = np.unique(np.linspace(0, self.x.size - 1, min(self.x.size, COMPLEX_STEP_SAMPLE)).astype(np.intp))
        steps = BASE_STEP["complex-step"] * self.scale.reshape(-1)[elements]
        with np.errstate(all="ignore"):
            magnitudes = np.abs(np.imag(self.evaluator.changes_at(self.index, elements, 1j * steps)) / steps)
        return float(np.max(magnitudes, initial=0.0, where=np.isfinite(magnitudes)))

    def error_of_complex_step(self, values: np.ndarray, again: np.ndarray, node_scale: float = 0.0) -> np.ndarray:
        """complex-step has no cancellation between evaluations, but its imaginary part is a sum of terms along
        the paths from the element to the objective, each rounded at its own size, which the element's own
        derivative may be far below (0.1 + 0.2 - 0.3): the bound is a few ulps of the value and of the node's
        largest derivative, and, measured, twice the spread between ``values`` and ``again`` (the same
        derivatives at a step of another mantissa, rounded differently)."""
        magnitudes = np.abs(values)
        largest = float(np.max(magnitudes, initial=node_scale, where=np.isfinite(magnitudes)))
        spread = np.abs(values - again)
        return 4 * MACHINE_EPS * (magnitudes + largest) + 2 * np.where(np.isfinite(spread), spread, 0.0)

    def element(self, flat_index: int, method: str | None = None) -> ElementEstimate:
        method = method or self.method
        h = float(BASE_STEP[method] if method != self.method else self.base) * self.scale.reshape(-1)[flat_index]
        if method in STENCILS:  # the step from the error estimate, as in the batched pass
            found = self.error_balanced(np.array([flat_index]), method, np.array([h]))
            if np.isfinite(found.values[0]):
                return ElementEstimate(float(found.values[0]), float(found.steps[0]), float(found.error_bound[0]))
        for _ in range(8):
            if method == "complex-step":
                stepped = self.complex_step_at(flat_index, h)
                if stepped is not None:
                    return stepped
            else:
                value = self._scheme(method, flat_index, h)
                if np.isfinite(value):
                    return ElementEstimate(float(value), h, self.roundoff(h, method))
            h = self.closer(flat_index, h)  # the step left the domain of some op downstream
        for side in (+1, -1):  # last resort: the one side that stays inside the domain
            value = self._scheme("forward" if side > 0 else "backward", flat_index, h)
            if np.isfinite(value):
                return ElementEstimate(float(value), h, self.roundoff(h, "forward"))
        return ElementEstimate(float("nan"), h, 0.0)

    def complex_step_at(self, flat_index: int, h: float) -> ElementEstimate | None:
        """complex_step at one element, its bound taking the node's scale from a sample (complex_step_scale); None
        where the step left some op's domain."""
        found = self.complex_step(np.array([flat_index]), np.array([h]), self.complex_step_scale)
        if not np.isfinite(found.values[0]):
            return None
        return ElementEstimate(float(found.values[0]), h, float(found.error_bound[0]))

    @property
    def complex_step_allowed(self) -> bool:
        return self.evaluator.complex_safe(self.index) is None

    def adaptive(self, flat_index: int, enough: float = 0.0) -> ElementEstimate:
        """The most accurate estimate float64 allows at one element: complex-step where every op downstream is
        analytic, else the error-balancing step sequence of stencils.adaptive_derivative."""
        if self.complex_step_allowed:
            stepped = self.complex_step_at(flat_index, BASE_STEP["complex-step"] * float(self.scale.reshape(-1)[flat_index]))
            if stepped is not None:
                return stepped
        h0 = 0.1 * float(self.scale.reshape(-1)[flat_index])
        found = adaptive_derivative(lambda s: self.at(flat_index, s), h0, self.magnitude, enough)
        if not np.isfinite(found.value):  # at a domain's edge: the side that stays inside
            sides = [adaptive_derivative(lambda s: self.at(flat_index, s), h0, self.magnitude, enough, side)
                     for side in (-1, 1)]
            found = min(sides, key=lambda a: a.error_bound if np.isfinite(a.value) else np.inf)
        return ElementEstimate(found.value, found.step, found.error_bound)

    def most_accurate(self, elements: np.ndarray, enough: np.ndarray | float = 0.0) -> Estimate:
        """adaptive() for many elements at once, in vectorised passes: complex-step where every op downstream is
        analytic, else Richardson at error-balanced steps (error_balanced); an element neither gives a finite
        value for (at a domain's edge) gets adaptive()'s one-sided sequences on its own."""
        elements = np.asarray(elements, dtype=np.intp).reshape(-1)
        scale = self.scale.reshape(-1)[elements]
        values, steps, bounds = np.full(elements.size, np.nan), np.zeros(elements.size), np.full(elements.size, np.inf)
        if self.complex_step_allowed and elements.size:
            # some of the node's elements: their bounds take its scale from a sample (complex_step_scale)
            node_scale = self.complex_step_scale if elements.size < self.x.size else 0.0
            found = self.complex_step(elements, BASE_STEP["complex-step"] * scale, node_scale)
            values[:], steps[:], bounds[:] = found.values, found.steps, found.error_bound
        rest = np.flatnonzero(~np.isfinite(values))
        if rest.size:
            enough = np.broadcast_to(np.asarray(enough, dtype=np.float64), (elements.size,))
            found = self.error_balanced(elements[rest], "richardson", BASE_STEP["richardson"] * scale[rest], enough[rest])
            values[rest], steps[rest], bounds[rest] = found.values, found.steps, found.error_bound
        for k in np.flatnonzero(~np.isfinite(values)):
            one = self.adaptive(int(elements[k]), float(np.broadcast_to(enough, (elements.size,))[k]))
            values[k], steps[k], bounds[k] = one.value, one.step, one.error_bound
        return Estimate(values, steps, bounds)

    def directional_at(self, directions: np.ndarray, h: float) -> list[DirectionalEstimate]:
        """d objective / dt of x + t * direction at t = 0 for each direction stacked on axis 0 (scaled per element),
        all six evaluations of every direction in one batched pass: see directional_estimates."""
        return directional_estimates([self], [directions], h)[0]

    def probe_steps(self, directions: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(directions, which, steps) of the evaluations directional_at takes: PROBE_OFFSETS of h per direction."""
        count = np.shape(directions)[0]
        directions = np.asarray(directions, dtype=np.float64).reshape((count,) + self.shape)
        steps = h * np.array(PROBE_OFFSETS)
        return directions, np.repeat(np.arange(count), steps.size), np.tile(steps, count)

    def extrapolated(self, changes: np.ndarray, h: float) -> list[DirectionalEstimate]:
        """The estimates from the objective's changes at PROBE_OFFSETS of h (one row per direction): central
        differences at h, h/2 and h/4 combined by two levels of Richardson extrapolation.  Error: the change
        between the two first-level values (the error left in the finer one, which bounds that of the
        extrapolated value) plus the round-off of the stencil."""
        return extrapolated(changes, h, self.operand_magnitude)



    def directional_adaptive(self, direction: np.ndarray, enough: float = 0.0) -> DirectionalEstimate:
        """The same derivative from the error-balancing step sequence of stencils.adaptive_derivative (for a
        direction the fixed-step estimate cannot resolve), its steps evaluated a few levels per batched pass."""
        known: dict[float, float] = {0.0: 0.0}  # the objective's change; none at t = 0

        def along(t: float) -> float:
            if t not in known:
                levels = t / SEQUENCE_RATIO ** np.arange(ADAPTIVE_LEVELS_PER_PASS)
                steps = np.concatenate([levels, -levels])
                changes = self.evaluator.changes_along(self.index, np.reshape(direction, self.shape), steps)
                known.update(zip(steps.tolist(), changes.tolist(), strict=True))
            return known[t]

        found = adaptive_derivative(along, 0.1, self.magnitude, enough)
        roundoff = min(self.roundoff(found.step, "central"), found.error_bound)  # the sequence's own round-off term
        return DirectionalEstimate(found.value, found.step, found.error_bound - roundoff, roundoff)

    @cached_property
    def operand_magnitude(self) -> float:
        """The magnitude round-off is relative to along a direction: that of the objective and the values met
        downstream, and of every argument the ops downstream read (products that cancel, x·w summing to 0,
        leave their ulps in a zero output)."""
        graph, magnitudes = self.evaluator.graph, self.evaluator.magnitudes
        operands = [magnitudes[arg] for j in graph.downstream(self.index) for arg in graph.nodes[j].args]
        scale = 1.0 if self.evaluator.projection is None else float(np.max(np.abs(self.evaluator.projection)))
        return max(self.magnitude, scale * max(operands, default=0.0))

    @overload
    def roundoff(self, h: float, method: str) -> float: ...
    @overload
    def roundoff(self, h: np.ndarray, method: str) -> np.ndarray | float: ...

    def roundoff(self, h: float | np.ndarray, method: str) -> float | np.ndarray:
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

    def _scheme(self, method: str, i: int, h: float) -> float:
        if method in STENCILS:
            return sum(weight * (self.f0 if offset == 0 else self.at(i, offset * h)) for offset, weight in STENCILS[method]) / h
        if method == "richardson":
            return richardson_twice(lambda s: self.at(i, s), h)
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

    def branch_slopes(self, flat_index: int, h: float) -> Slopes:
        """The slopes of the two branches met at a kink near the element, from points away from it on each side.

        D(h) = (f(x+h) - f(x+h/2)) / (h/2) = f'+ + (3h/4) f'' + O(h²), so 2 D(h/2) - D(h) = f'+ + O(h²) (Richardson);
        with no quotient reaching back to x itself, a kink a little beside x (within h/4) does not add the
        (f(x) - f(kink)) / h term that a quotient from x would carry."""
        return self.branch_slopes_at(np.array([flat_index]), np.array([h]))[0]

    def branch_slopes_at(self, flats: np.ndarray, steps: np.ndarray) -> list[Slopes]:
        """branch_slopes(flats[k], steps[k]) for every k, in one batched pass."""
        h = np.asarray(steps, dtype=np.float64).reshape(-1, 1)
        offsets = np.array([1.0, 0.5, 0.25, -0.25, -0.5, -1.0]) * h
        c = self.evaluator.changes_at(self.index, np.repeat(np.asarray(flats, dtype=np.intp), 6), offsets.reshape(-1))
        c = c.reshape(-1, 6).T
        right_coarse, right_fine = (c[0] - c[1]) / (h[:, 0] / 2), (c[1] - c[2]) / (h[:, 0] / 4)
        left_coarse, left_fine = (c[4] - c[5]) / (h[:, 0] / 2), (c[3] - c[4]) / (h[:, 0] / 4)
        return [Slopes(float(right), float(left)) for right, left in
                zip(2 * right_fine - right_coarse, 2 * left_fine - left_coarse, strict=True)]

    def one_sided(self, flat_index: int, h: float | None = None) -> Slopes:
        """The right and left slopes at the element (step h, default the central step), to tell a kink from a
        wrong gradient."""
        h = BASE_STEP["central"] * self.scale.reshape(-1)[flat_index] if h is None else h
        slopes = one_sided_slopes(lambda s: self.at(flat_index, s), self.f0, h)
        return Slopes(float(slopes.right), float(slopes.left))


class JointDifferentiator(NodeDifferentiator):
    """The elements of several nodes of one graph end to end, for NodeDifferentiator.error_balanced: every level
    of the step search takes the stencil points of all of them in one sweep downstream (Evaluator.
    changes_at_sources), so a small graph costs a pass per level, not one per node and level.  Each element's
    arithmetic is its own node's (its magnitude, scale and resolution), so its estimate is the one its node's
    search would find; the methods of one node's elements (at, element, branch_slopes) are not for this class."""

    def __init__(self, parts: list[NodeDifferentiator]):
        methods = {(part.method, part.base) for part in parts}
        if len(methods) != 1 or parts[0].method not in STENCILS:
            raise ValueError("joint differences take the nodes of one real stencil and base step")
        self.parts = parts
        self.evaluator = parts[0].evaluator
        self.index = -1  # no one node
        self.method, self.base = parts[0].method, parts[0].base
        self.x = np.concatenate([part.x.reshape(-1) for part in parts])
        self.shape = self.x.shape
        self.scale = np.concatenate([part.scale.reshape(-1) for part in parts])
        sizes = [part.x.size for part in parts]
        self.starts = np.cumsum([0] + sizes)
        self._magnitudes = np.repeat([part.magnitude for part in parts], sizes)
        self._magnitude = None

    def magnitudes_at(self, elements: np.ndarray) -> np.ndarray:
        return self._magnitudes[elements]

    def changes_at(self, elements: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        # the copies grouped by the part they move (in their order within each part): one slice per part
        owner = np.searchsorted(self.starts, elements, side="right") - 1
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(len(self.parts) + 1)).tolist()
        sources = {}
        for k, part in enumerate(self.parts):
            if bounds[k + 1] > bounds[k]:
                mine = order[bounds[k]: bounds[k + 1]]
                sources[part.index] = (elements[mine] - self.starts[k], offsets[mine])
        found = self.evaluator.changes_at_sources(sources)
        changes = np.empty(np.size(elements))
        changes[order] = np.concatenate([found[index] for index in sources]) if sources else []
        return changes

    def gradients(self, resolutions: list[tuple[float, float] | None], enough: np.ndarray | float = 0.0) -> list[Estimate]:
        """Each part's gradient() (resolutions[k]: part k's, or None to search to the float64 floor); ``enough``:
        error_balanced's, one value per element of the parts end to end."""
        # no resolution: a bound below -inf never settles the verdict
        atol = np.repeat([r[0] if r is not None else -np.inf for r in resolutions], np.diff(self.starts))
        rtol = np.repeat([r[1] if r is not None else 0.0 for r in resolutions], np.diff(self.starts))
        first_steps = np.concatenate([part.first_steps() for part in self.parts])
        found = self.error_balanced(np.arange(self.x.size), self.method, first_steps, enough, resolution=(atol, rtol))
        estimates = []
        for k, part in enumerate(self.parts):
            mine = slice(self.starts[k], self.starts[k + 1])
            estimates.append(part.completed(found.values[mine].copy(), found.steps[mine].copy(),
                                            found.error_bound[mine].copy()))
        return estimates


def extrapolated(changes: np.ndarray, h: float, operand_magnitude: float) -> list[DirectionalEstimate]:
    """NodeDifferentiator.extrapolated, with the magnitude its round-off is relative to given."""
    changes = changes.reshape(-1, len(PROBE_OFFSETS))
    steps = h * np.array(PROBE_OFFSETS)
    # D(s) = (c(s) - c(-s)) / 2s at s = h, h/2, h/4; R = (4 D(s/2) - D(s)) / 3 cancels the s^2 term
    d1, d2, d3 = ((changes[:, 2 * k] - changes[:, 2 * k + 1]) / (2 * steps[2 * k]) for k in range(3))
    coarse, fine = (4 * d2 - d1) / 3, (4 * d3 - d2) / 3
    values = (16 * fine - coarse) / 15       # = (64 D(h/4) - 20 D(h/2) + D(h)) / 45, error O(h^6)
    roundoff = PROBE_ROUNDOFF_GAIN * 4 * MACHINE_EPS * operand_magnitude / h
    return [DirectionalEstimate(float(v), h, float(abs(f - c) / 15), roundoff)
            for v, f, c in zip(values, fine, coarse, strict=True)]


def directional_estimates(differs: list[NodeDifferentiator], directions: list[np.ndarray],
                          h: float) -> list[list[DirectionalEstimate]]:
    """NodeDifferentiator.directional_at for several nodes of one graph, all their evaluations in one sweep
    downstream (Evaluator.changes_along_sources): directions[k] stacks the directions of node differs[k]."""
    if not differs:
        return []
    evaluator = differs[0].evaluator
    sources = {differ.index: differ.probe_steps(stacked, h) for differ, stacked in zip(differs, directions, strict=True)}
    changes = evaluator.changes_along_sources(sources)
    return [differ.extrapolated(changes[differ.index], h) for differ in differs]


def joint_directional_estimate(differs: list[NodeDifferentiator], directions: list[np.ndarray],
                               h: float) -> DirectionalEstimate | None:
    """d objective / dt when the nodes of ``differs`` all move at once, node k by t * directions[k] added to
    its value (Evaluator.changes_along_together): the sum of their directional derivatives, from the six steps
    of directional_at in one sweep of six copies.  None where some op left its domain."""
    evaluator = differs[0].evaluator
    steps = h * np.array(PROBE_OFFSETS)
    moved = {differ.index: np.reshape(direction, differ.shape) for differ, direction in zip(differs, directions, strict=True)}
    changes = evaluator.changes_along_together(moved, steps)
    if changes is None:
        return None
    return extrapolated(changes, h, joint_operand_magnitude(evaluator, set(moved)))[0]


def joint_operand_magnitude(evaluator: Evaluator, moved: set[int]) -> float:
    """The largest of the nodes' operand_magnitude, in one pass: the objective's and every value and argument
    met downstream of any of them."""
    graph, magnitudes = evaluator.graph, evaluator.magnitudes
    reached, path, operands = set(moved), 0.0, 0.0
    for node in graph.nodes[min(moved) + 1: graph.output + 1]:
        if graph.reaches_output[node.index] and any(arg in reached for arg in node.args):
            reached.add(node.index)
            path = max(path, magnitudes[node.index])
            operands = max([operands, *(magnitudes[arg] for arg in node.args)])
    scale = 1.0 if evaluator.projection is None else float(np.max(np.abs(evaluator.projection)))
    return max(abs(evaluator.f0), scale * path, scale * operands, 1e-300)
