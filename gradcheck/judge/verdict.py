"""The one element-wise verdict: does an analytic value agree with a numeric reference?

An element passes when |a - n| <= atol + rtol |n| + e, with e a bound on the reference's own
error (round-off, truncation) where it has one -- but only when that bound is itself within the
tolerance: a reference too noisy to resolve the tolerance cannot vouch for a pass.  Then the
element is INCONCLUSIVE, unless it is off by more than the tolerance and the noise together (FAIL).
An element that does not pass is at a kink when the one-sided slopes there disagree (by more than
the tolerance) and the analytic value lies between them: a one-sided derivative, status KINK.
Anything else fails, NaN included.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..numeric import Slopes
from ..results import ElementOutcome, Outcome, Status
from ..spec import Tolerance

MAX_LISTED_ELEMENTS = 20  # failing (and kink) elements a result lists, the worst first; the counts cover all


def allowed_error(reference, tol: Tolerance, error_bound=0.0):
    return tol.atol + tol.rtol * np.abs(reference) + error_bound


def agrees(analytic, reference, tol: Tolerance, error_bound=0.0):
    """|a - n| <= atol + rtol |n| + error_bound, element-wise (False wherever either is NaN)."""
    with np.errstate(invalid="ignore"):
        return np.abs(analytic - reference) <= allowed_error(reference, tol, error_bound)


def resolved(reference, tol: Tolerance, error_bound):
    """The reference's error bound is within the tolerance: its verdict can be trusted either way."""
    with np.errstate(invalid="ignore"):
        return np.asarray(error_bound) <= allowed_error(reference, tol)


def at_kink(analytic, slopes: Slopes, tol: Tolerance):
    """The one-sided slopes differ by more than the tolerance and the analytic value lies between them."""
    right, left = np.asarray(slopes.right, dtype=np.float64), np.asarray(slopes.left, dtype=np.float64)
    low, high = np.minimum(right, left), np.maximum(right, left)
    bound = tol.atol + tol.rtol * np.maximum(np.abs(right), np.abs(left))
    with np.errstate(invalid="ignore"):
        return (np.isfinite(low) & np.isfinite(high) & (high - low > bound)
                & (low - bound <= analytic) & (analytic <= high + bound))


class Verdicts(NamedTuple):
    """Element-wise verdicts as boolean masks; an element in none of them passes."""

    failing: np.ndarray
    kinks: np.ndarray
    inconclusive: np.ndarray


def classify(analytic, reference, tol: Tolerance, error_bound=0.0, slopes: Slopes | None = None) -> Verdicts:
    """The verdict on every element; without slopes no element is a kink."""
    with np.errstate(invalid="ignore"):
        # agrees() and resolved() in one, sharing the tolerance's part atol + rtol |n|
        allowed = allowed_error(reference, tol)
        ok = np.abs(analytic - reference) <= allowed + error_bound
        unresolved = ok & (np.asarray(error_bound) > allowed)
    if slopes is None:
        return Verdicts(failing=~ok, kinks=np.zeros_like(ok), inconclusive=unresolved)
    kinks = ~ok & at_kink(analytic, slopes, tol)
    return Verdicts(failing=~ok & ~kinks, kinks=kinks, inconclusive=unresolved)


def element_status(analytic: float, reference: float, tol: Tolerance, error_bound: float = 0.0,
                   slopes: Slopes | Callable[[], Slopes] | None = None) -> Status:
    """The verdict on one element; slopes may be a function, called only when the values disagree."""
    if bool(agrees(analytic, reference, tol, error_bound)):
        return Status.PASS if bool(resolved(reference, tol, error_bound)) else Status.INCONCLUSIVE
    if slopes is None:
        return Status.FAIL
    slopes = slopes() if callable(slopes) else slopes
    return Status.KINK if bool(at_kink(analytic, slopes, tol)) else Status.FAIL


def relative_error(analytic, numeric):
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, np.abs(analytic - numeric) / np.where(scale > 0, scale, 1), 0.0)


def outcome(analytic, numeric, failing, kinks, tol: Tolerance, shape: tuple[int, ...] | None = None,
            positions=None, inconclusive=None, numeric_error=None, slopes: dict | None = None) -> Outcome:
    """The counts, error maxima, worst element and listed elements of a comparison.

    analytic, numeric, failing, kinks and inconclusive are the compared elements (any shape); positions are
    their flat indices in an array of the given shape when only some of its elements were compared (probes);
    numeric_error the bound on each numeric value; slopes maps a compared element to its one-sided Slopes.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    shape = tuple(shape) if shape is not None else analytic.shape
    analytic = analytic.reshape(-1)
    numeric = np.asarray(numeric, dtype=np.float64).reshape(-1)
    failing, kinks = np.asarray(failing, dtype=bool).reshape(-1), np.asarray(kinks, dtype=bool).reshape(-1)
    inconclusive = None if inconclusive is None else np.asarray(inconclusive, dtype=bool).reshape(-1)
    if numeric_error is not None:
        numeric_error = np.asarray(numeric_error, dtype=np.float64).reshape(-1)
        if numeric_error.size != analytic.size:
            numeric_error = np.broadcast_to(numeric_error, analytic.shape)
    slopes = slopes or {}
    positions = None if positions is None else np.asarray(positions).reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_error = np.abs(analytic - numeric)
        # relative_error, from the absolute error already taken
        scale = np.maximum(np.abs(analytic), np.abs(numeric))
        rel_error = np.divide(raw_error, scale, out=np.zeros(scale.shape), where=scale > 0)
    abs_error = np.where(np.isnan(raw_error), np.inf, raw_error)
    rel_error = np.where(np.isnan(rel_error), np.inf, rel_error)
    counts = (int(np.count_nonzero(failing)), int(np.count_nonzero(kinks)),
              0 if inconclusive is None else int(np.count_nonzero(inconclusive)))
    # how far past its allowance each element is: the worst failing element is the one most past it (only an
    # element that does not pass is ranked by it)
    excess = abs_error - allowed_error(numeric, tol) if any(counts) else abs_error

    def index_of(flat: int) -> tuple[int, ...]:
        position = flat if positions is None else int(positions[flat])
        return tuple(int(i) for i in np.unravel_index(position, shape)) if shape else ()

    def error_of(flat: int) -> float:
        return 0.0 if numeric_error is None else float(numeric_error[flat])

    def listed(mask, status: Status, count: int) -> list[ElementOutcome]:
        if not count:
            return []
        chosen = np.flatnonzero(mask)
        order = np.argsort(-np.nan_to_num(excess[chosen], nan=np.inf), kind="stable")
        chosen = chosen[order][:MAX_LISTED_ELEMENTS]
        elements = []
        for flat in chosen:
            right, left = slopes.get(int(flat), (None, None))
            elements.append(ElementOutcome(index_of(int(flat)), status, float(analytic[flat]), float(numeric[flat]),
                                           float(abs_error[flat]), error_of(int(flat)),
                                           None if right is None else float(right), None if left is None else float(left)))
        return elements

    result = Outcome(failing=counts[0], kinks=counts[1], inconclusive=counts[2])
    if not analytic.size:
        return result
    if result.failing:
        candidates = np.where(failing, excess, -np.inf)
    elif result.inconclusive:
        candidates = np.where(inconclusive, 0.0 if numeric_error is None else numeric_error, -np.inf)
    elif result.kinks:
        candidates = np.where(kinks, excess, -np.inf)
    else:
        candidates = abs_error
    worst = int(np.argmax(candidates))
    result.max_abs_error, result.max_rel_error = float(abs_error.max()), float(rel_error.max())
    result.worst_index = index_of(worst)
    result.worst_analytic, result.worst_numeric = float(analytic[worst]), float(numeric[worst])
    result.worst_numeric_error = error_of(worst)
    result.worst_abs_error, result.worst_rel_error = float(abs_error[worst]), float(rel_error[worst])
    result.status = (Status.FAIL if result.failing else Status.INCONCLUSIVE if result.inconclusive
                     else Status.KINK if result.kinks else Status.PASS)
    if any(counts):
        result.elements = (listed(failing, Status.FAIL, result.failing)
                           + listed(inconclusive, Status.INCONCLUSIVE, result.inconclusive)
                           + listed(kinks, Status.KINK, result.kinks))
    return result
