"""Evaluating an op on many perturbed copies of its inputs at once (a leading batch axis).

The numeric reference perturbs one element at a time; stacking K perturbations along a new
leading axis turns K downstream re-evaluations into one vectorised pass.  Each op says how it
takes a batch, beside its forward in the registry (``Primitive.batching``):

  "broadcast"  forward treats extra leading axes as batch axes and broadcasts them
               (elementwise ops, matmul of matrices, layer_norm, attention, pooling);
  "stack"      forward already treats a leading axis of the batched arguments as a stack axis
               (matmul with a vector);
  "axis"       forward takes a batched input once ``batch_params(params, unbatched_shape)`` moves
               its axis/shape/index parameters past the batch axis (reductions, softmax, reshape, ...);
  "custom"     the op's own ``forward_batched(aligned_args, batched, **params)`` (losses that
               average over every sample: the average must not run over the copies);
  None         one copy at a time (batch_norm, dropout, embedding, conv2d).

Whatever the rule, a result whose shape is not (K, *expected) falls back to the loop.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

# how often each op took the vectorised path or fell back to the loop (for tests and benchmarks)
PATHS: Counter = Counter()


def batched_apply(node, args: list, batched: list[bool], count: int, expected_shape: tuple, evaluate) -> np.ndarray:
    """The node's value for each of ``count`` copies: an array of shape (count, *expected_shape).

    ``evaluate(node, args)`` applies the op to unbatched arguments (the engine's evaluate_node).
    """
    impl = node.op.impl
    rule = getattr(impl, "batching", None)
    if callable(rule):
        rule = rule([np.shape(a)[1:] if b else np.shape(a) for a, b in zip(args, batched)], batched)
    result = None
    try:
        if rule == "broadcast":
            result = evaluate(node, _aligned(args, batched, count))
        elif rule == "stack":
            result = evaluate(node, args)
        elif rule == "custom":
            result = impl.forward_batched(_aligned(args, batched, count), batched, **node.params)
        elif rule == "axis":
            params = impl.batch_params(node.params, unbatched_shape(args, batched))
            result = evaluate(node, [a if b else np.broadcast_to(a, (count,) + np.shape(a)) for a, b in zip(args, batched)],
                              params)
    except Exception:
        result = None
    if result is not None and np.shape(result) == (count,) + tuple(expected_shape):
        PATHS[(node.op.name, "batched")] += 1
        return result
    PATHS[(node.op.name, "loop" if rule is None else "fallback")] += 1
    return np.stack([evaluate(node, [a[k] if b else a for a, b in zip(args, batched)]) for k in range(count)])


def unbatched_shape(args, batched) -> tuple:
    """The unbatched shape of the first batched argument (what the axis parameters refer to)."""
    for a, b in zip(args, batched):
        if b:
            return np.shape(a)[1:]
    return np.shape(args[0])


def per_copy_mean(values: np.ndarray, count: int) -> np.ndarray:
    """The mean over everything but the leading batch axis, broadcasting included."""
    values = np.asarray(values)
    return values.reshape(count, -1).mean(axis=1) if values.shape[:1] == (count,) else None


def _aligned(args, batched, count):
    """Batched arguments reshaped to (K, 1, ..., 1, *shape) so their batch axis lines up in front of every other."""
    rank = max(np.ndim(a) - (1 if b else 0) for a, b in zip(args, batched))
    aligned = []
    for a, b in zip(args, batched):
        if b:
            shape = np.shape(a)[1:]
            aligned.append(np.reshape(a, (count,) + (1,) * (rank - len(shape)) + shape))
        else:
            aligned.append(a)
    return aligned


# ---------------------------------------------------------------- parameter shifts for the "axis" rule

def shift_axis_param(params: dict, shape: tuple) -> dict:
    """Parameters with 'axis' (None: every axis) moved past the leading batch axis."""
    return {**params, "axis": shift_axes(params.get("axis"), len(shape))}


def first_argument_only(shapes, batched) -> str | None:
    """Batch rule of ops whose later arguments are per-feature parameters (layer_norm's gamma, beta)."""
    return "broadcast" if batched[0] and not any(batched[1:]) else None


def shift_axes(axis, ndim: int):
    """Axes of the unbatched input, as axes of the batched one (batch axis 0 in front)."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim + 1 for a in axis)
    return axis % max(ndim, 1) + 1
