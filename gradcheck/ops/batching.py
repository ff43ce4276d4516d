"""Batching helpers the ops declare as their hooks (``batch_params``, ``batching``, ``forward_batched``).

The rules themselves are applied by gradcheck/batching.py; these helpers only say, per op, how a
leading batch axis of K perturbed copies moves its parameters or its reduction.
"""
from __future__ import annotations

import numpy as np


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


def per_copy_mean(values: np.ndarray, count: int) -> np.ndarray | None:
    """The mean over everything but the leading batch axis, broadcasting included (None: no batch axis)."""
    values = np.asarray(values)
    return values.reshape(count, -1).mean(axis=1) if values.shape[:1] == (count,) else None
