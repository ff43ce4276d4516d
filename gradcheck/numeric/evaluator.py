"""The objective with one node's value replaced, recomputing only what lies downstream of it.

Perturbations are carried as their change (gradcheck/ops/changes.py): K perturbed copies of a node
travel downstream as K differences confined to a box, each op applying its ``propagate`` rule (a
rank-1 update for matmul, the changed entries of an elementwise op, the changed rows of a softmax)
or, where it declares none, recomputing forward on the perturbed inputs.  The objective's change is
summed from the changed entries alone, so it is formed without cancelling against the objective.
"""
from __future__ import annotations

import sys
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..batching import batched_apply, beyond_rounding, declaration_holds, gap_text
from ..engine import evaluate_node, evaluation_failures
from ..graph import Graph
from ..ops.changes import Change, changed_difference, concatenated
from .stencils import MACHINE_EPS, ROW_BY_ROW_ELEMENTS

MAX_CHANGE_FLOATS = 250_000  # the changes of one batch of copies are capped at ~2 MB of floats
# glibc's malloc returns freed memory above 128 KB to the kernel (munmap, or trimming the heap's top), so each
# batch of changes faulted its pages in afresh: 3,600 page faults, half the time of the 1.4k MLP's W1.  Kept
# instead, up to these bounds, the next batch reuses them
HEAP_KEPT_BYTES = 4 * MAX_CHANGE_FLOATS * 8  # freed memory kept at the heap's top (glibc's M_TOP_PAD)
HEAP_ARRAY_BYTES = 32 * 2**20  # arrays up to this size come from the heap (M_MMAP_THRESHOLD: glibc's own maximum)
SMALL_BATCH_FLOATS = 16_384  # batches below 128 KB of changes stay below glibc's thresholds: nothing to keep

# bundles whose joining widens their changes by no more than this many floats beyond twice theirs are joined: one
# call on somewhat larger arrays costs less than two
JOIN_SLACK_FLOATS = 2048


class LeftDomain(Exception):
    """An op raised for some copy of a batch: the copies are then evaluated one by one."""


class Evaluator:
    """Evaluates the objective with one node's value replaced, recomputing only its downstream.

    An op that raises at a perturbed point (a step left its domain) gives NaN for that point;
    an exception an op may not legitimately raise propagates (engine.evaluation_failures).
    """

    def __init__(self, graph: Graph, values64: list[np.ndarray], projection: np.ndarray | None):
        self.graph = graph
        self.values = values64
        self.projection = projection
        self.evaluations = 0
        self._copies_per_batch: dict[int, int] = {}
        self._copy_floats: dict[int, int] = {}  # copy_floats by node: the reference values never change
        self.max_change_floats = MAX_CHANGE_FLOATS  # a batch's changes hold at most this many floats (the budget's)

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
        with np.errstate(all="ignore"):
            for j in self.graph.downstream(index):
                node = self.graph.nodes[j]
                args = [overlay.get(a, self.values[a]) for a in node.args]
                dtype = np.complex128 if any(a.dtype.kind == "c" for a in args) else np.float64
                try:
                    overlay[j] = evaluate_node(node, args, dtype)
                except evaluation_failures(node):
                    return np.nan
            return self.objective(overlay.get(self.graph.output, self.values[self.graph.output]))

    def objectives_batch(self, index: int, stacked: np.ndarray) -> np.ndarray | None:
        """The objective for each copy stacked on axis 0 (None if an op raised for some copy)."""
        count = stacked.shape[0]
        self.evaluations += count
        overlay = {index: stacked}
        evaluate = lambda node, args, params=None: evaluate_node(node, args, np.float64, params)  # noqa: E731
        with np.errstate(all="ignore"):
            for j in self.graph.downstream(index):
                node = self.graph.nodes[j]
                args = [overlay.get(a, self.values[a]) for a in node.args]
                batched = [a in overlay for a in node.args]
                try:
                    overlay[j] = batched_apply(node, args, batched, count, np.shape(self.values[j]), evaluate)
                except evaluation_failures(node):
                    return None
            out = overlay[self.graph.output]
            weighted = out if self.projection is None else self.projection * out
            return weighted.reshape(count, -1).sum(axis=1)

    def path_magnitude(self, index: int) -> float:
        """The largest value met downstream of node index: round-off is relative to it, not to the objective,
        when large terms cancel on the way (a + s - s)."""
        return max((self.magnitudes[j] for j in self.graph.downstream(index)), default=0.0)

    @cached_property
    def magnitudes(self) -> list[float]:
        """max |value| of each node (0 for data and empty nodes)."""
        return [float(np.max(np.abs(v))) if np.size(v) and v.dtype.kind in "fc" else 0.0 for v in self.values]

    def copy_floats(self, index: int) -> int:
        """Floats one perturbed copy of node index occupies along its downstream."""
        if index not in self._copy_floats:
            self._copy_floats[index] = sum(int(np.size(self.values[j])) for j in [index] + self.graph.downstream(index))
        return self._copy_floats[index]

    def complex_safe(self, index: int) -> str | None:
        """None if complex-step can run through node index's downstream, else the op that forbids it and why."""
        for j in self.graph.downstream(index):
            node = self.graph.nodes[j]
            try:
                safe = node.op_info.complex_safe_at(node.params)
            except Exception as error:  # a custom op's own complex_safe(params): its fault, reported, never gradcheck's
                return f"op '{node.op_info.name}' (its complex_safe hook raised {type(error).__name__}: {error})"
            if not safe:
                return f"op '{node.op_info.name}' (not analytic)"
            key = ("complex_safe",)
            if node.op_info.source != "builtin" and not declaration_holds(
                    node, key, lambda node=node: self.complex_step_gap(node)):
                return (f"op '{node.op_info.name}' (it declares complex_safe, but a complex step through it differs "
                        f"from central differences {gap_text(node.declarations[key])})")
        return None

    def complex_step_gap(self, node) -> float:
        """How far a complex step through a custom op that declares itself analytic lies from central differences,
        along one random direction of all its float arguments at once: Im f(x + i t d) / t = J d to rounding for
        an analytic f (Squire and Trapp 1998), while (f(x + s d) - f(x - s d)) / 2s errs by s² |f₃| / 6 (f₃ the
        third derivative along d) and eps |f| / s.  0 where they agree to 1e-4 of J d; a forward that drops the
        imaginary part (abs, real-only math) gives 0 for J d instead."""
        args = [self.values[a] for a in node.args]
        moved = [i for i, a in enumerate(args) if a.dtype.kind == "f" and i not in node.op_info.integer_args]
        rng = np.random.default_rng(node.index)
        directions = {i: (2.0 * rng.integers(0, 2, np.shape(args[i])) - 1) * (1.0 + np.abs(args[i])) for i in moved}
        tiny, step = 1e-20, 1e-5

        def at(offset, dtype):
            return np.asarray(evaluate_node(node, [a + offset * directions[i] if i in directions else a
                                                   for i, a in enumerate(args)], dtype))
        try:
            complex_step = np.imag(at(1j * tiny, np.complex128)) / tiny
            plus, minus = at(step, np.float64), at(-step, np.float64)
        except Exception:  # a custom op's own failure under a complex argument: it is not analytic for us
            return float("inf")
        if complex_step.shape != plus.shape:
            return float("inf")
        central = (plus - minus) / (2 * step)
        allowed = (1e-4 * (np.abs(central) + float(np.max(np.abs(central), initial=0.0)))
                   + 64 * MACHINE_EPS * float(np.max(np.abs(plus), initial=0.0)) / step)
        gap = np.abs(complex_step - central)
        excess = ~(gap <= allowed)
        return float(np.max(np.where(np.isnan(gap), np.inf, gap)[excess])) if np.any(excess) else 0.0

    # ------------------------------------------------------------------ change propagation
    def objectives_at(self, index: int, elements: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The objective with element elements[k] (flat) of node index moved by offsets[k], for every k
        (complex offsets: complex-step); NaN where an evaluation left an op's domain."""
        return self.f0 + self.changes_at(index, elements, offsets)

    def objectives_along(self, index: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The objective at x + steps[k] * direction, for every k."""
        return self.f0 + self.changes_along(index, direction, steps)

    def changes_at(self, index: int, elements: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """objectives_at minus f0, summed from the changed entries alone (no cancellation against f0)."""
        elements = np.asarray(elements, dtype=np.intp).reshape(-1)
        offsets = np.asarray(offsets).reshape(-1)
        if elements.shape != offsets.shape:
            raise ValueError(f"{elements.size} elements for {offsets.size} offsets: give one element per offset")
        shape = np.shape(self.values[index])
        return self._in_batches(index, len(offsets), np.iscomplexobj(offsets),
                                lambda batch: Change.of_elements(shape, elements[batch], offsets[batch]))

    def changes_along(self, index: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """objectives_along minus f0."""
        direction = np.asarray(direction)
        return self.changes_along_each(index, direction[None], np.zeros(np.size(steps), dtype=np.intp), steps)

    def changes_along_each(self, index: int, directions: np.ndarray, which: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The objective's change (minus f0) at x + steps[k] * directions[which[k]], for every k: the steps of
        several directions in one batched pass (each batch's perturbations are built only when it runs)."""
        directions = np.asarray(directions)
        which = np.asarray(which, dtype=np.intp).reshape(-1)
        steps = np.asarray(steps).reshape(-1)
        if which.shape != steps.shape:
            raise ValueError(f"{which.size} directions for {steps.size} steps: give one direction per step")
        trailing = (1,) * (directions.ndim - 1)
        return self._in_batches(index, len(steps), np.iscomplexobj(steps) or np.iscomplexobj(directions),
                                lambda batch: Change.dense(steps[batch].reshape((-1,) + trailing) * directions[which[batch]]))

    def changes_along_sources(self, sources: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[int, np.ndarray]:
        """changes_along_each for several nodes at once, sources[i] = (directions, which, steps) of node i: the
        copies of every node travel downstream together, so each op after any of them runs once for all the
        copies that reach it (a graph of n probed nodes costs one sweep, not n).  Sweeps hold at most
        max_change_floats of changes; a node too large for one goes on its own."""
        def start(i: int) -> Change:
            directions, which, steps = (np.asarray(a) for a in sources[i])
            trailing = (1,) * (directions.ndim - 1)
            return Change.dense(steps.reshape((-1,) + trailing) * directions[which])

        counts = {i: len(steps) for i, (_, _, steps) in sources.items()}
        return self._swept_groups(counts, start, lambda i: self.changes_along_each(i, *sources[i]))

    def changes_at_sources(self, sources: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, np.ndarray]:
        """changes_at for several nodes at once, sources[i] = (elements, offsets) of node i, swept downstream
        together as changes_along_sources sweeps directions (the element steps of every small node of a graph
        in one pass per level, not one per node)."""
        def start(i: int) -> Change:
            elements, offsets = sources[i]
            return Change.of_elements(np.shape(self.values[i]), np.asarray(elements, dtype=np.intp).reshape(-1),
                                      np.asarray(offsets).reshape(-1))

        counts = {i: np.size(offsets) for i, (_, offsets) in sources.items()}
        return self._swept_groups(counts, start, lambda i: self.changes_at(i, *sources[i]))

    def _swept_groups(self, counts: dict[int, int], start, alone) -> dict[int, np.ndarray]:
        """The sources swept in groups of at most max_change_floats (dense bound): start(i) builds source i's
        copies, alone(i) evaluates source i on its own (a group of one, or where some op raised in the sweep)."""
        cost = {i: count * self.copy_floats(i) for i, count in counts.items()}
        found: dict[int, np.ndarray] = {}
        group: list[int] = []
        for i in sorted(counts, key=lambda i: (cost[i], i)):
            if group and sum(cost[j] for j in group) + cost[i] > self.max_change_floats:
                found.update(self._swept(group, counts, start, alone))
                group = []
            group.append(i)
        if group:
            found.update(self._swept(group, counts, start, alone))
        return found

    def changes_along_together(self, directions: dict[int, np.ndarray], steps: np.ndarray) -> np.ndarray | None:
        """The objective's change (minus f0) when every node i of ``directions`` moves at once, by steps[k] *
        directions[i] added to the value its (moved) arguments give it, for every k; None where some op raised
        for some copy.  The adjoint of node i is the objective's derivative with respect to such an addition to
        its value, so the derivative along t of this change is the sum over i of <adjoint_i, directions[i]>.

        Until the moves meet a non-linear op, every copy's change is steps[k] times one array (``unit``): a
        built-in op affine in its one changed argument (its tested linear_in declaration) changes by steps[k]
        times its change under that array alone, so W in x @ W costs one product, not one per step."""
        steps = np.asarray(steps, dtype=np.float64).reshape(-1)
        first = min(directions)
        moved = set(directions)
        changes: dict[int, Change] = {}
        unit: dict[int, np.ndarray] = {}  # node -> its change per unit step, where every copy's is a multiple of it

        def stepped(change: np.ndarray) -> np.ndarray:
            """steps[k] * change for every k: copy by copy with a scalar operand where a copy is large."""
            if np.size(change) < ROW_BY_ROW_ELEMENTS:
                return steps.reshape((-1,) + (1,) * np.ndim(change)) * change
            copies = np.empty((steps.size,) + np.shape(change), dtype=np.result_type(steps, change))
            for k, step in enumerate(steps):
                np.multiply(change, step, out=copies[k, ...])  # (a view also where change is a scalar)
            return copies

        with np.errstate(all="ignore"):
            for node in self.graph.nodes[first: self.graph.output + 1]:
                j = node.index
                if not self.graph.reaches_output[j]:
                    continue
                changed, scaled = None, None
                hit = [p for p, a in enumerate(node.args) if a in changes or a in unit] if node.kind == "op" else []
                try:
                    if (len(hit) == 1 and node.args[hit[0]] in unit and node.op_info.source == "builtin"
                            and node.op_info.is_linear_in(hit[0])):
                        arg_changes = [Change.dense(unit[a][None]) if p == hit[0] else None
                                       for p, a in enumerate(node.args)]
                        one = self.node_change(node, arg_changes, [self.values[a] for a in node.args], self.values[j])
                        scaled = None if one is None else np.asarray(one.full()[0])
                    elif hit:
                        for a in node.args:
                            if a in unit and a not in changes:
                                changes[a] = Change.dense(stepped(unit[a]))
                        changed = self.node_change(node, [changes.get(a) for a in node.args],
                                                   [self.values[a] for a in node.args], self.values[j])
                except evaluation_failures(node):
                    return None
                if j in moved:
                    if changed is None:
                        scaled = directions[j] if scaled is None else scaled + directions[j]
                    else:
                        own = stepped(directions[j])
                        own += changed.full()
                        changed = Change.dense(own)
                if scaled is not None:
                    unit[j] = scaled
                elif changed is not None:
                    changes[j] = changed
        self.evaluations += steps.size
        output = self.graph.output
        if output in unit:
            return steps * float(Change.dense(unit[output][None]).weighted_sum(self.projection)[0])
        out = changes.get(output)
        return np.zeros(steps.size) if out is None else out.weighted_sum(self.projection)

    def _swept(self, group: list[int], counts: dict[int, int], start, alone) -> dict[int, np.ndarray]:
        if len(group) == 1:
            return {group[0]: alone(group[0])}
        path = sorted(set(group).union(*(self.graph.downstream(i) for i in group)))
        try:
            with np.errstate(all="ignore"):
                bundles = swept_bundles(self.graph, self.values, {i: start(i) for i in group}, path)
        except LeftDomain:  # some op raised for some copy: each node on its own, where it is handled
            return {i: alone(i) for i in group}
        self.evaluations += sum(counts[i] for i in group)
        found = {i: np.zeros(counts[i]) for i in group}
        for bundle in bundles.get(self.graph.output, []):
            total, first = bundle.change.weighted_sum(self.projection), 0
            for source, copies in bundle.sources:
                found[source] = total[first: first + copies]
                first += copies
        return found

    def _in_batches(self, index: int, count: int, complex_result: bool, change_of) -> np.ndarray:
        """The objective's change for copies 0..count-1 (change_of(slice) builds a batch's Change), in batches
        sized from the floats a copy's changes took in the batch before (the first from a dense bound)."""
        self.evaluations += count
        result = np.empty(count, dtype=np.complex128 if complex_result else np.float64)
        per_batch = self._copies_per_batch.get(index) or max(1, self.max_change_floats // max(1, self.copy_floats(index)))
        if min(count, per_batch) * self.copy_floats(index) > SMALL_BATCH_FLOATS:
            # before the first batch: its temporaries beside the changes (a rule's tables) may well exceed them
            keep_freed_heap()
        start = 0
        while start < count:
            batch = slice(start, min(count, start + per_batch))
            change = change_of(batch)
            try:
                with np.errstate(all="ignore"):
                    result[batch], floats = self._propagated(index, change)
            except LeftDomain:
                result[batch], floats = self._one_by_one(index, change), 0
            per_batch = max(1, int(self.max_change_floats * change.count // max(floats, 1)))
            if floats > SMALL_BATCH_FLOATS:
                keep_freed_heap()
            start = batch.stop
        self._copies_per_batch[index] = per_batch
        return result

    def _propagated(self, index: int, change: Change) -> tuple[np.ndarray, int]:
        """The objective's change for each copy, and the floats the changes took on the way."""
        changes = {index: change}
        floats = change.floats()
        for j in self.graph.downstream(index):
            node = self.graph.nodes[j]
            arg_changes = [changes.get(a) for a in node.args]
            if all(c is None for c in arg_changes):
                continue  # every change that reached this node was exactly zero
            try:
                changed = self.node_change(node, arg_changes, [self.values[a] for a in node.args], self.values[j])
            except evaluation_failures(node):
                raise LeftDomain from None
            if changed is not None:
                changes[j] = changed
                floats += changed.floats()
        out = changes.get(self.graph.output)
        if out is None:
            return np.zeros(change.count), floats
        return out.weighted_sum(self.projection), floats

    @staticmethod
    def node_change(node, arg_changes: list, args: list, out: np.ndarray) -> Change | None:
        """How node's value changes under its arguments' changes (None: not at all): the op's propagate rule,
        else forward recomputed on the perturbed arguments (stacked; gradcheck/batching.py)."""
        changed = Evaluator.boxed_change(node, arg_changes, args, out)
        return None if changed.is_zero() else changed

    @staticmethod
    def boxed_change(node, arg_changes: list, args: list, out: np.ndarray) -> Change:
        """node_change, kept when it is zero: its box still says which of node's outputs the changed arguments
        reach (where a branch decision may move although the value does not, at a tie)."""
        count = next(c.count for c in arg_changes if c is not None)
        out = np.asarray(out)
        rule = node.op_info.propagate
        changed = rule(arg_changes, out, *args, **node.params) if rule is not None else None
        if not (isinstance(changed, Change) and changed.shape == out.shape
                and changed.delta_shape == (count,) + changed.box):
            return Evaluator.recomputed_change(node, arg_changes, args, out, count)
        if node.op_info.source != "builtin":
            # a custom rule is its author's claim: checked against forward recomputed the first time it is used here
            recomputed: list[Change] = []

            def difference() -> float:
                recomputed.append(Evaluator.recomputed_change(node, arg_changes, args, out, count))
                # compared as new values: the recomputed difference f(x + d) - f(x) errs by the rounding of f
                return beyond_rounding(out + changed.full(), out + recomputed[0].full())

            key = ("propagate", tuple(c is not None for c in arg_changes))
            if not declaration_holds(node, key, difference):
                return recomputed[0] if recomputed else Evaluator.recomputed_change(node, arg_changes, args, out, count)
        return changed

    @staticmethod
    def recomputed_change(node, arg_changes: list, args: list, out: np.ndarray, count: int) -> Change:
        """The change of node's value, from forward recomputed on the perturbed arguments (stacked)."""
        stacked = [a if c is None else c.new_values(np.asarray(a), {}) for a, c in zip(args, arg_changes, strict=True)]
        batched = [c is not None for c in arg_changes]
        evaluate = lambda node, args, params=None: evaluate_node(node, args, np.float64, params)  # noqa: E731
        new = batched_apply(node, stacked, batched, count, out.shape, evaluate)
        return Change.dense(changed_difference(new, out))

    def _one_by_one(self, index: int, change: Change) -> np.ndarray:
        """The copies of a batch in which some op raised, each on its own (NaN for those that raise)."""
        base = np.asarray(self.values[index])
        new_values = change.new_values(base, {})
        evaluations = self.evaluations
        objectives = np.array([self.objective_with(index, new_values[k]) for k in range(change.count)])
        self.evaluations = evaluations
        return objectives - self.f0


class Bundle(NamedTuple):
    """The changes of several sources' copies at one node, end to end: ``sources`` lists (source node, its
    copies) in the order the copies sit in ``change``."""

    change: Change
    sources: tuple[tuple[int, int], ...]


def swept_bundles(graph: Graph, values: list[np.ndarray], starts: dict[int, Change], path: list[int],
                  visit=None) -> dict[int, list[Bundle]]:
    """The changes of several nodes' copies (starts[i]: node i's) carried down ``path`` (the nodes after them, in
    order) together, as bundles: each op runs once per argument the copies reaching it change (x @ W reached
    through x and through W is two calls, not one on zero-padded changes), on all the copies that change that
    argument, and its result travels on as one bundle, not split per source and joined again at every node.  A
    source reaching several arguments of one op (x * x, a residual x + f(x)) is aligned per source there.
    visit(node, arg_changes, changed, sources) is called with each result (the branch watch reads decisions
    there).  Raises LeftDomain where some op raised for some copy."""
    bundles: dict[int, list[Bundle]] = {}
    for j in path:
        node = graph.nodes[j]
        found: list[Bundle] = []
        if node.kind == "op":
            args = [values[a] for a in node.args]
            for arg_changes, sources in _calls(node, bundles):
                try:
                    changed = Evaluator.boxed_change(node, arg_changes, args, values[j])
                    if visit is not None:
                        visit(node, arg_changes, changed, sources)
                except evaluation_failures(node):
                    raise LeftDomain from None
                if not changed.is_zero():
                    found.append(Bundle(changed, sources))
        if j in starts:  # a source's own copies start here
            found.append(Bundle(starts[j], ((j, starts[j].count),)))
        if found:
            bundles[j] = found
    return bundles


def _joined(found: list[Bundle]) -> list[list[Bundle]]:
    """The bundles at one argument, in the groups one call each takes: all of them, unless joining them on the box
    their pins share would widen the changes beyond twice their floats (one-element copies of a conv output beside
    a kernel's whole-channel changes grow 32-fold on that box); then one group per set of pinned axes."""
    if len(found) == 1:
        return [found]
    common = set.intersection(*(set(bundle.change.pins) for bundle in found))
    shape = found[0].change.shape
    per_copy = int(np.prod([1 if a in common else n for a, n in enumerate(shape)], dtype=np.int64))
    floats = sum(bundle.change.floats() for bundle in found)
    if sum(bundle.change.count for bundle in found) * per_copy <= 2 * floats + JOIN_SLACK_FLOATS:
        return [found]
    by_pins: dict[tuple[int, ...], list[Bundle]] = {}
    for bundle in found:
        by_pins.setdefault(tuple(sorted(bundle.change.pins)), []).append(bundle)
    return list(by_pins.values())


def _calls(node, bundles: dict[int, list[Bundle]]) -> list[tuple[list[Change | None], tuple[tuple[int, int], ...]]]:
    """The propagate calls node takes for the bundles at its arguments: (argument changes, their sources)."""
    reaching = [bundles.get(a, []) for a in node.args]
    hit = [p for p, found in enumerate(reaching) if found]
    if not hit:
        return []
    per_position = [{source for bundle in reaching[p] for source, _ in bundle.sources} for p in hit]
    if sum(len(sources) for sources in per_position) == len(set().union(*per_position)):
        # every source changes one argument: one call per changed argument, on all its bundles joined
        calls = []
        for p in hit:
            for joined in _joined(reaching[p]):
                arg_changes: list[Change | None] = [None] * len(node.args)
                arg_changes[p] = concatenated([bundle.change for bundle in joined])
                calls.append((arg_changes, tuple(pair for bundle in joined for pair in bundle.sources)))
        return calls
    # a source changes several arguments: its copies must line up in each, so the bundles are split per source
    parts: list[dict[int, Change]] = [{} for _ in node.args]
    copies: dict[int, int] = {}
    for p in hit:
        for bundle in reaching[p]:
            first = 0
            for source, count in bundle.sources:
                parts[p][source] = bundle.change.copies(first, first + count)
                copies[source] = count
                first += count
    by_arguments: dict[tuple[bool, ...], list[int]] = {}
    for source in copies:
        by_arguments.setdefault(tuple(source in part for part in parts), []).append(source)
    return [([concatenated([parts[p][i] for i in sources]) if reached else None for p, reached in enumerate(pattern)],
             tuple((i, copies[i]) for i in sources))
            for pattern, sources in by_arguments.items()]


_heap_kept = False


def keep_freed_heap() -> None:
    """Have glibc keep freed memory for reuse (HEAP_KEPT_BYTES at the top, arrays to HEAP_ARRAY_BYTES from the
    heap), once per process; nothing elsewhere (another C library keeps its own policy)."""
    global _heap_kept
    if _heap_kept:
        return
    _heap_kept = True
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # glibc's malloc.h
    mallopt(M_MMAP_THRESHOLD, HEAP_ARRAY_BYTES)
    mallopt(M_TOP_PAD, HEAP_KEPT_BYTES)
