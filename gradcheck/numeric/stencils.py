"""Finite-difference formulas as pure functions of a callable and a step: no graph, no state."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
MAX_RELATIVE_STEP = 0.1   # the largest step a too-flat element may grow to, relative to max(|x|, 1)
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


def richardson_twice(along, h: float) -> float:
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
    return np.maximum(np.maximum(magnitude, typical), SMALLEST_SCALE)


def _median(values: np.ndarray) -> float:
    """np.median of finite values by one partition (np.median's NaN check imports numpy.ma: ~10-40 ms of start-up)."""
    middle = values.size // 2
    if values.size % 2:
        return float(np.partition(values, middle)[middle])
    low, high = np.partition(values, (middle - 1, middle))[middle - 1: middle + 1]
    return float((low + high) / 2)
