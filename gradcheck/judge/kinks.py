"""Kinks from the ops' own branch decisions (the ``branches`` hook of the op record).

An op with branches (relu, abs, max, max_pool2d, hinge, clip, ...) reports one decision per element at
its inputs.  Moving one element of a node by a finite-difference step re-evaluates the ops downstream of
it; where any of their decisions differs from the one at the reference point, the stencil straddles a
branch (or the element sits on a tie, where every step changes a decision): a kink question, whatever the
central difference happens to give.  Where one step changes the decisions of several outputs at once (a
compound kink: one input feeding many tied windows), the function is piecewise linear in ways the two
one-sided slopes along that element do not bound, and the count of changed decisions says so.

The perturbations travel downstream as their changes (gradcheck/ops/changes.py), as in the numeric
reference itself; a built-in op that broadcasts over leading axes (elementwise ops, pooling) has its
decisions re-read only on the box of outputs the change reaches, every other op on whole perturbed copies.
"""
from __future__ import annotations

import numpy as np

from ..engine import evaluation_failures
from ..graph import Graph
from ..numeric.evaluator import Evaluator, LeftDomain, swept_bundles
from ..ops.changes import Change, gather, on_box

MAX_COPY_FLOATS = 2_000_000  # perturbed copies watched at once are capped at ~16 MB of downstream values


def decisions_of(node, args) -> tuple[np.ndarray, ...]:
    """The op's branch decisions at these arguments, always as a tuple of arrays."""
    with np.errstate(all="ignore"):
        found = node.op_info.branches(*args, **node.params)
    if found is None:
        return ()
    found = found if isinstance(found, tuple) else (found,)
    return tuple(np.asarray(d) for d in found)


class BranchWatch:
    """Which perturbations of a node change a branch decision of some op downstream of it."""

    def __init__(self, graph: Graph, values: list[np.ndarray]):
        self.graph = graph
        self.values = values
        self._reference: dict[int, tuple[np.ndarray, ...]] = {}
        self._branching: dict[int, list[int]] = {}

    def branching(self, index: int) -> list[int]:
        """The ops with branches among node index's consumers, direct or further downstream."""
        if index not in self._branching:
            self._branching[index] = [j for j in self.graph.downstream(index)
                                      if self.graph.nodes[j].op_info.branches is not None]
        return self._branching[index]

    def watches(self, index: int) -> bool:
        return bool(self.branching(index))

    def reference(self, j: int) -> tuple[np.ndarray, ...]:
        if j not in self._reference:
            node = self.graph.nodes[j]
            self._reference[j] = decisions_of(node, [self.values[a] for a in node.args])
        return self._reference[j]

    def changed(self, index: int, change: Change) -> np.ndarray:
        """For each of the change's copies of node index, how many output elements of the ops downstream have
        a decision that differs from the reference one (0: none; a copy for which an op cannot be evaluated
        counts as changed)."""
        count = change.count
        flips = np.zeros(count, dtype=np.int64)
        watched = self.branching(index)
        if not watched or not count:
            return flips
        last = max(watched)
        path = [j for j in self.graph.downstream(index) if j <= last]
        per_copy = max(1, sum(int(np.size(self.values[j])) for j in [index] + path))
        chunk = max(1, MAX_COPY_FLOATS // per_copy)
        for start in range(0, count, chunk):
            copies = slice(start, min(count, start + chunk))
            part = change if copies == slice(0, count) else change.copies(copies.start, copies.stop)
            flips[copies] = self._changed_chunk(index, part, path, set(watched))
        return flips

    def changed_together(self, starts: dict[int, Change]) -> dict[int, np.ndarray]:
        """changed() for the changes of several nodes at once (starts[i]: node i's copies), swept downstream
        together: each op after any of them runs once for the sources that change the same arguments (one
        sweep for the watched nodes of a small graph, not one per node).  Where their copies and downstream
        values exceed one chunk's MAX_COPY_FLOATS, or some op raises for some copy, each node goes on its own."""
        watched = {i: set(self.branching(i)) for i in starts}
        sources = [i for i in starts if watched[i] and starts[i].count]
        found = {i: np.zeros(starts[i].count, dtype=np.int64) for i in starts}
        if not sources:
            return found
        last = max(max(watched[i]) for i in sources)
        path = sorted(set(sources).union(*(self.graph.downstream(i) for i in sources)))
        path = [j for j in path if j <= last]
        floats = sum(starts[i].count for i in sources) * sum(int(np.size(self.values[j])) for j in path)
        if len(sources) == 1 or floats > MAX_COPY_FLOATS:
            return {**found, **{i: self.changed(i, starts[i]) for i in sources}}

        def count_flips(node, arg_changes, changed: Change, carried) -> None:
            if node.index not in watching:  # every source a change reaches an op from watches it
                return
            args = [self.values[a] for a in node.args]
            flips = self._flipped(node, node.index, arg_changes, args, changed, changed.count)
            first = 0
            for source, copies in carried:
                found[source] += flips[first: first + copies]
                first += copies

        watching = set().union(*(watched[i] for i in sources))
        try:
            with np.errstate(all="ignore"):
                swept_bundles(self.graph, self.values, {i: starts[i] for i in sources}, path, count_flips)
        except LeftDomain:
            return {**found, **{i: self.changed(i, starts[i]) for i in sources}}
        return found

    def _changed_chunk(self, index: int, change: Change, path: list[int], watched: set[int]) -> np.ndarray:
        count = change.count
        changes = {index: change}
        flips = np.zeros(count, dtype=np.int64)
        with np.errstate(all="ignore"):
            for j in path:
                node = self.graph.nodes[j]
                arg_changes = [changes.get(a) for a in node.args]
                if all(c is None for c in arg_changes):
                    continue  # every change that reached this node was exactly zero
                args = [self.values[a] for a in node.args]
                try:
                    changed = Evaluator.boxed_change(node, arg_changes, args, self.values[j])
                    if j in watched:
                        flips += self._flipped(node, j, arg_changes, args, changed, count)
                except evaluation_failures(node):
                    return np.ones(count, dtype=np.int64)
                if not changed.is_zero():
                    changes[j] = changed
        return flips

    def _flipped(self, node, j, arg_changes, args, changed: Change, count: int) -> np.ndarray:
        """Per copy, the number of the op's output elements whose decision changed: a decision array is grouped
        by its leading axes, as many as the op's output has (max_pool2d: one window per output element)."""
        reference = self.reference(j)
        out_ndim = np.ndim(self.values[j])
        if self._reads_on_box(node, args, out_ndim):
            boxed = self._flipped_on_box(node, arg_changes, args, changed.pins, count, reference, out_ndim)
            if boxed is not None:
                return boxed
        stacked = [a if c is None else c.new_values(np.asarray(a), {}) for a, c in zip(args, arg_changes, strict=True)]
        batched = [c is not None for c in arg_changes]
        vectorised = self._flipped_at_once(node, stacked, batched, count, reference, out_ndim)
        if vectorised is not None:
            return vectorised
        flips = np.zeros(count, dtype=np.int64)
        for k in range(count):
            try:
                found = decisions_of(node, [a[k] if b else a for a, b in zip(stacked, batched, strict=True)])
            except evaluation_failures(node):
                flips[k] = 1
                continue
            if len(found) != len(reference) or any(d.shape != r.shape for d, r in zip(found, reference, strict=True)):
                flips[k] = 1
                continue
            counts = [0]
            for d, r in zip(found, reference, strict=True):
                moved = np.asarray(d != r)
                lead = min(out_ndim, moved.ndim)
                moved = np.asarray(moved.reshape(moved.shape[:lead] + (-1,)).any(axis=-1)) if moved.ndim > lead else moved
                counts.append(int(np.count_nonzero(moved)))
            flips[k] = max(counts)  # the decision arrays of one op describe the same outputs
        return flips

    @staticmethod
    def _reads_on_box(node, args, out_ndim: int) -> bool:
        """A built-in op whose forward (and so its decisions) broadcasts over leading axes, its arguments aligned
        on the right of its output: output element o reads the arguments at o's own indices along every axis its
        change rule keeps pinned, so the decisions off the change's box cannot move."""
        op = node.op_info
        return op.source == "builtin" and op.batching == "broadcast" and all(np.ndim(a) <= out_ndim for a in args)

    @staticmethod
    def _flipped_on_box(node, arg_changes, args, pins, count, reference, out_ndim) -> np.ndarray | None:
        """_flipped_at_once on the box of the outputs the change reaches (None where the decisions do not come
        out on that box)."""
        if not reference or any(np.ndim(r) < out_ndim for r in reference):
            return None
        # output element o reads its arguments at o's own indices only along axes the output shares with them (a
        # pool's window axes do not: there the decisions are read on the arguments' whole extent)
        out_shape = np.shape(reference[0])[:out_ndim]
        pins = {a: p for a, p in pins.items()
                if all(a - (out_ndim - np.ndim(arg)) < 0 or np.shape(arg)[a - (out_ndim - np.ndim(arg))] in (1, out_shape[a])
                       for arg in args)}
        aligned = [on_box(a, c, pins, out_ndim, count) for a, c in zip(args, arg_changes, strict=True)]
        try:
            found = decisions_of(node, aligned)
        except (ArithmeticError, ValueError, TypeError, IndexError):
            return None
        before = [gather(r, pins, count) for r in reference]
        if len(found) != len(reference) or any(d.shape != (count,) + b.shape[1:] for d, b in zip(found, before, strict=True)):
            return None
        counts = np.zeros(count, dtype=np.int64)
        for d, b in zip(found, before, strict=True):
            moved = d != b
            moved = moved.reshape(moved.shape[: out_ndim + 1] + (-1,)).any(axis=-1)
            counts = np.maximum(counts, moved.reshape(count, -1).sum(axis=1))
        return counts

    @staticmethod
    def _flipped_at_once(node, args, batched, count, reference, out_ndim) -> np.ndarray | None:
        """The same count for every copy in one call, for ops whose forward broadcasts over leading batch axes
        (their decisions do too); None where the op's decisions do not come out as (copies, *shape)."""
        if node.op_info.batching != "broadcast" or not reference:
            return None
        rank = max(np.ndim(a) - (1 if b else 0) for a, b in zip(args, batched, strict=True))
        aligned = [np.reshape(a, (count,) + (1,) * (rank - (np.ndim(a) - 1)) + np.shape(a)[1:]) if b else a
                   for a, b in zip(args, batched, strict=True)]
        try:
            found = decisions_of(node, aligned)
        except (ArithmeticError, ValueError, TypeError, IndexError):
            return None
        if len(found) != len(reference) or any(d.shape != (count,) + r.shape for d, r in zip(found, reference, strict=True)):
            return None
        counts = np.zeros(count, dtype=np.int64)
        for d, r in zip(found, reference, strict=True):
            moved = d != r[None]
            lead = min(out_ndim, r.ndim)
            moved = moved.reshape((count,) + r.shape[:lead] + (-1,)).any(axis=-1)
            counts = np.maximum(counts, moved.reshape(count, -1).sum(axis=1))
        return counts

    def element_flips(self, index: int, steps: np.ndarray, offsets=(1.0, -1.0), elements=None) -> np.ndarray:
        """For each (flat) element, the most output decisions downstream that moving it alone by offset * its
        step changes, over the offsets (0: none; more than 1: a compound kink)."""
        shape = np.shape(self.values[index])
        elements = np.arange(int(np.prod(shape, dtype=np.int64))) if elements is None else np.asarray(elements, dtype=np.intp)
        if not self.watches(index) or not elements.size:
            return np.zeros(elements.size, dtype=np.int64)
        steps = np.asarray(steps, dtype=np.float64).reshape(-1)[elements]
        # every offset of every element in one pass downstream: copy k·n + e moves element e by offsets[k]
        moves = np.multiply.outer(np.asarray(offsets, dtype=np.float64), steps).reshape(-1)
        found = self.changed(index, Change.of_elements(shape, np.tile(elements, len(offsets)), moves))
        return np.max(found.reshape(len(offsets), elements.size), axis=0, initial=0)

    def element_flips_together(self, steps: dict[int, np.ndarray], offsets=(1.0, -1.0),
                               elements: dict[int, np.ndarray] | None = None) -> dict[int, np.ndarray]:
        """element_flips for several nodes (steps[i]: node i's, flat; elements[i]: the elements to move, default
        all), their copies swept downstream together (changed_together)."""
        starts, sizes = {}, {}
        for index, node_steps in steps.items():
            shape = np.shape(self.values[index])
            chosen = (np.arange(int(np.prod(shape, dtype=np.int64))) if elements is None or index not in elements
                      else np.asarray(elements[index], dtype=np.intp))
            moves = np.multiply.outer(np.asarray(offsets, dtype=np.float64),
                                      np.asarray(node_steps, dtype=np.float64).reshape(-1)[chosen]).reshape(-1)
            starts[index] = Change.of_elements(shape, np.tile(chosen, len(offsets)), moves)
            sizes[index] = chosen.size
        found = self.changed_together(starts)
        return {i: np.max(found[i].reshape(len(offsets), sizes[i]), axis=0, initial=0) for i in steps}

    def direction_flips(self, index: int, direction: np.ndarray, steps) -> bool:
        """Whether x + s * direction changes a decision downstream for any of the steps s."""
        if not self.watches(index):
            return False
        direction = np.asarray(direction, dtype=np.float64)
        offsets = np.stack([s * direction for s in steps])
        return bool(self.changed(index, Change.dense(offsets)).any())
