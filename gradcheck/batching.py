"""Evaluating an op on many perturbed copies of its inputs at once (a leading batch axis).

The numeric reference perturbs one element at a time; stacking K perturbations along a new
leading axis turns K downstream re-evaluations into one vectorised pass.  Each op declares how it
takes a batch in its op record (``batching``, see gradcheck/ops/base.py):

  "broadcast"  forward treats extra leading axes as batch axes and broadcasts them
               (elementwise ops, matmul of matrices, layer_norm, attention, pooling);
  "stack"      forward already treats a leading axis of the batched arguments as a stack axis
               (matmul with a vector);
  "axis"       forward takes a batched input once ``batch_params(params, unbatched_shape)`` moves
               its axis/shape/index parameters past the batch axis (reductions, softmax, reshape, ...);
  "custom"     the op's own ``forward_batched(aligned_args, batched, **params)`` (losses that
               average over every sample: the average must not run over the copies);
  None         one copy at a time (batch_norm, embedding; conv2d when both x and w vary).

Whatever the rule, a result whose shape is not (K, *expected) falls back to the loop.  A custom op's rule is its
author's claim: the first time it is used at a node (for a pattern of batched arguments), its first and last copies
are compared with one-at-a-time evaluations, and where they differ beyond rounding the rule is set aside at that
node (``declaration_holds``), so a wrong declaration costs time, never a verdict.
"""
from __future__ import annotations

import numpy as np

from .ops import OpArgumentError

EPS = float(np.finfo(np.float64).eps)

# what applying a batching rule to arguments it does not suit raises (numpy's shape errors, the op's own checks)
RULE_DOES_NOT_APPLY = (OpArgumentError, ValueError, TypeError, IndexError)


def batched_apply(node, args: list, batched: list[bool], count: int, expected_shape: tuple, evaluate) -> np.ndarray:
    """The node's value for each of ``count`` copies: an array of shape (count, *expected_shape).

    ``evaluate(node, args, params=None)`` applies the op to unbatched arguments (the engine's evaluate_node).
    """
    result = batched_forward(node, args, batched, count, expected_shape, evaluate)
    if result is not None:
        return result
    return np.stack([evaluate(node, [a[k] if b else a for a, b in zip(args, batched, strict=True)]) for k in range(count)])


def batching_rule(node, args: list, batched: list[bool]) -> str | None:
    """The op's batching rule for these arguments (None: one copy at a time)."""
    rule = node.op_info.batching
    if callable(rule):
        rule = rule([np.shape(a)[1:] if b else np.shape(a) for a, b in zip(args, batched, strict=True)], batched)
    return rule


def batched_forward(node, args: list, batched: list[bool], count: int, expected_shape: tuple, evaluate) -> np.ndarray | None:
    """The copies' values in one vectorised call, or None where the op's rule declines or does not apply
    (then batched_apply evaluates the copies one by one)."""
    op = node.op
    rule = batching_rule(node, args, batched)
    try:
        if rule == "broadcast":
            result = evaluate(node, _aligned(args, batched, count))
        elif rule == "stack":
            result = evaluate(node, args)
        elif rule == "custom":
            result = op.forward_batched(_aligned(args, batched, count), batched, **node.params)
        elif rule == "axis":
            params = op.batch_params(node.params, unbatched_shape(args, batched))
            stacked = [a if b else np.broadcast_to(a, (count,) + np.shape(a)) for a, b in zip(args, batched, strict=True)]
            result = evaluate(node, stacked, params)
        else:
            return None
    except RULE_DOES_NOT_APPLY:
        return None
    if result is None or np.shape(result) != (count,) + tuple(expected_shape):
        return None
    if node.op_info.source != "builtin" and not declaration_holds(
            node, ("batching", rule, tuple(batched)),
            lambda: _copies_differ_by(node, args, batched, np.asarray(result), evaluate)):
        return None
    return result


def declaration_holds(node, key: tuple, difference) -> bool:
    """Whether a custom op's declaration (``key``: its hook and how it is used) holds at node.  The first time,
    ``difference()`` -- how far the declared path's results lie from those of the path it replaces, 0 where they
    agree to rounding -- decides; ``node.declarations`` keeps the answer for the rest of the check (and what was
    found, which the check's notes report)."""
    found = node.declarations.get(key)
    if found is None:
        with np.errstate(all="ignore"):
            found = node.declarations[key] = float(difference())
    return found == 0.0


def gap_text(gap: float) -> str:
    """A difference declaration_holds found, in words: inf means one of the two paths failed or gave NaN."""
    return "where one of the two fails or gives NaN" if gap == float("inf") else f"by up to {gap:.3g}"


def beyond_rounding(declared: np.ndarray, reference: np.ndarray) -> float:
    """The largest |declared - reference| where it exceeds what rounding explains, 0 where none does.  Rounding
    here is that of two evaluation orders of the same arithmetic: 64 eps of each element and 1024 eps of the
    array's largest (a sum evaluated in another order errs by eps times its terms, not its result); inf where
    one is NaN and the other not.  What it lets through moves a finite difference at step h by at most
    2.3e-13 max|f| / h, well below the stencils' own round-off bounds."""
    declared, reference = np.asarray(declared, dtype=np.complex128), np.asarray(reference, dtype=np.complex128)
    missing = np.isnan(declared) != np.isnan(reference)
    if np.any(missing):
        return float("inf")
    gap = np.abs(declared - reference)
    gap[np.isnan(gap)] = 0.0
    scale = float(np.nanmax(np.abs(reference), initial=0.0))
    allowed = 64 * EPS * (np.abs(declared) + np.abs(reference)) + 1024 * EPS * scale
    excess = gap > np.nan_to_num(allowed, nan=np.inf)
    return float(np.max(gap[excess])) if np.any(excess) else 0.0


def _copies_differ_by(node, args: list, batched: list[bool], result: np.ndarray, evaluate) -> float:
    """How far the first and last copies of a batched result lie from the op applied to each on its own."""
    worst = 0.0
    for k in sorted({0, len(result) - 1}):
        try:
            single = np.asarray(evaluate(node, [a[k] if b else a for a, b in zip(args, batched, strict=True)]))
        except Exception:  # a custom op's own failure on one copy: the batch did not fail, so they differ
            return float("inf")
        if single.shape != result[k].shape:
            return float("inf")
        worst = max(worst, beyond_rounding(result[k], single))
    return worst


def unbatched_shape(args, batched) -> tuple:
    """The unbatched shape of the first batched argument (what the axis parameters refer to)."""
    for a, b in zip(args, batched, strict=True):
        if b:
            return np.shape(a)[1:]
    return np.shape(args[0])


def _aligned(args, batched, count):
    """Batched arguments reshaped to (K, 1, ..., 1, *shape) so their batch axis lines up in front of every other."""
    rank = max(np.ndim(a) - (1 if b else 0) for a, b in zip(args, batched, strict=True))
    aligned = []
    for a, b in zip(args, batched, strict=True):
        if b:
            shape = np.shape(a)[1:]
            aligned.append(np.reshape(a, (count,) + (1,) * (rank - len(shape)) + shape))
        else:
            aligned.append(a)
    return aligned
