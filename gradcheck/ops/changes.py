"""Change propagation: K perturbations of one array carried as their differences, confined to a box.

The numeric reference moves one element at a time.  Instead of K full copies of a node (and of
everything after it), a :class:`Change` holds only what differs: along each *pinned* axis, copy k's
change sits at one index (``pins[axis][k]``); along every other axis it may cover the whole length.
A one-element perturbation pins every axis; ``X @ (W + s·eᵢeⱼᵀ) = XW + s·X[:, i] eⱼᵀ`` pins the
column; a tanh after it stays pinned there.

An op says how a change of its arguments changes its result with the ``propagate`` hook of its
record (gradcheck/ops/base.py):  ``propagate(changes, out, *inputs, **params) -> Change | None``,
``changes`` holding one Change (or None: unchanged) per positional input, ``out`` the unperturbed
result.  None means "recompute" (the evaluator then rebuilds the perturbed inputs and calls
forward), the default for every op that declares nothing, custom ops included.

The rules below are shared by the built-in ops: linear maps act on the difference alone (so it is
exact: no f(x+h) - f(x) cancellation), elementwise ops recompute only the changed entries, ops
that act along an axis (softmax) recompute only the changed slices.
"""
from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING

import numpy as np

from ..plaindata import FrozenPlainData

if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # the same, compiling no __setattr__/__delattr__ (and Outer's __init__ only when first made)
    from ..plaindata import dataclass
from . import complexmath
from .base import normalize_axes, real_part


@dataclass(frozen=True, eq=False, repr=False)
class Outer(FrozenPlainData):
    """Rank-1 changes of a matrix: copy k's is the outer product columns[k] matrix[picks[k]]ᵀ on the change's box
    (X @ (W + s eᵢeⱼᵀ) changes by s X[:, i] eⱼᵀ; h @ W2 under a change u of h's column j, by u W2[j, :]; with
    the row pinned, a change of one element h[r, j], by u W2[j, :] in row r alone)."""

    columns: np.ndarray  # (K, n): n the box's rows (1 where the change's row axis is pinned)
    matrix: np.ndarray   # (J, m): the rows the copies pick
    picks: np.ndarray    # (K,) row indices into matrix

    def product(self) -> np.ndarray:
        """The changes written out, (K, n, m): each entry one product."""
        return _outer(self.columns, self.matrix[self.picks])

    def any_nonzero(self) -> bool:
        """Whether some copy's product has a nonzero entry (the first copy answers most calls)."""
        if self.columns.size and np.any(self.columns[0]) and np.any(self.matrix[self.picks[0]]):
            return True
        return bool(np.any(np.any(self.columns != 0, axis=1) & np.any(self.matrix != 0, axis=1)[self.picks]))


@dataclass(frozen=True, eq=False, repr=False)
class Change(FrozenPlainData):
    """K changes of an array of shape ``shape``: ``delta`` has shape (K, *box), box[a] = 1 on a pinned axis.
    Rank-1 changes of a matrix (its rows may be pinned) may instead be given as ``outer``, their factors: ``delta`` is then
    written out the first time a rule reads it, and a rule that gains by the factors reads them instead
    (softmax_cross_entropy_change), so that the K·n·m entries are never formed on a path that has no need of them."""

    shape: tuple[int, ...]
    pins: dict[int, np.ndarray]
    written: np.ndarray | None  # the delta, or None until a rule reads it (``outer`` holds it until then)
    outer: Outer | None = None

    def __init__(self, shape: tuple[int, ...], pins: dict[int, np.ndarray], delta: np.ndarray | None = None,
                 outer: Outer | None = None, *, written: np.ndarray | None = None) -> None:
        # written by hand (dataclass keeps a class's own __init__) so that a custom propagate rule's
        # Change(shape, pins, delta=...) still reads as the docs and the field's old name have it (the field's
        # own name, written=, builds it too, as for any dataclass)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "written", delta if written is None else written)
        object.__setattr__(self, "outer", outer)

    @staticmethod
    def make(shape, pins: dict[int, np.ndarray], delta: np.ndarray | None, outer: Outer | None = None) -> Change:
        """A change in canonical form: no pin on an axis of length 1 (there the box is the whole axis)."""
        shape = tuple(shape)
        return Change(shape, {a: p for a, p in pins.items() if shape[a] > 1}, delta, outer)

    @staticmethod
    def of_elements(shape, flat_elements: np.ndarray, offsets: np.ndarray) -> Change:
        """Copy k moves element flat_elements[k] (a flat index) by offsets[k]."""
        shape = tuple(shape)
        offsets = np.asarray(offsets)
        unravelled = np.unravel_index(np.asarray(flat_elements, dtype=np.intp), shape) if shape else ()
        positions = [np.asarray(p, dtype=np.intp) for p in unravelled]
        delta = offsets.reshape((offsets.size,) + (1,) * len(shape))
        return Change.make(shape, dict(enumerate(positions)), delta)

    @staticmethod
    def dense(delta: np.ndarray) -> Change:
        """Changes that may touch every element: delta has shape (K, *shape)."""
        return Change.make(np.shape(delta)[1:], {}, delta)

    @property
    def delta(self) -> np.ndarray:
        written = self.written
        if written is None:  # written out now, and kept (a frozen dataclass's field, set once)
            written = self._factors().product()
            object.__setattr__(self, "written", written)
        return written

    @property
    def delta_shape(self) -> tuple[int, ...]:
        """delta's shape, without writing it out."""
        written = self.written
        if written is not None:
            return written.shape
        return (self._factors().columns.shape[0],) + self.box

    @property
    def count(self) -> int:
        written = self.written
        return int(written.shape[0] if written is not None else self._factors().columns.shape[0])

    @property
    def box(self) -> tuple[int, ...]:
        return tuple(1 if a in self.pins else n for a, n in enumerate(self.shape))

    def floats(self) -> int:
        """The floats this change holds: delta's, or while only its rank-1 factors are kept, theirs (a rule that
        writes delta out holds a result of its size, which it counts)."""
        written = self.written
        if written is not None:
            return int(written.size)
        outer = self._factors()
        return int(outer.columns.size + outer.picks.size)

    def is_zero(self) -> bool:
        """Whether no copy changes anything (the first entry answers most calls without a pass over delta)."""
        delta = self.written
        if delta is None:
            return not self._factors().any_nonzero()
        return not (delta.size and (delta.flat[0] != 0 or np.any(delta)))

    def _factors(self) -> Outer:
        assert self.outer is not None, "a Change holds its delta or its rank-1 factors"
        return self.outer

    def copies(self, start: int, stop: int) -> Change:
        """Copies start..stop-1 of this change, on the same box."""
        pins = {a: p[start:stop] for a, p in self.pins.items()}
        if self.written is None:
            outer = self._factors()
            return Change(self.shape, pins, None, Outer(outer.columns[start:stop], outer.matrix, outer.picks[start:stop]))
        return Change(self.shape, pins, self.delta[start:stop])

    def gather(self, base: np.ndarray, pins: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """base (an array of this change's shape) on the box of ``pins`` (default: this change's): see gather."""
        return gather(base, self.pins if pins is None else pins, self.count)

    def widened(self, pins: dict[int, np.ndarray]) -> np.ndarray:
        """The delta on the box of ``pins`` (a subset of this change's pins, at the same indices), (K, *box)."""
        freed = [a for a in self.pins if a not in pins]
        if not freed:
            return self.delta
        count = self.count
        box = tuple(1 if a in pins else n for a, n in enumerate(self.shape))
        full = np.zeros((count,) + box, dtype=self.delta.dtype)
        # copy k's delta goes to index pins[a][k] along each freed axis a: with those axes moved next to the
        # copies' axis, one assignment at (k, pins[a1][k], pins[a2][k], ...) places every copy
        target = _to_front(full, [0] + [a + 1 for a in freed])
        source = _to_front(self.delta, [0] + [a + 1 for a in freed]).reshape(target.shape[:1] + target.shape[1 + len(freed):])
        target[(np.arange(count),) + tuple(self.pins[a] for a in freed)] = source
        return full

    def full(self) -> np.ndarray:
        """The whole difference array of every copy, (K, *shape)."""
        return np.broadcast_to(self.widened({}), (self.count,) + self.shape)

    def new_values(self, base: np.ndarray, pins: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """The perturbed values on the box of ``pins`` (default: this change's own box)."""
        pins = self.pins if pins is None else pins
        values = self.gather(base, pins) + self.widened(pins)
        return values if base.dtype.kind in "fc" else values.astype(base.dtype)  # data (a mask) keeps its type

    def weighted_sum(self, weights: np.ndarray | None) -> np.ndarray:
        """sum(weights * delta) per copy: the change of the objective sum(v * out) (sum(out) when weights is None)."""
        delta = self.delta.reshape(self.count, -1)
        if weights is None:
            return delta.sum(axis=1)
        boxed = self.gather(weights)
        if boxed.shape[0] == 1:  # nothing pinned: one weight array for every copy
            return delta @ boxed.reshape(-1)
        return np.einsum("kn,kn->k", delta, boxed.reshape(self.count, -1))


def concatenated(parts: list[Change]) -> Change:
    """The changes of several groups of copies of one array as one Change, on the box their pins share."""
    if len(parts) == 1:
        return parts[0]
    common = set.intersection(*(set(part.pins) for part in parts))
    kept = [{a: part.pins[a] for a in common} for part in parts]
    deltas = [part.delta if set(part.pins) == common else part.widened(pins) for part, pins in zip(parts, kept, strict=True)]
    return Change.make(parts[0].shape, {a: np.concatenate([pins[a] for pins in kept]) for a in common},
                       np.concatenate(deltas))


def gather(base: np.ndarray, pins: dict[int, np.ndarray], count: int) -> np.ndarray:
    """base at copy k's pinned indices, every other axis whole: shape (count, *box) -- or (1, *shape) when
    nothing is pinned, the same for every copy (it broadcasts against the copies)."""
    base = np.asarray(base)
    if not pins:
        return base[None]
    pinned = sorted(pins)
    # the pinned axes moved to the front (a view), indexed together: (count, *the other axes), in their order
    picked = _to_front(base, pinned)[tuple(pins[a].reshape(-1) for a in pinned)]
    box = tuple(1 if a in pins else n for a, n in enumerate(base.shape))
    return picked.reshape((count,) + box)


def _to_front(array: np.ndarray, axes: list[int]) -> np.ndarray:
    """A view of array with ``axes`` first (in that order), the others after them in their order."""
    if axes == list(range(len(axes))):
        return array
    return array.transpose(axes + [a for a in range(array.ndim) if a not in axes])


def changed_difference(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """new - old, in float64 for data (integer or boolean) results."""
    if old.dtype.kind in "fc" and new.dtype.kind in "fc":
        return new - old
    return np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)


# ---------------------------------------------------------------- what depends on the unperturbed values

_DERIVED: dict[tuple, tuple[tuple[weakref.ref, ...], object]] = {}


def derived(compute, *arrays):
    """compute(*arrays), computed once for these array objects and kept while they live: the evaluator passes
    a node's unperturbed inputs as the same arrays to every propagate call, so what a rule derives from them
    alone (the softmax of the logits, validated targets) is not recomputed per batch of copies.  ``compute``
    must be a function of the arrays only (a module-level function or a bound method, not a fresh lambda), and
    its result must not hold the arrays themselves (that would keep them alive, and the entry with them)."""
    key = (compute,) + tuple(id(a) for a in arrays)
    entry = _DERIVED.get(key)
    if entry is not None and all(ref() is a for ref, a in zip(entry[0], arrays, strict=True)):
        return entry[1]
    value = compute(*arrays)

    def forget(_: weakref.ref) -> None:
        _DERIVED.pop(key, None)

    try:
        refs = tuple(weakref.ref(a, forget) for a in arrays)
    except TypeError:  # not weakly referenceable (a Python scalar): nothing to key on, so nothing kept
        return value
    _DERIVED[key] = (refs, value)
    return value


# ---------------------------------------------------------------- elementwise ops

def _aligned_pins(change: Change, out_ndim: int) -> dict[int, np.ndarray]:
    """The change's pins as axes of a broadcast result of rank out_ndim (arguments align on the right)."""
    shift = out_ndim - len(change.shape)
    return {a + shift: p for a, p in change.pins.items()}


def broadcast_pins(changes, inputs, out_shape) -> dict[int, np.ndarray]:
    """The pins a broadcasting elementwise op's result keeps: an axis every changed argument pins at the
    same indices, and that no changed argument broadcasts (a length-1 axis spreads a change along it)."""
    ndim = len(out_shape)
    common = None
    for change in changes:
        if change is None:
            continue
        aligned = _aligned_pins(change, ndim)
        if common is None:
            common = aligned
        else:
            common = {a: p for a, p in common.items() if a in aligned and np.array_equal(aligned[a], p)}
    return {a: p for a, p in (common or {}).items() if out_shape[a] > 1}


def on_box(array, change: Change | None, out_pins, out_ndim: int, count: int) -> np.ndarray:
    """An argument (perturbed or not) on the result's box, shaped to broadcast against (K, *box)."""
    array = np.asarray(array)
    shift = out_ndim - array.ndim
    pins = {a - shift: p for a, p in out_pins.items() if a - shift >= 0 and array.shape[a - shift] > 1}
    values = gather(array, pins, count) if change is None else change.new_values(array, pins)
    return values.reshape((values.shape[0],) + (1,) * shift + values.shape[1:])


def elementwise_change(forward, changes, out, inputs, params) -> Change:
    """Recompute an elementwise (broadcasting) op on the changed entries only."""
    out = np.asarray(out)
    count = next(c.count for c in changes if c is not None)
    pins = broadcast_pins(changes, inputs, out.shape)
    arguments = [on_box(x, c, pins, out.ndim, count) for x, c in zip(inputs, changes, strict=True)]
    delta = changed_difference(np.asarray(forward(*arguments, **params)), gather(out, pins, count))
    box = (count,) + tuple(1 if a in pins else n for a, n in enumerate(out.shape))
    return Change.make(out.shape, pins, delta if delta.shape == box else np.broadcast_to(delta, box))


def piecewise_linear_change(change: Change, x, below: float, above: float) -> Change:
    """An op that is below·x where x <= 0 and above·x where x > 0 (relu: 0, 1; leaky_relu: slope, 1; abs: -1, 1):
    an entry that stays on its side changes by that side's slope times its own change, exactly (recomputing
    would round x + d to ulp(x) first); one that crosses 0 is recomputed on the new values."""
    base = change.gather(np.asarray(x))
    moved = base + change.delta
    was, now = real_part(base) > 0, real_part(moved) > 0
    slope_was, slope_now = np.where(was, above, below), np.where(now, above, below)
    delta = np.where(was == now, slope_now * change.delta, slope_now * moved - slope_was * base)
    return Change.make(change.shape, change.pins, delta)


def linear_elementwise_change(coefficients, changes, out) -> Change | None:
    """sum_i c_i · change_i for an op linear in each argument (a + b, a - b): the differences add, exactly."""
    out = np.asarray(out)
    passed = _passed_outer(coefficients, changes, out.shape)
    if passed is not None:
        return passed
    pins = broadcast_pins(changes, None, out.shape)
    total = None
    for coefficient, change in zip(coefficients, changes, strict=True):
        if change is None:
            continue
        delta = change.widened({a - (out.ndim - len(change.shape)): p for a, p in pins.items()
                                if a - (out.ndim - len(change.shape)) in change.pins})
        delta = delta.reshape((delta.shape[0],) + (1,) * (out.ndim - len(change.shape)) + delta.shape[1:])
        term = delta if coefficient == 1 else coefficient * delta
        total = term if total is None else total + term
    if total is None:   # no argument changed: nothing to update incrementally
        return None
    box = (total.shape[0],) + tuple(1 if a in pins else n for a, n in enumerate(out.shape))
    return Change.make(out.shape, pins, np.broadcast_to(total, box))


def _passed_outer(coefficients, changes, out_shape) -> Change | None:
    """The one changed argument's change as rank-1 factors, where the result's change is that argument's, or
    its negation, on the same shape (x + b with b unchanged): exactly its delta, so its factors still hold."""
    changed = [(c, change) for c, change in zip(coefficients, changes, strict=True) if change is not None]
    if len(changed) != 1:
        return None
    coefficient, change = changed[0]
    outer = change.outer
    if outer is None or change.shape != tuple(out_shape) or coefficient not in (1, -1):
        return None
    return Change(change.shape, change.pins, None,
                  outer if coefficient == 1 else Outer(-outer.columns, outer.matrix, outer.picks))


def mean_of_elementwise_change(losses, changes, inputs, params) -> Change:
    """mean(losses(a, b)) over the broadcast: the per-element losses change only where an argument changed."""
    per_element = np.asarray(losses(*inputs, **params))
    changed = elementwise_change(losses, changes, per_element, inputs, params)
    total = changed.delta.reshape(changed.count, -1).sum(axis=1)
    return Change.make((), {}, total / max(per_element.size, 1))


def squared_error_change(changes, out_shape, difference) -> Change | None:
    """mean((p - t)²) under p -> p + dp, t -> t + dt, from the change of the difference dd = dp - dt alone:
    (a + b)² - a² = b·(2a + b), summed over the entries dd reaches (``difference``: the unperturbed p - t)."""
    changed = linear_elementwise_change((1, -1), changes, np.broadcast_to(difference, out_shape))
    if changed is None:
        return None
    dd = changed.delta
    total = (dd * (2 * changed.gather(difference) + dd)).reshape(changed.count, -1).sum(axis=1)
    return Change.make((), {}, total / max(int(np.prod(out_shape, dtype=np.int64)), 1))


def softmax_cross_entropy_change(change: Change, logits, targets, samples: int, classes=None) -> Change | None:
    """-Σ t·log softmax(z) / n under z -> z + d, row by row and without cancellation:
    lse(z + d) - lse(z) = log Σ_c p_c e^{d_c} = log1p(Σ_c p_c expm1(d_c)), p = softmax(z), so a row's loss
    changes by (Σ_c t_c)·log1p(Σ_c p_c expm1(d_c)) - Σ_c t_c d_c.  The sums run over the change's box only
    (d is 0 off it: a change pinned to one class is one term per row); with one-hot targets (``classes``: each
    row's class index) and every class changed, the last sum is d at the row's class.  None (recompute) where
    e^d overflowed.  softmax(z) and Σ_c t_c depend on the unperturbed logits and targets only: computed once
    for them (derived)."""
    logits = np.asarray(logits)
    class_axis = logits.ndim - 1
    rows = {a: p for a, p in change.pins.items() if a != class_axis}
    count, outer = change.count, change.outer
    per_row = None
    if outer is not None and classes is not None and logits.ndim == 2 and outer.columns.dtype.kind in "fc":
        per_row = _rank_one_rows_change(outer, logits, classes, change.pins.get(0))
    if per_row is None:
        delta = change.delta
        probabilities = derived(_softmax_last_axis, logits)
        mixed = np.einsum("...c,...c->...", change.gather(probabilities), complexmath.expm1(delta))
        if classes is not None and class_axis not in change.pins:
            per_row = complexmath.log1p(mixed) - _at_classes(delta, gather(classes, rows, count))
        else:
            totals = derived(_row_totals, targets, logits)
            targets = np.broadcast_to(targets, logits.shape)
            linear = np.einsum("...c,...c->...", change.gather(targets), delta)  # views where nothing is pinned
            per_row = gather(totals, rows, count) * complexmath.log1p(mixed) - linear
    total = per_row.reshape(count, -1).sum(axis=1)
    if not np.all(np.isfinite(total)):
        return None
    return Change.make((), {}, total / samples)


MACHINE_EPS = float(np.finfo(np.float64).eps)
SERIES_TERMS = 8  # terms of e^x - 1's series the rank-1 rule sums at most (else it takes expm1 entry by entry)
SERIES_MIN_ENTRIES = 2048  # below this many (copy, row, class) entries the entry-by-entry sum costs less


def _rank_one_rows_change(outer: Outer, logits: np.ndarray, classes: np.ndarray,
                          rows: np.ndarray | None) -> np.ndarray | None:
    """softmax_cross_entropy_change's per-row change for one-hot targets under rank-1 changes d = u wᵀ of (rows,
    classes) logits (u = columns[k], w = matrix[j], j = picks[k]), with no pass over the K·rows·classes entries:
    Σ_c p_c expm1(u w_c) = Σ_n u^n/n! Σ_c p_c w_c^n, whose moments Σ_c p_rc matrix[j, c]^n / n! depend on the
    unperturbed logits and the matrix alone (computed once: derived).  With |u w_c| <= T, the terms after the
    N-th sum to at most |u| Σ_c p_c |w_c| T^N e^T / (N+1)! (from |x|^(n+1) <= |x| T^n), and N is taken where that
    is below eps/4 of |u| Σ_c p_c |w_c|, the scale the rounding of the entry-by-entry sum is relative to.  None
    where T needs more than SERIES_TERMS terms (the caller then sums entry by entry).  ``rows``: copy k's row,
    where the change's row axis is pinned.  For complex u (the complex-step pass's i h X[:, i]) the series is the
    same polynomial in u, the bound the same in |u| (|u^n| = |u|^n), and its log1p complexmath's."""
    columns = outer.columns
    if columns.size * outer.matrix.shape[1] < SERIES_MIN_ENTRIES:
        return None
    tables = derived(_RankOneTables, logits, outer.matrix, classes)
    reach = float(np.max(np.abs(columns), initial=0.0)) * float(np.max(tables.largest[outer.picks], initial=0.0))
    terms = _series_terms(reach)
    if terms is None:
        return None
    if rows is None:
        picked = tables.table(terms)[outer.picks]  # (K, 1 + terms, rows): w at each row's class, then the moments
    else:
        picked = tables.table(terms)[outer.picks, :, rows][:, :, None]
    accumulated = columns * picked[:, terms]
    for n in range(terms - 1, 0, -1):  # Horner: u (m_1 + u (m_2 + ... + u m_N))
        accumulated += picked[:, n]
        accumulated *= columns
    per_row = complexmath.log1p(accumulated) if accumulated.dtype.kind == "c" else np.log1p(accumulated, out=accumulated)
    per_row -= columns * picked[:, 0]
    return per_row


def _series_terms(reach: float) -> int | None:
    """The fewest terms N <= SERIES_TERMS of e^x - 1's series with reach^N e^reach / (N+1)! <= eps / 4."""
    if not np.isfinite(reach):
        return None
    growth, bound = math.exp(reach), reach  # bound = reach^N / (N+1)! for N = 1 after the first division
    for terms in range(1, SERIES_TERMS + 1):
        if bound * growth / (terms + 1) <= MACHINE_EPS / 4:
            return terms
        bound *= reach / (terms + 1)
    return None


class _RankOneTables:
    """For softmax_cross_entropy_change's rank-1 rule, of unperturbed logits, a matrix and one-hot classes:
    ``largest[j]`` = max_c |matrix[j, c]|, and table(N) the (j, 1 + N, r) table of matrix[j, classes[r]] and the
    moments Σ_c p_rc matrix[j, c]^n / n!, n = 1..N (one copy's rows in one contiguous block), p = softmax(logits),
    each built the first time a batch needs that many terms (copies of what it reads: derived keeps no array)."""

    def __init__(self, logits: np.ndarray, matrix: np.ndarray, classes: np.ndarray):
        self.probabilities = derived(_softmax_last_axis, logits).copy()
        self.matrix = np.array(matrix, dtype=np.float64)
        self.at_class = self.matrix[:, classes]
        self.largest = np.max(np.abs(self.matrix), axis=1, initial=0.0)
        self.moments: list[np.ndarray] = []  # moments[n - 1]: (j, r)
        self.tables: dict[int, np.ndarray] = {}

    def table(self, terms: int) -> np.ndarray:
        if terms not in self.tables:
            power = self.matrix ** len(self.moments)
            while len(self.moments) < terms:
                power = power * self.matrix
                n = len(self.moments) + 1
                self.moments.append((power @ self.probabilities.T) / math.factorial(n))
            self.tables[terms] = np.ascontiguousarray(np.stack([self.at_class, *self.moments[:terms]], axis=1))
        return self.tables[terms]


def _softmax_last_axis(logits: np.ndarray) -> np.ndarray:
    probabilities = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


def _row_totals(targets: np.ndarray, logits: np.ndarray) -> np.ndarray:
    return np.sum(np.broadcast_to(targets, logits.shape), axis=-1)


def _at_classes(delta: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """delta (K, *rows, C) at each row's class, (K, *rows); classes is (K, *rows) or, shared by the copies, (1, *rows)."""
    if classes.shape[0] == 1:  # the same index for every copy: one fancy index, whatever delta's strides
        rows = np.indices(classes.shape[1:], sparse=True)
        return delta[(slice(None),) + tuple(rows) + (classes[0],)]
    return np.take_along_axis(delta, classes[..., None], axis=-1)[..., 0]


# ---------------------------------------------------------------- along axes

def reduce_change(change: Change, axis, keepdims: bool, scale: float = 1.0) -> Change:
    """sum (scale 1) or mean (scale 1/n) over axis: linear, so the change is reduced alone."""
    ndim = len(change.shape)
    axes = normalize_axes(axis, ndim)
    reduced = tuple(range(ndim)) if axes is None else axes
    delta = np.sum(change.delta, axis=tuple(a + 1 for a in reduced), keepdims=keepdims)
    if scale != 1.0:
        delta = delta * scale
    kept = [a for a in range(ndim) if a not in reduced]
    if keepdims:
        shape = tuple(1 if a in reduced else n for a, n in enumerate(change.shape))
        pins = {a: p for a, p in change.pins.items() if a not in reduced}
    else:
        shape = tuple(change.shape[a] for a in kept)
        pins = {kept.index(a): p for a, p in change.pins.items() if a in kept}
    return Change.make(shape, pins, delta)


def slices_change(forward, change: Change, x, out, axes: tuple[int, ...] | None, params, keepdims: bool = True) -> Change:
    """An op that mixes entries only along ``axes`` of x (softmax over the last axis, a max over an axis):
    recompute the changed slices; the result keeps the pins off those axes (renumbered when the op drops
    them, keepdims false).  ``params`` are forward's keywords for an input with a leading batch axis."""
    ndim = len(change.shape)
    mixed = tuple(range(ndim)) if axes is None else tuple(axes)
    pins = {a: p for a, p in change.pins.items() if a not in mixed}
    new = np.asarray(forward(change.new_values(np.asarray(x), pins), **params))
    if not keepdims:
        kept = [a for a in range(ndim) if a not in mixed]
        pins = {kept.index(a): p for a, p in pins.items()}
    delta = changed_difference(new, gather(np.asarray(out), pins, change.count))
    box = (change.count,) + tuple(1 if a in pins else n for a, n in enumerate(np.shape(out)))
    return Change.make(np.shape(out), pins, delta if delta.shape == box else np.broadcast_to(delta, box))


def transpose_change(change: Change, permutation) -> Change:
    ndim = len(change.shape)
    permutation = tuple(reversed(range(ndim))) if permutation is None else tuple(a % ndim for a in permutation)
    shape = tuple(change.shape[a] for a in permutation)
    pins = {new: change.pins[old] for new, old in enumerate(permutation) if old in change.pins}
    return Change.make(shape, pins, np.transpose(change.delta, (0,) + tuple(a + 1 for a in permutation)))


def concat_change(changes, inputs, axis: int) -> Change:
    """concat is linear: one changed array keeps its pins (moved to where it sits); several are joined whole."""
    axis = axis % np.ndim(inputs[0])
    changed = [i for i, c in enumerate(changes) if c is not None]
    count = changes[changed[0]].count
    out_shape = list(np.shape(inputs[0]))
    out_shape[axis] = sum(np.shape(x)[axis] for x in inputs)
    if len(changed) == 1:
        (i,) = changed
        change = changes[i]
        start = sum(np.shape(x)[axis] for x in inputs[:i])
        pins = dict(change.pins)
        delta = change.delta
        if axis in pins:
            pins[axis] = pins[axis] + start
        else:  # the changed array covers a stretch of the axis: place it there
            widths = [(0, 0)] * delta.ndim
            widths[axis + 1] = (start, out_shape[axis] - start - change.shape[axis])
            delta = np.pad(delta, widths)
        return Change.make(out_shape, pins, delta)
    parts = [c.full() if c is not None else np.zeros((count,) + np.shape(x)) for x, c in zip(inputs, changes, strict=True)]
    return Change.dense(np.concatenate(parts, axis=axis + 1))


# ---------------------------------------------------------------- matmul

def _promoted(change: Change | None, vector_axis: int) -> Change | None:
    """A vector argument's change seen as a matrix's: a (k,) vector as a (1, k) row (axis 0) or a (k, 1) column."""
    if change is None:
        return None
    pins = {(1 if vector_axis == 0 else 0): p for p in change.pins.values()}
    shape = (1,) + change.shape if vector_axis == 0 else change.shape + (1,)
    delta = change.delta[:, None, :] if vector_axis == 0 else change.delta[:, :, None]
    return Change.make(shape, pins, delta)


def _outer(columns: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Copy k's outer product columns[k] rows[k]ᵀ, (K, n, m) (einsum: twice numpy's broadcast multiply on short rows)."""
    return np.einsum("kn,km->knm", columns, rows)


def matmul_change(changes, out, a, b) -> Change | None:
    """a @ b is linear in each argument: (A + dA) B = AB + dA B.  A one-element dA = s eᵢeⱼᵀ is a rank-1
    update, s·eᵢ B[j, :] (one row changes); a dense dA costs one GEMM for all K copies, folded as (K·n, k) @ B.
    Matrices and vectors; stacks of matrices and changes of both arguments are recomputed (None)."""
    change_a, change_b = changes
    if np.ndim(a) > 2 or np.ndim(b) > 2 or (change_a is not None and change_b is not None):
        return None
    A = np.asarray(a)[None, :] if np.ndim(a) == 1 else np.asarray(a)
    B = np.asarray(b)[:, None] if np.ndim(b) == 1 else np.asarray(b)
    change_a = _promoted(change_a, 0) if np.ndim(a) == 1 else change_a
    change_b = _promoted(change_b, 1) if np.ndim(b) == 1 else change_b
    outer = None
    if change_a is not None:
        rows, inner = change_a.pins.get(0), change_a.pins.get(1)
        count, delta = change_a.count, change_a.delta
        if inner is not None and np.ndim(a) == 2 and np.ndim(b) == 2 and delta.size * B.shape[1] >= SERIES_MIN_ENTRIES:
            # dA[:, j] (outer) B[j, :], as factors (a block smaller than the rank-1 rule takes is written out at once)
            outer, product = Outer(delta[:, :, 0], B, inner), None
        elif inner is not None:   # dA has one column j per copy: dA[:, j] (outer) B[j, :]
            product = _outer(delta[:, :, 0], B[inner])
        else:                   # (K, n', k) @ (k, m) as one GEMM
            product = (delta.reshape(-1, B.shape[0]) @ B).reshape(count, delta.shape[1], B.shape[1])
        pins = {} if rows is None else {0: rows}
    elif change_b is not None:
        inner, columns = change_b.pins.get(0), change_b.pins.get(1)
        count, delta = change_b.count, change_b.delta
        if inner is not None:   # dB has one row i per copy: A[:, i] (outer) dB[i, :]
            product = _outer(A[:, inner].T, delta[:, 0, :])
        else:                   # A @ (K, k, m') as one GEMM: A @ [dB_1 ... dB_K] side by side
            side_by_side = np.moveaxis(delta, 0, 1).reshape(A.shape[1], -1)
            product = np.moveaxis((A @ side_by_side).reshape(A.shape[0], count, delta.shape[2]), 1, 0)
        pins = {} if columns is None else {1: columns}
    else:                       # neither argument changed: nothing to update incrementally
        return None
    shape = (A.shape[0], B.shape[1])
    result = Change.make(shape, pins, product, outer)
    if np.ndim(b) == 1:
        result = Change.make(shape[:1], {a: p for a, p in result.pins.items() if a == 0}, result.delta[:, :, 0])
    if np.ndim(a) == 1:
        result = Change.make(result.shape[1:], {a - 1: p for a, p in result.pins.items() if a >= 1}, result.delta[:, 0])
    return result
