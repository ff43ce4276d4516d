"""Steps chosen per element from an error estimate (issue 8 point 4): closed-form derivatives, honest bounds.

Every expected value is a closed form (cos x, 1/(1+x), ...), never the program's own output; a numeric
value must lie within its reported error bound of it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gradcheck import check

FLOORS = {"forward": 1.3e-8, "central": 1.6e-11, "five-point": 1.0e-13, "richardson": 4.5e-14, "complex-step": 1e-15}


def numeric_of(spec: dict, node: str = "x", **options):
    result = check(spec, mode="full", **options)
    found = result.node(node)
    return result, np.asarray(found.numeric, dtype=np.float64).reshape(-1), np.asarray(found.numeric_error).reshape(-1)


def assert_bounded(numeric, bound, exact):
    """The reported bound covers the true error, and is a real (finite, non-zero where it matters) bound."""
    error = np.abs(numeric - exact)
    assert np.all(np.isfinite(bound))
    assert np.all(error <= bound), (error, bound)


@pytest.mark.parametrize("x", [[1.0e6, -2.5e6], [1.0e8, 3.3e7]])
def test_sin_far_from_zero(x):
    # a step relative to |x| spans periods; a step not a power of two is not the step x + h actually takes
    result, numeric, bound = numeric_of({"inputs": {"x": x}, "nodes": {"y": "sum(sin(x))"}}, method="central")
    assert result.node("x").status == "pass"
    exact = np.cos(np.array(x))
    assert_bounded(numeric, bound, exact)
    assert np.max(np.abs(numeric - exact)) < 1e-8


def test_log1p_next_to_its_pole():
    x = [-1 + 1e-6, -0.9999, 0.5]
    result, numeric, bound = numeric_of({"inputs": {"x": x}, "nodes": {"y": "sum(log1p(x))"}}, method="central")
    exact = 1 / (1 + np.array(x))
    assert result.node("x").status == "pass"
    assert_bounded(numeric, bound, exact)
    assert np.max(np.abs(numeric - exact) / exact) < 1e-6


def test_gradient_of_order_1e7_judged_with_rtol():
    x = [1.0, -0.5]
    result, numeric, bound = numeric_of({"inputs": {"x": x}, "nodes": {"y": "sum(x * x * 5e6)"}},
                                        method="central", atol=1e-9, rtol=1e-6)
    exact = 1e7 * np.array(x)
    assert result.node("x").status == "pass"
    assert_bounded(numeric, bound, exact)


def test_mixed_magnitudes_in_one_node_each_get_their_own_step():
    x = [1e-6, 3e-3, 1.0, 2e3, 1e6]
    result, numeric, bound = numeric_of({"inputs": {"x": x}, "nodes": {"y": "sum(log(x))"}}, method="central")
    exact = 1 / np.array(x)
    assert result.node("x").status == "pass" and result.node("x").kinks == 0
    assert_bounded(numeric, bound, exact)
    assert np.max(np.abs(numeric - exact) / exact) < 1e-7


def test_exp_at_35_is_no_kink():
    result, numeric, bound = numeric_of({"inputs": {"x": [35.0]}, "nodes": {"y": "sum(exp(x))"}}, method="central")
    assert result.node("x").status == "pass" and result.status == "pass"
    assert_bounded(numeric, bound, np.array([math.exp(35.0)]))


SMOOTH = {"inputs": {"x": [0.3, -1.2, 2.0, 0.05, -0.7]}, "nodes": {"y": "sum(sin(x) * exp(x / 3))"}}


def smooth_derivative(x):
    return np.exp(x / 3) * (np.cos(x) + np.sin(x) / 3)


@pytest.mark.parametrize("method", list(FLOORS))
def test_each_method_reaches_its_float64_floor_with_an_honest_bound(method):
    result, numeric, bound = numeric_of(SMOOTH, method=method)
    exact = smooth_derivative(np.array(SMOOTH["inputs"]["x"]))
    assert result.status == "pass"
    assert np.max(np.abs(numeric - exact) / np.maximum(1, np.abs(exact))) <= 10 * FLOORS[method]
    assert_bounded(numeric, bound, exact)
