"""An independent finite-difference reference for the tests (not gradcheck.numeric).

Five-point central differences in float64: error O(h^4), so with h ~ 1e-3 the truncation
error is ~1e-12 for smooth functions and the round-off ~1e-13, far below test tolerances.
"""
from __future__ import annotations

import numpy as np


def numeric_gradient(scalar_fn, x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """d scalar_fn / d x, elementwise, by the five-point stencil."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = h * max(1.0, abs(x[index]))
        at = [_moved_value(scalar_fn, x, index, k * step) for k in (2, 1, -1, -2)]
        grad[index] = (-at[0] + 8 * at[1] - 8 * at[2] + at[3]) / (12 * step)
    return grad


def _moved_value(scalar_fn, x: np.ndarray, index: tuple, offset: float) -> float:
    """scalar_fn at x with the element at index moved by offset."""
    shifted = x.copy()
    shifted[index] += offset
    return float(scalar_fn(shifted))


def assert_close(actual, expected, atol=1e-7, rtol=1e-6, what=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    error = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    if not np.all(error <= bound):
        worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.ndim else ()
        raise AssertionError(
            f"{what}: max error {error.max():.3g} at {worst}: got {actual[worst]!r}, expected {expected[worst]!r}")
