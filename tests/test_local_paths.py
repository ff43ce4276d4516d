"""The cheaper paths of the op-local and jvp checks: unit-variance uniform cotangents, one evaluation for an
argument a built-in op is affine in (tested by tests/test_linear_ops.py), and the same verdicts as before."""
from __future__ import annotations

import math
import textwrap

import numpy as np

from gradcheck import check_spec
from gradcheck.judge import jvp as jvp_module
from gradcheck.judge.local import OpCheck, random_signs, stacked_along, uniform_cotangents
from gradcheck.numeric.stencils import ROW_BY_ROW_ELEMENTS
from gradcheck.ops import BUILTIN_OPS

from .test_linear_ops import standalone_check


def test_uniform_cotangents_have_mean_zero_variance_one_and_their_range():
    draws = uniform_cotangents(np.random.default_rng(7), (4, 50_000))
    assert draws.shape == (4, 50_000)
    root3 = math.sqrt(3.0)
    assert float(draws.min()) >= -root3 and float(draws.max()) < root3
    # uniform on [-a, a): variance a²/3 = 1, fourth moment a⁴/5 = 9/5; the sample's errors are ~1/sqrt(200000)
    n = draws.size
    assert abs(float(draws.mean())) < 5 / math.sqrt(n)
    assert abs(float((draws ** 2).mean()) - 1.0) < 5 * math.sqrt(9 / 5 - 1) / math.sqrt(n)


def test_stacked_along_is_x_plus_each_step_times_the_direction_also_for_a_scalar():
    x, d = np.array([[1.0, -2.0], [0.5, 4.0]]), np.array([[0.25, 1.0], [-1.0, 2.0]])
    stacked = stacked_along(x, d, (2.0, -0.5, 0.0))
    assert stacked.shape == (3, 2, 2)
    assert np.array_equal(stacked, np.stack([x + 2.0 * d, x - 0.5 * d, x]))  # exact: dyadic values
    assert np.array_equal(stacked_along(np.array(3.0), np.array(0.5), (1.0, -4.0)), [3.5, 1.0])
    # copies of ROW_BY_ROW_ELEMENTS and more are written one by one: the same values
    large_x, large_d = np.tile(x, (20, 20)), np.tile(d, (20, 20))
    assert large_x.size >= ROW_BY_ROW_ELEMENTS
    expected = np.stack([large_x + 2.0 * large_d, large_x - 0.5 * large_d])
    assert np.array_equal(stacked_along(large_x, large_d, (2.0, -0.5)), expected)


def test_random_signs_are_the_magnitudes_with_independent_fair_signs():
    magnitudes = np.linspace(1.0, 2.0, 40_000).reshape(200, 200)
    signed = random_signs(np.random.default_rng(3), magnitudes)
    assert signed.shape == magnitudes.shape
    assert np.array_equal(np.abs(signed), magnitudes)
    negative = signed < 0
    # a fair coin per element: the count of negatives is within 5 standard deviations (sqrt(n)/2) of n/2
    assert abs(int(negative.sum()) - 20_000) < 5 * 100
    # neighbours independent: a sign equals the next one's half of the time
    assert abs(int((negative[:, 1:] == negative[:, :-1]).sum()) - 19_900) < 5 * math.sqrt(39_800) / 2


def test_a_built_in_affine_argument_takes_one_evaluation_and_gives_the_exact_product(monkeypatch):
    """matmul in its right argument: J d = A @ D in closed form, from the op at x + d alone."""
    info = BUILTIN_OPS["matmul"]
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    check = standalone_check(info, [a, b], {})
    evaluations = []
    original = OpCheck.output_at

    def counted(self, position, x):
        evaluations.append(position)
        return original(self, position, x)

    monkeypatch.setattr(OpCheck, "output_at", counted)
    monkeypatch.setattr(OpCheck, "outputs_along", lambda *args: (_ for _ in ()).throw(AssertionError("two steps")))
    direction = rng.standard_normal(b.shape)
    jd, error = check.linear_directional(1, check.args[1], direction)
    assert evaluations == [1]
    assert np.all(np.abs(jd - a @ direction) <= error + 1e-300)
    assert float(np.max(error)) < 1e-13


def test_compare_reads_cotangents_that_are_not_the_checks_own_too():
    check = standalone_check(BUILTIN_OPS["tanh"], [np.array([0.3, -1.2, 2.0])], {})
    x = check.args[0]
    direction = np.array([1.0, -1.0, 1.0])
    jd = (1 - np.tanh(x) ** 2) * direction          # tanh's J d, exactly
    copies = [np.array(g, copy=True) for g in check.cotangents]
    right = [(1 - np.tanh(x) ** 2) * g for g in copies]
    assert check.compare(right, copies, direction, jd, np.zeros(3)) == ""
    wrong = [right[0], right[1] * 1.01, right[2]]
    assert "a random cotangent" in check.compare(wrong, copies, direction, jd, np.zeros(3))


SPEC = """
inputs:
  a: {shape: [4], init: normal}
  b: {shape: [3], init: normal}
nodes:
  y: outer(a, b)
  loss: sum(tanh(y))
"""


def test_the_jvp_of_a_built_in_affine_argument_is_judged_exactly_and_still_caught(tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    stencils = []
    monkeypatch.setattr(jvp_module.JvpCheck, "numeric", lambda self: stencils.append(self) or (_ for _ in ()).throw(
        AssertionError("stencil")))
    result = check_spec(path)
    checks = {j.argument: j for j in result.jvps if j.op == "outer"}
    assert sorted(checks) == [0, 1] and all(c.status == "pass" for c in checks.values()), checks
    assert stencils == []
    impl = BUILTIN_OPS["outer"].impl
    right = impl.jvp
    monkeypatch.setattr(impl, "jvp", lambda tangents, out, a, b: right(tangents, out, a, b) * 1.001)  # 0.1 % off
    wrong = {j.argument: j for j in check_spec(path).jvps if j.op == "outer"}
    assert all(c.status == "fail" for c in wrong.values()), wrong
