"""Finite-difference formulas as pure functions of a callable and a step: no graph, no state."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np

MACHINE_EPS = np.finfo(np.float64).eps
BASE_STEP = {
    "central": MACHINE_EPS ** (1 / 3),       # error h^2 f'''/6 + eps f / h is smallest near eps^(1/3)
    "forward": MACHINE_EPS ** (1 / 2),       # error h f''/2 + eps f / h: eps^(1/2)
    "backward": MACHINE_EPS ** (1 / 2),
    "five-point": MACHINE_EPS ** (1 / 5),    # error O(h^4): eps^(1/5)
    "richardson": MACHINE_EPS ** (1 / 7),    # two Richardson levels on central differences: error O(h^6)
    "complex-step": 1e-20,                   # no cancellation: any tiny step is exact to rounding
}
# stacked copies x + t·d of at least this many elements each are written one by one with a scalar operand, which
# costs a quarter less than broadcasting a column of steps; smaller ones in one broadcast call (fewer calls)
ROW_BY_ROW_ELEMENTS = 1024
REFINE_STEP = 1e-3  # relative step of the Richardson refinement used to re-check a failing element
# difference quotients as sum_k weight_k * f(x + offset_k * h) / h; offset 0 is the unperturbed objective
STENCILS = {
    "central": ((1, 0.5), (-1, -0.5)),
    "forward": ((1, 1.0), (0, -1.0)),
    "backward": ((0, 1.0), (-1, -1.0)),
    "five-point": ((2, -1 / 12), (1, 8 / 12), (-1, -8 / 12), (-2, 1 / 12)),
    # two Richardson levels on central differences D(s) at s = h, h/2, h/4:
    # (64 D(h/4) - 20 D(h/2) + D(h)) / 45, written out as one stencil (richardson_twice)
    "richardson": ((0.25, 128 / 45), (-0.25, -128 / 45), (0.5, -20 / 45), (-0.5, 20 / 45), (1, 1 / 90), (-1, -1 / 90)),
}
# the power of h in each stencil's leading truncation term
ORDER = {"central": 2, "forward": 1, "backward": 1, "five-point": 4, "richardson": 6}


def roundoff_weight(method: str) -> float:
    """sum_k |weight_k|: how many ulps of the objective (over h) a stencil's cancellation can amplify."""
    return float(sum(abs(weight) for offset, weight in STENCILS[method] if offset != 0)) if method in STENCILS else 1.0
SMALLEST_SCALE = 1e-150   # below this a relative step underflows; the round-off check grows it if need be


class Slopes(NamedTuple):
    """The one-sided difference quotients at a point: they disagree where the function has a kink."""

    right: float | np.ndarray
    left: float | np.ndarray


def richardson_central(along, h: float):
    """d/ds along(s) at 0 from central differences at h and h/2, combined to cancel the h² term
    (Richardson: (4 D(h/2) - D(h)) / 3, error O(h⁴)); returns the estimate and |D(h/2) - D(h)| / 3,
    an estimate of the error left in D(h/2)."""
    coarse = (along(h) - along(-h)) / (2 * h)
    fine = (along(h / 2) - along(-h / 2)) / h
    return (4 * fine - coarse) / 3, np.abs(fine - coarse) / 3


Step = TypeVar("Step", float, np.ndarray)  # one step, or one step per element


def richardson_twice(along: Callable[[Step], Step], h: Step) -> Step:
    """Two levels of Richardson extrapolation on central differences at h, h/2, h/4 (error O(h^6))."""
    d = [(along(s) - along(-s)) / (2 * s) for s in (h, h / 2, h / 4)]
    r1 = [(4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3]
    return (16 * r1[1] - r1[0]) / 15


def one_sided_slopes(along, at_zero, h: float) -> Slopes:
    """(along(h) - along(0)) / h and (along(0) - along(-h)) / h, with along(0) given."""
    return Slopes((along(h) - at_zero) / h, (at_zero - along(-h)) / h)


def element_scale(x: np.ndarray) -> np.ndarray:
    """Per-element step scale: |x_i|, but never below the node's typical magnitude (or 1 if all zero)."""
    magnitude = np.abs(x)
    typical = _median(magnitude.reshape(-1)) if magnitude.size else 0.0
    if typical == 0.0:
        typical = float(np.mean(magnitude)) if magnitude.size else 0.0
    if typical == 0.0:
        typical = 1.0
    return np.maximum(magnitude, max(typical, SMALLEST_SCALE))


def _median(values: np.ndarray) -> float:
    """np.median of finite values by one partition (np.median's NaN check imports numpy.ma: ~10-40 ms of start-up;
    a partition at two places costs several at one): for an even count, the lower middle value is the largest of
    those the partition put before the upper one."""
    middle = values.size // 2
    parted = np.partition(values, middle)
    if values.size % 2:
        return float(parted[middle])
    return float((parted[:middle].max() + parted[middle]) / 2)


class Adaptive(NamedTuple):
    """The best estimate of a step sequence: its value, the step it came from and its estimated error."""

    value: float
    step: float
    error_bound: float


SEQUENCE_RATIO = 4.0     # successive steps of the adaptive sequence shrink by this factor
SEQUENCE_LENGTH = 24     # at most this many steps (4^24 ~ 3e14: from 0.1 |x| down to round-off)


def adaptive_derivative(along, h0: float, magnitude: float, enough: float = 0.0, side: int = 0) -> Adaptive:
    """d/ds along(s) at 0 from a sequence of central differences at h0, h0/4, h0/16, ...: each pair is combined
    by Richardson (R = (16 D(h/4) - D(h)) / 15, error O(h^4)), and the estimate whose error -- the change to
    the next extrapolated value plus the round-off of its differences, ~4 eps |f| / h -- is smallest wins.

    This is the error-balancing scheme of numdifftools: long steps are dominated by truncation (the
    extrapolated values still move), short ones by round-off; in between, successive values agree.  Steps
    where along is not finite (outside a domain) are skipped.  Stops early once the error is below ``enough``
    or once round-off alone exceeds the best error.  ``side`` +1 / -1 uses one-sided differences from that
    side instead (at a domain's edge), extrapolated as R = (4 D(h/4) - D(h)) / 3 (error O(h^2)).
    """
    best = Adaptive(float("nan"), h0, float("inf"))
    gain = SEQUENCE_RATIO ** 2 if side == 0 else SEQUENCE_RATIO  # the leading error term shrinks by this per step
    at_zero = along(0.0) if side else 0.0
    d_before = r_before = r_two_before = None
    seen_change = False
    h = h0
    for _ in range(SEQUENCE_LENGTH):
        with np.errstate(all="ignore"):
            d = (along(h) - along(-h)) / (2 * h) if side == 0 else side * (along(side * h) - at_zero) / h
        if d == 0 and seen_change:
            break  # below the function's resolution (it is computed in lower precision): no step shorter helps
        seen_change = seen_change or (np.isfinite(d) and d != 0)
        if not np.isfinite(d):
            d_before = r_before = r_two_before = None
            h /= SEQUENCE_RATIO
            continue
        r = None if d_before is None else (gain * d - d_before) / (gain - 1)
        roundoff = 4 * MACHINE_EPS * magnitude / h
        if r is not None and r_before is not None and r_two_before is not None:
            # the middle value is trusted as far as its neighbours on both sides agree with it
            error = max(abs(r - r_before), abs(r_before - r_two_before)) + roundoff
            if error < best.error_bound:
                best = Adaptive(float(r_before), h * SEQUENCE_RATIO, float(error))
            if best.error_bound <= enough:
                break
            converged = best.error_bound <= 1e-6 * abs(best.value)
            if converged and error > 100 * best.error_bound:
                break  # past the converged steps into noise (or a plateau of a function computed in low precision)
        if roundoff > 10 * best.error_bound:  # shorter steps only add round-off
            break
        d_before, r_two_before, r_before = d, r_before, r
        h /= SEQUENCE_RATIO
    return best
