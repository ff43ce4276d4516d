"""The objective with one node's value replaced, recomputing only what lies downstream of it."""
from __future__ import annotations

from functools import cached_property

import numpy as np

from ..batching import batched_apply
from ..engine import evaluate_node, evaluation_failures
from ..graph import Graph


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

    def objectives_at(self, index: int, elements: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The objective with element elements[k] (flat index) of node index shifted by offsets[k], for every k
        (complex offsets: complex-step); NaN where that evaluation left an op's domain.  Never mutates cached
        values.  (The straightforward form: stacked copies through objectives_batch.)"""
        elements = np.asarray(elements, dtype=np.int64).reshape(-1)
        offsets = np.asarray(offsets).reshape(-1)
        is_complex = np.iscomplexobj(offsets)
        dtype = np.complex128 if is_complex else np.float64
        flat_x = np.ascontiguousarray(self.values[index], dtype=dtype).reshape(-1)
        shape = np.shape(self.values[index])
        found = np.full(elements.size, np.nan, dtype=dtype)
        chunk = max(1, 4_000_000 // max(1, self.copy_floats(index)))
        for start in range(0, elements.size, chunk):
            part = slice(start, min(elements.size, start + chunk))
            copies = np.tile(flat_x, (len(elements[part]), 1))
            copies[np.arange(copies.shape[0]), elements[part]] += offsets[part]
            batch = None if is_complex else self.objectives_batch(index, copies.reshape((-1,) + shape))
            if batch is None:  # complex copies, or an op refused some copy: one at a time
                batch = np.array([self.objective_with(index, copy.reshape(shape)) for copy in copies], dtype=dtype)
            found[part] = batch
        return found
