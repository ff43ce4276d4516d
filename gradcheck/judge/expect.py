"""The values a spec pins under ``expect:`` (published numbers), judged by the same element-wise rule."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import Location
from ..graph import Graph
from ..results import ExpectResult
from ..spec import Expectation, Tolerance
from .verdict import agrees

if TYPE_CHECKING:  # numpy.typing is not loaded at run time
    from numpy.typing import ArrayLike

FLOAT32_EXPECT_FLOOR = Tolerance(atol=1e-7, rtol=1e-5)  # a few float32 ulps, accumulated


def check_expectations(graph: Graph, expect: Expectation, fwd, grads) -> list[ExpectResult]:
    tol = Tolerance(expect.atol, expect.rtol)
    if graph.spec.dtype == "float32":
        # numbers pinned for float64 cannot hold tighter than float32 resolves them
        tol = Tolerance(max(tol.atol, FLOAT32_EXPECT_FLOOR.atol), max(tol.rtol, FLOAT32_EXPECT_FLOOR.rtol))
    checks: list[tuple[str, ArrayLike, ArrayLike, Location | None]] = []
    if expect.output is not None:
        checks.append(("output", expect.output, fwd.output_value, expect.output_location))
    for name, (pinned, where) in expect.grads.items():
        adjoint = grads.adjoints[graph.by_name[name]]
        actual = np.zeros(np.shape(fwd.values[graph.by_name[name]])) if adjoint is None else adjoint
        checks.append((f"grad {name}", pinned, actual, where))
    for name, (pinned, where) in expect.values.items():
        checks.append((f"value {name}", pinned, fwd.values[graph.by_name[name]], where))
    results = []
    for what, expected, actual, location in checks:
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if expected.shape != actual.shape and expected.size != actual.size:
            results.append(ExpectResult(what, expected, actual, False, float("inf"), location,
                                        f"expected shape {expected.shape}, got {actual.shape}"))
            continue
        expected = expected.reshape(actual.shape)
        error = np.abs(actual - expected)
        ok = bool(np.all(agrees(actual, expected, tol)))
        results.append(ExpectResult(what, expected, actual, ok, float(error.max()) if error.size else 0.0, location))
    return results
