"""Steps chosen per element from an error estimate (issue 8 point 4): closed-form derivatives, honest bounds.

Every expected value is a closed form (cos x, 1/(1+x), ...), never the program's own output; a numeric
value must lie within its reported error bound of it."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gradcheck import check
from gradcheck.numeric import MACHINE_EPS

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
    assert_within_floor(SMOOTH, smooth_derivative, method, 10)


def assert_within_floor(spec, derivative, method, factor):
    """The spec passes, its numeric gradient is within factor x the method's floor of the closed form, and bounded."""
    result, numeric, bound = numeric_of(spec, method=method)
    exact = derivative(np.array(spec["inputs"]["x"]))
    assert result.status == "pass"
    assert np.max(np.abs(numeric - exact) / np.maximum(1, np.abs(exact))) <= factor * FLOORS[method]
    assert_bounded(numeric, bound, exact)


# small elements on an objective that varies on a scale of 1: the first step (relative to |x| ~ 0.05) is round-off
# bound, and the search must see that its truncation estimate is noise and lengthen it
SMALL_ELEMENTS = {"inputs": {"x": [0.05, -0.08, 0.03, 0.1, -0.06]},
                  "nodes": {"y": "sum(exp(x) * cos(3 * x + 0.2)) * 0.2"}}


def small_elements_derivative(x):
    return 0.2 * np.exp(x) * (np.cos(3 * x + 0.2) - 3 * np.sin(3 * x + 0.2))


@pytest.mark.parametrize("method", ["central", "five-point", "richardson"])
def test_small_elements_reach_the_floor(method):
    # the first steps alone reach 5-10x the floor here; the longer steps the search must find, about 2x
    assert_within_floor(SMALL_ELEMENTS, small_elements_derivative, method, 4)


def test_a_scale_divided_out_again_leaves_a_tight_bound():
    # 1e12 t(x) / 1e12 is exact to a relative 1e-16: the round-off is that of the objective (1e5), not of 1e12
    # (gelu's erf form is not complex-safe, so every method differences real values; gelu'(x) = Phi(x) + x phi(x))
    x = np.linspace(-1.5, 1.5, 12)
    spec = {"inputs": {"x": x.tolist()}, "nodes": {"y": "sum(gelu(x) * 1e12) / 1e12 + 1e5"}}
    result, numeric, bound = numeric_of(spec, method="central")
    assert result.node("x").status == "pass"
    exact = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    assert_bounded(numeric, bound, exact)
    assert np.max(bound) < 1e-6  # 4 eps 1e12 / h would be above 1 at any step that resolves tanh


def test_an_offset_the_inputs_round_to_keeps_its_noise_in_the_bound():
    # x + 1e8 rounds the perturbed x to multiples of ulp(1e8) = 1.5e-8: that noise is real and must stay bounded
    x = np.array([0.3, -0.7, 1.2])
    spec = {"inputs": {"x": x.tolist()}, "nodes": {"y": "sum(sin(x + 1e8))"}}
    result, numeric, bound = numeric_of(spec, method="central")
    assert result.node("x").status in ("pass", "inconclusive")
    assert_bounded(numeric, bound, np.cos(x + 1e8))


def test_complex_step_behind_an_op_that_is_not_analytic_falls_back_to_richardson():
    # gelu's erf form is not complex-safe: complex-step was asked for its accuracy, so the fallback is the most accurate
    # real stencil, reaching Richardson's floor (central's is 350x coarser)
    x = np.array([0.04, -0.07, 0.6, -1.1])
    spec = {"inputs": {"x": x.tolist()}, "nodes": {"y": "sum(gelu(x) * cos(x))"}}
    result, numeric, bound = numeric_of(spec, method="complex-step")
    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    gelu = x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    exact = (gelu / x + x * phi) * np.cos(x) - gelu * np.sin(x)
    assert any("Richardson" in note for note in result.notes)
    assert np.max(np.abs(numeric - exact) / np.maximum(1, np.abs(exact))) <= 10 * FLOORS["richardson"]
    assert_bounded(numeric, bound, exact)


def test_complex_step_runs_through_the_tanh_form_of_gelu():
    # gelu(x, approximate='tanh') = x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3), is analytic
    x = np.array([0.04, -0.07, 0.6, -1.1, 2.3])
    spec = {"inputs": {"x": x.tolist()}, "nodes": {"y": "sum(gelu(x, approximate='tanh') * cos(x))"}}
    result, numeric, bound = numeric_of(spec, method="complex-step")
    c = math.sqrt(2 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    gelu = 0.5 * x * (1 + t)
    slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    exact = slope * np.cos(x) - gelu * np.sin(x)
    assert not any("Richardson" in note for note in result.notes)
    assert np.max(np.abs(numeric - exact) / np.maximum(1, np.abs(exact))) <= 10 * FLOORS["complex-step"]
    assert_bounded(numeric, bound, exact)


# a node of more than 64 elements (Comparator.full then lets a bound that settles the verdict end the search) of
# small |x| on an objective varying on a scale of 1: base * |x| is round-off bound, 10-100x above the floor
rng = np.random.default_rng(8)
LARGE_SMALL_NODE = {"inputs": {"x": (0.1 * rng.random(100) - 0.05).tolist()}, "nodes": {"y": "sum(sin(x + 1))"}}


@pytest.mark.parametrize("method", ["central", "five-point", "richardson"])
def test_a_large_node_of_small_elements_reaches_the_floor(method):
    assert_within_floor(LARGE_SMALL_NODE, lambda x: np.cos(x + 1), method, 10)


# a constant offset no change carries: the modelled round-off (eps |f0| / h, f0 ~ 20) is far above what the
# changes show (ulps of sin(x), x in [-1, 1]), so the step balancing it is too long until the round-off is measured
rng = np.random.default_rng(9)
OFFSET_NODE = {"inputs": {"x": (2 * rng.random(40) - 1).tolist()}, "nodes": {"y": "sum(sin(x)) + 20"}}


@pytest.mark.parametrize("method", ["central", "five-point", "richardson"])
def test_round_off_measured_below_the_model_sets_the_step(method):
    # balancing the model's round-off alone lands 4-6x above the floor
    assert_within_floor(OFFSET_NODE, np.cos, method, 2)


# an objective of exactly 0 (X W + b = 0, where tanh is linear to third order): the round-off scaled by |f0| is 0,
# yet the quotient still carries the roundings of its own arithmetic, a few ulps of its value (dW = X^T 1 = [3, 6])
ZERO_OBJECTIVE = {"inputs": {"X": [[1.0, 2.0], [2.0, 4.0]], "W": [[0.5], [-0.25]], "b": [0.0]},
                  "nodes": {"h": "tanh(X @ W + b)", "loss": "sum(h)"}}


@pytest.mark.parametrize("method", ["central", "five-point", "richardson"])
def test_a_zero_objective_keeps_the_quotients_own_rounding_in_its_bound(method):
    result, numeric, bound = numeric_of(ZERO_OBJECTIVE, "W", method=method)
    assert result.status == "pass"
    assert_bounded(numeric, bound, np.array([3.0, 6.0]))


def test_a_complex_step_derivative_cancelled_down_from_larger_terms_keeps_their_rounding_in_its_bound():
    # d/dx of x*0.1 + x*0.2 - x*0.3 + 1e-3 x^2 is 2e-3 x in the reals: the imaginary part sums terms of ~0.3 h,
    # each rounded at its own size, so the estimate is off by ~4e-17 while the value itself is ~1e-3
    x = np.array([0.7, -1.3, 2.1, 0.4, 1.9, -0.6])
    _, numeric, bound = numeric_of({"inputs": {"x": x.tolist()},
                                    "nodes": {"y": "sum(x * 0.1 + x * 0.2 - x * 0.3 + x * x * 1e-3)"}},
                                   method="complex-step")
    assert_bounded(numeric, bound, 2e-3 * x)
    assert np.all(bound <= 1e-15)   # still complex-step's accuracy, not a real difference's


def closed_form(name: str, z: np.ndarray) -> np.ndarray:
    """expm1, tanh and log1p of complex z from their real and imaginary parts, in long double (80-bit on x86)."""
    a, b = z.real.astype(np.longdouble), z.imag.astype(np.longdouble)
    if name == "expm1":  # e^a (cos b + i sin b) - 1
        real, imaginary = np.expm1(a) * np.cos(b) - 2 * np.sin(b / 2) ** 2, np.exp(a) * np.sin(b)
    elif name == "tanh":  # (sinh 2a + i sin 2b) / (cosh 2a + cos 2b)
        real, imaginary = np.sinh(2 * a) / (np.cosh(2 * a) + np.cos(2 * b)), np.sin(2 * b) / (np.cosh(2 * a) + np.cos(2 * b))
    else:                # log|1 + z| + i arg(1 + z), |1 + z|^2 = 1 + a (2 + a) + b^2
        real, imaginary = np.log1p(a * (2 + a) + b * b) / 2, np.arctan2(b, 1 + a)
    return real.astype(np.float64) + 1j * imaginary.astype(np.float64)


@pytest.mark.parametrize("name", ["expm1", "log1p", "tanh"])
def test_complex_functions_from_real_ones_are_exact_to_rounding(name):
    # the complex-step pass (tanh, the cross-entropy rule) takes these at imaginary parts of ~1e-20, where real-function
    # identities hold to rounding; beyond the threshold numpy's complex functions answer (whose log1p loses
    # 300 ulps near 0, so the closed form is the reference)
    from gradcheck.ops import complexmath

    rng = np.random.default_rng(3)
    real = rng.uniform(-0.9, 3, 2000) if name == "log1p" else rng.uniform(-20, 20, 2000)
    for z in (real + 1e-20j * rng.standard_normal(2000), 1e-17 * real + 1e-20j * rng.standard_normal(2000)):
        expected, found = closed_form(name, z), getattr(complexmath, name)(z)
        assert np.all(np.abs(found.real - expected.real) <= 2 * MACHINE_EPS * np.abs(expected))
        assert np.all(np.abs(found.imag - expected.imag) <= 4 * MACHINE_EPS * np.abs(expected.imag))
        # one element alone (a 0-d array) and every other one (a strided view) take the same path
        assert getattr(complexmath, name)(z[3].reshape(())) == found[3]
        assert np.array_equal(getattr(complexmath, name)(z[::2]), found[::2])
    wide = real + 1j * rng.standard_normal(2000)
    assert np.array_equal(getattr(complexmath, name)(wide), getattr(np, name)(wide))


CANCELLED = {"inputs": {"x": [0.7, -1.3, 2.1, 0.4, 1.9, -0.6]},
             "nodes": {"y": "sum(x * 0.1 + x * 0.2 - x * 0.3 + x * x * 1e-3)"}}


def cancelled_differentiator():
    from gradcheck.engine import forward
    from gradcheck.graph import build_graph
    from gradcheck.numeric import Evaluator, NodeDifferentiator
    from gradcheck.spec import parse_spec

    graph = build_graph(parse_spec(CANCELLED, "<dict>", Path.cwd(), "cancelled"))
    reference = forward(graph, "float64")
    evaluator = Evaluator(graph, reference.values, reference.projection)
    return NodeDifferentiator(evaluator, graph.by_name["x"], "complex-step", None)


def test_one_element_complex_steps_keep_the_rounding_of_cancelled_terms_in_their_bound(monkeypatch):
    # adaptive() (the most accurate estimate, at a domain's edge) and element()'s one-at-a-time fallback take
    # complex steps one element at a time: their bounds hold as the batched pass's do (see the test above)
    differ = cancelled_differentiator()
    exact = 2e-3 * np.array(CANCELLED["inputs"]["x"])
    adaptive = [differ.adaptive(k) for k in range(exact.size)]
    assert_bounded(np.array([e.value for e in adaptive]), np.array([e.error_bound for e in adaptive]), exact)
    # element() falls back to one element at a time where the batched pass gave no finite value
    from gradcheck.numeric.differentiator import Estimate

    monkeypatch.setattr(differ, "error_balanced", lambda elements, *_, **__: Estimate(
        np.full(np.size(elements), np.nan), np.zeros(np.size(elements)), np.zeros(np.size(elements))))
    fallback = [differ.element(k) for k in range(exact.size)]
    assert_bounded(np.array([e.value for e in fallback]), np.array([e.error_bound for e in fallback]), exact)
    assert all(e.error_bound <= 1e-15 for e in adaptive + fallback)   # still complex-step's accuracy


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= 1e-17, reason="the closed form needs long double beyond float64")
def test_one_element_complex_steps_take_their_nodes_scale_into_their_bound():
    # d/dW sum(v * tanh(X W)) = X^T (v sech^2(X W)), in long double.  The float64 forward values (tanh of X W) are
    # rounded alike for both complex steps, so their spread misses that rounding: where a derivative cancels
    # below its terms, only a bound scaled by the node's derivatives covers it (spread alone: 6 of 128 beyond,
    # up to 8.5x).  element() estimates one element at a time: it takes that scale from a sample of the node.
    from gradcheck.engine import forward
    from gradcheck.graph import build_graph
    from gradcheck.numeric import Evaluator, NodeDifferentiator
    from gradcheck.spec import parse_spec

    rng = np.random.default_rng(1)
    X, W, v = rng.standard_normal((32, 16)), 0.3 * rng.standard_normal((16, 8)), rng.standard_normal((32, 8))
    spec = {"inputs": {"X": {"value": X.tolist(), "requires_grad": False}, "W": W.tolist(),
                       "v": {"value": v.tolist(), "requires_grad": False}},
            "nodes": {"f": "sum(v * tanh(X @ W))"}}
    graph = build_graph(parse_spec(spec, "<dict>", Path.cwd(), "tanh layer"))
    reference = forward(graph, "float64")
    differ = NodeDifferentiator(Evaluator(graph, reference.values, reference.projection), graph.by_name["W"],
                                "complex-step", None)
    extended = np.longdouble
    exact = (X.astype(extended).T @ (v.astype(extended) / np.cosh(X.astype(extended) @ W.astype(extended)) ** 2))
    one_by_one = [differ.element(k) for k in range(W.size)]
    numeric = np.array([e.value for e in one_by_one], dtype=extended)
    assert np.all(np.abs(numeric - exact.reshape(-1)) <= np.array([e.error_bound for e in one_by_one]))
    some = np.flatnonzero(np.abs(exact.reshape(-1)) < 1)  # a second look at the small ones: the most accurate estimate
    better = differ.most_accurate(some)
    assert np.all(np.abs(better.values.astype(extended) - exact.reshape(-1)[some]) <= better.error_bound)
    batched = differ.gradient()
    assert np.all(np.abs(batched.values.reshape(-1).astype(extended) - exact.reshape(-1)) <= batched.error_bound)
    assert np.all(batched.error_bound <= 4e-15 * np.max(np.abs(batched.values)))   # still complex-step's accuracy


def test_a_first_level_that_shows_only_round_off_near_the_floor_ends_the_search(monkeypatch):
    # 0.1 exp(x) at |x| < 1: the first step's truncation estimate (h^2 f''' / 6 ~ 1e-12) is below the round-off it
    # carries, and that level's error is within 3x of what central differences reach (eps^(2/3)): a longer step
    # could only trade that round-off for a truncation hidden in the noise, so no further level is taken
    from gradcheck.numeric.differentiator import NodeDifferentiator

    levels = []
    level = NodeDifferentiator.quotient_and_truncation

    def counted(self, elements, method, steps):
        levels.append(elements.size)
        return level(self, elements, method, steps)

    monkeypatch.setattr(NodeDifferentiator, "quotient_and_truncation", counted)
    spec = {"inputs": {"x": [0.3, -0.2, 0.5, 0.7]}, "nodes": {"y": "sum(exp(x)) * 0.1"}}
    result, numeric, bound = numeric_of(spec)
    exact = 0.1 * np.exp(np.array(spec["inputs"]["x"]))
    assert result.status == "pass"
    assert len(levels) == 1
    assert np.max(np.abs(numeric - exact)) <= FLOORS["central"]
    assert_bounded(numeric, bound, exact)
