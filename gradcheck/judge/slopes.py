"""Kinks no op declares: one-sided slopes whose jump does not shrink with the step.

An op with ``branches`` has its kinks found by its own decisions (kinks.BranchWatch).  A custom or framework
op that declares none can still have one -- a custom abs whose vjp gives sign(x), 0 at 0, agrees with the
central difference (|h| - |-h|) / 2h = 0 there, and every symmetric stencil (five-point, Richardson) is that
average too.  So the elements of nodes whose reach includes such an op are measured directly.

With c(s) = f(x + s) - f(x), the one-sided slopes extrapolated once (Richardson, error O(s^2)),

    R(s) = (4 c(s) - c(2s)) / 2s,    L(s) = (c(-2s) - 4 c(-s)) / 2s,

differ by J(s) = R(s) - L(s) = [4 (c(s) + c(-s)) - (c(2s) + c(-2s))] / 2s.  For a smooth f the even terms
s^2 f''/2 cancel and the s^3 f'''/6 terms are odd, so J(s) = -s^3 f'''' / 2 + O(s^5): a quarter of the
step divides it by 64.  At a kink at x it is the slope jump, whatever the step.  An element is at a kink when
J is beyond the tolerance and the round-off of its quotients at s, s/4 and s/16, and stays within
KINK_PERSISTENCE of itself across those steps (a function sampled where its Taylor series does not yet
converge -- sin at 1e6 with a step spanning periods -- gives values that vary at random, not three equal
ones).  Its slopes are those at s/16.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..graph import Graph
from ..numeric import MACHINE_EPS, NodeDifferentiator, Slopes
from ..numeric.stencils import BASE_STEP
from ..spec import Tolerance

KINK_STEP_SHRINK = 4.0   # the jump is measured at s, s/4 and s/16
KINK_PERSISTENCE = 0.5   # at a kink J changes by at most this fraction between those steps (smooth: by 63/64)
# the first-order bound of the central method's step search is |c(2h) - 3 c(h) - c(-h)| / 6h (+ round-off):
# at a kink at x it is |R - L| / 6, so a central estimate with a bound below a sixth of the tolerance has no
# kink above the tolerance (its jump would have shown)
CENTRAL_KINK_SHARE = 6.0
JUMP_ROUNDOFF_GAIN = 5.0  # J sums (4 + 4 + 1 + 1) / 2 changes over s: 5 times one change's round-off over s


def undeclared_ops(graph: Graph, index: int) -> list[str]:
    """The ops downstream of node index (on a path to the output) that could have a kink no decision reports:
    custom and framework ops (every built-in op with a kink declares its branches, tested; a custom op's
    ``branches`` is its author's claim, and one that misses a decision, as a constant for abs, hides the kink)."""
    names: list[str] = []
    for j in graph.downstream(index):
        op = graph.nodes[j].op_info
        if op is not None and op.source != "builtin" and graph.nodes[j].op_name not in names:
            names.append(graph.nodes[j].op_name)
    return names


def kink_steps(differ: NodeDifferentiator, flats: np.ndarray, estimate_steps: np.ndarray | None) -> np.ndarray:
    """The first step of the test per element: the central scheme's, shortened as far as the method's own step
    search shortened its first step (a function that needs shorter steps than its scale says -- sin far from
    zero -- needs them here too); complex-step's imaginary steps say nothing about that."""
    scale = differ.scale.reshape(-1)[flats]
    central = BASE_STEP["central"] * scale
    if estimate_steps is None or differ.method == "complex-step":
        return central
    shortened = np.asarray(estimate_steps, dtype=np.float64) / (differ.base * scale)
    usable = np.isfinite(shortened) & (shortened > 0)
    return central * np.where(usable, np.minimum(shortened, 1.0), 1.0)


def jump_slopes(changes: np.ndarray, s: np.ndarray) -> Slopes:
    """R(s), L(s) from the changes at s, -s, 2s, -2s (rows in that order)."""
    up, down, up2, down2 = changes
    return Slopes((4 * up - up2) / (2 * s), (down2 - 4 * down) / (2 * s))


def undeclared_kinks(differ: NodeDifferentiator, flats: np.ndarray, steps: np.ndarray,
                     tol: Tolerance) -> dict[int, Slopes]:
    """The elements (positions in flats) at a kink, with their one-sided slopes; one batched pass at the first
    step for every element, one more at the two shorter steps for those whose jump is beyond the tolerance."""
    flats = np.asarray(flats, dtype=np.intp).reshape(-1)
    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    if not flats.size:
        return {}
    first = _jumps(differ, flats, [steps], tol)
    candidates = np.flatnonzero(first.beyond[0])
    if not candidates.size:
        return {}
    shorter = [steps[candidates] / KINK_STEP_SHRINK, steps[candidates] / KINK_STEP_SHRINK ** 2]
    later = _jumps(differ, flats[candidates], shorter, tol)
    persistent = np.all(later.beyond, axis=0) & persists(np.vstack([first.jump[:, candidates], later.jump]))
    right, left = (np.asarray(side) for side in later.slopes[-1])
    return {int(candidates[k]): Slopes(float(right[k]), float(left[k])) for k in np.flatnonzero(persistent)}


def persists(jumps: np.ndarray) -> np.ndarray:
    """Whether the jumps (one row per step, coarsest first) change by at most KINK_PERSISTENCE of themselves from
    each step to the next shorter one, per column."""
    jumps = np.asarray(jumps, dtype=np.float64)
    return np.all(np.abs(jumps[1:] - jumps[:-1]) <= KINK_PERSISTENCE * np.abs(jumps[:-1]), axis=0)


class _Jumps(NamedTuple):
    slopes: list[Slopes]
    jump: np.ndarray     # one row per step array
    beyond: np.ndarray   # the jump is beyond the tolerance and twice its round-off


def _jumps(differ: NodeDifferentiator, flats: np.ndarray, steps: list[np.ndarray], tol: Tolerance) -> _Jumps:
    """J at each of the given step arrays (one row per array), all in one batched pass, and whether each is
    beyond the tolerance of the larger slope and twice its round-off."""
    multipliers = (1.0, -1.0, 2.0, -2.0)
    offsets = np.concatenate([m * s for s in steps for m in multipliers])
    changes = differ.evaluator.changes_at(differ.index, np.tile(flats, len(steps) * len(multipliers)), offsets)
    changes = changes.reshape(len(steps), len(multipliers), flats.size)
    slopes, jumps, beyond = [], [], []
    with np.errstate(all="ignore"):
        for level, s in enumerate(steps):
            found = jump_slopes(changes[level], s)
            jump = np.asarray(found.right - found.left)
            roundoff = JUMP_ROUNDOFF_GAIN * 4 * MACHINE_EPS * differ.magnitude / s
            allowed = tol.atol + tol.rtol * np.maximum(np.abs(found.right), np.abs(found.left)) + 2 * roundoff
            slopes.append(found)
            jumps.append(jump)
            beyond.append(np.isfinite(jump) & (np.abs(jump) > allowed))
    return _Jumps(slopes, np.array(jumps), np.array(beyond))


def directional_kink(differ: NodeDifferentiator, direction: np.ndarray, step: float, resolution: float) -> bool:
    """Whether f(x + t d) has a kink at t = 0 (the same test along a direction; the two shorter steps only where
    the first shows a jump): the jump of the directional slopes is sum_k |d_k| (R_k - L_k) over the elements at
    kinks, judged against one element's tolerance in direction units (resolution) and its round-off."""
    multipliers = np.array([1.0, -1.0, 2.0, -2.0])
    shaped = np.reshape(direction, differ.shape)

    def jumps_at(levels: np.ndarray) -> list[float] | None:
        changes = differ.evaluator.changes_along(differ.index, shaped, np.concatenate([multipliers * s for s in levels]))
        found = []
        with np.errstate(all="ignore"):
            for row, s in zip(changes.reshape(len(levels), len(multipliers)), levels, strict=True):
                slopes = jump_slopes(row, s)
                jump = float(slopes.right - slopes.left)
                roundoff = JUMP_ROUNDOFF_GAIN * 4 * MACHINE_EPS * differ.operand_magnitude / s
                if not (np.isfinite(jump) and abs(jump) > resolution + 2 * roundoff):
                    return None
                found.append(jump)
        return found

    first = jumps_at(np.array([step]))
    later = jumps_at(step / KINK_STEP_SHRINK ** np.arange(1, 3)) if first is not None else None
    if first is None or later is None:
        return False
    return bool(persists(np.array(first + later)))


def central_candidates(differ: NodeDifferentiator, numeric: np.ndarray, errors: np.ndarray,
                       tol: Tolerance) -> np.ndarray:
    """Which elements the kink test must measure: for the central method only those whose first-order bound
    leaves room for a jump beyond the tolerance (CENTRAL_KINK_SHARE); every other method's truncation estimate
    is blind to a kink at x (symmetric stencils, a one-sided quotient from one side only)."""
    if differ.method != "central":
        return np.ones(np.size(numeric), dtype=bool)
    with np.errstate(invalid="ignore"):
        return ~(CENTRAL_KINK_SHARE * np.asarray(errors) <= tol.atol + tol.rtol * np.abs(numeric))
