"""Issue 13: what kind of wrong a failing rule is, and the line of code to fix.

(a) Planted bugs of every kind in custom ops, with correct twins, through ``gradcheck run --format json``:
    each is caught, blamed on the right op and argument and diagnosed with the right kind and numbers; the
    twins carry no diagnosis.  The expected numbers are the bugs' own constants (1/4 for a mean over 4 rows).
(b) The classification as a pure function of arrays, kind by kind, on gradients written in closed form.
(c) A property test: random right gradients, randomly corrupted; a diagnosis other than unknown must be
    true of the corrupted gradient (checked here from the arrays, not by the classifier), right ones get none.
(d) The source line: JSON, the GitHub annotation on the Python line, every renderer's sentence.
"""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck.cli import main
from gradcheck.judge.diagnosis import LocalEstimate, classify
from gradcheck.spec import Tolerance

TOL = Tolerance(atol=1e-6, rtol=1e-4)

PLANTED = '''
import numpy as np


class Affine:
    def forward(self, x, w, b):
        return x @ w + b

    def vjp(self, g, out, x, w, b):
        return g @ w.T, x.T @ g, g.sum(axis=0)


class AffineMeanBias(Affine):
    def vjp(self, g, out, x, w, b):
        return g @ w.T, x.T @ g, g.mean(axis=0)


class AffineUnreduced(Affine):
    def vjp(self, g, out, x, w, b):
        return g @ w.T, x.T @ g, g


class AffineSignW(Affine):
    def vjp(self, g, out, x, w, b):
        return g @ w.T, -(x.T @ g), g.sum(axis=0)


class AffineZeroW(Affine):
    def vjp(self, g, out, x, w, b):
        return g @ w.T, np.zeros_like(w), g.sum(axis=0)


class AffineTransposedW(Affine):
    def vjp(self, g, out, x, w, b):
        return g @ w.T, (x.T @ g).T, g.sum(axis=0)


class AffineWrongShapeW(Affine):
    def vjp(self, g, out, x, w, b):
        return g @ w.T, g.T @ x, g.sum(axis=0)


class MatMul:
    def forward(self, a, b):
        return a @ b

    def vjp(self, g, out, a, b):
        return g @ b.T, a.T @ g


class MatMulTransposed(MatMul):
    def vjp(self, g, out, a, b):
        return g @ b.T, g.T @ a


class Mul:
    def forward(self, a, b):
        return a * b

    def vjp(self, g, out, a, b):
        return g * b, g * a


class MulSwapped(Mul):
    def vjp(self, g, out, a, b):
        return g * a, g * b


class MeanLoss:
    def forward(self, x):
        return np.mean(x * x)

    def vjp(self, g, out, x):
        return (g * 2 * x / x.size,)


class MeanLossAsSum(MeanLoss):
    def vjp(self, g, out, x):
        return (g * 2 * x,)


class LeakyRelu:
    def forward(self, x):
        return np.where(x > 0, x, 0.1 * x)

    def vjp(self, g, out, x):
        return (g * np.where(x > 0, 1.0, 0.1),)


class LeakyReluBranch(LeakyRelu):
    def vjp(self, g, out, x):
        return (g * np.where(x > 0, 1.0, 0.0),)


class Huber:
    def forward(self, x):
        return np.where(np.abs(x) <= 1, 0.5 * x * x, np.abs(x) - 0.5)

    def vjp(self, g, out, x):
        return (g * np.clip(x, -1, 1),)


class HuberUpper(Huber):
    def vjp(self, g, out, x):
        return (g * np.where(x > 1, x, np.clip(x, -1, 1)),)


class Tanh:
    def forward(self, x):
        return np.tanh(x)

    def vjp(self, g, out, x):
        return (g * (1 - out ** 2),)

    def jvp(self, tangents, out, x):
        return tangents[0] * (1 - out ** 2)


class TanhWrong(Tanh):
    def vjp(self, g, out, x):
        return (g * (1 - out),)

    def jvp(self, tangents, out, x):
        return tangents[0] * (1 - out)


class TanhJvpSign(Tanh):
    def jvp(self, tangents, out, x):
        return -tangents[0] * (1 - out ** 2)


class TanhJvpRegion(Tanh):
    def jvp(self, tangents, out, x):
        return tangents[0] * np.where(x > 0.5, 1.0, 1 - out ** 2)
'''

AFFINE = """
inputs:
  x: {shape: [4, 3], init: normal}
  w: {shape: [3, 3], init: normal}
  b: {shape: [3], init: normal}
nodes:
  y: op(x, w, b)
  loss: sum(y * y)
"""
AFFINE_WIDE = AFFINE.replace("w: {shape: [3, 3]", "w: {shape: [3, 2]").replace("b: {shape: [3]", "b: {shape: [2]")
PAIR = """
inputs:
  a: {shape: [%s], init: normal}
  b: {shape: [%s], init: normal}
nodes:
  y: op(a, b)
  loss: sum(y * y)
"""
UNARY = """
inputs:
  x: {shape: [40], init: normal, std: 2}
nodes:
  y: op(x)
  loss: sum(y * y)
"""
LOSS = """
inputs:
  x: {shape: [5, 2], init: normal}
nodes:
  loss: op(x)
"""

# class, spec body, expected suspects {argument: (kind, numbers that must be in the diagnosis)}
CASES = {
    "AffineMeanBias": (AFFINE, {2: ("scale", {"factor": 0.25, "n": 4, "relation": "1/n"})}),
    "AffineUnreduced": (AFFINE, {2: ("unreduced", {"axes": [0], "returned_shape": [4, 3]})}),
    "AffineSignW": (AFFINE, {1: ("sign", {"factor": -1.0})}),
    "AffineZeroW": (AFFINE, {1: ("missing", {})}),
    "AffineTransposedW": (AFFINE, {1: ("transpose", {})}),
    "AffineWrongShapeW": (AFFINE_WIDE, {1: ("transpose", {"returned_shape": [2, 3]})}),
    "MatMulTransposed": (PAIR % ("3, 3", "3, 3"), {1: ("transpose", {})}),
    "MulSwapped": (PAIR % ("5", "5"), {0: ("swapped", {"argument": 1}), 1: ("swapped", {"argument": 0})}),
    "MeanLossAsSum": (LOSS, {0: ("scale", {"factor": 10.0, "n": 10, "relation": "n"})}),
    "LeakyReluBranch": (UNARY, {0: ("region", {"input": 0, "side": "<", "threshold": 0.0, "there": "zero"})}),
    "HuberUpper": (UNARY, {0: ("region", {"input": 0, "side": ">", "threshold": 1.0})}),
    "TanhWrong": (UNARY, {0: ("unknown", {})}),
}
# forward-mode rules planted wrong beside a right vjp: class -> (kind, numbers)
JVP_CASES = {"TanhJvpSign": ("sign", {"factor": -1.0}),
             "TanhJvpRegion": ("region", {"side": ">", "threshold": 0.5, "input_node": "x"})}
TWINS = {"Affine": AFFINE, "MatMul": PAIR % ("3, 3", "3, 3"), "Mul": PAIR % ("5", "5"), "MeanLoss": LOSS,
         "LeakyRelu": UNARY, "Huber": UNARY, "Tanh": UNARY}


def rule_line(class_name: str, rule: str = "vjp") -> int:
    """The line of ``def <rule>`` in the class's body of PLANTED (1-based), read from the text itself."""
    lines = PLANTED.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {class_name}"))
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("class "):
            break
        if lines[i].strip().startswith(f"def {rule}("):
            return i + 1
    raise AssertionError(f"{class_name} has no {rule}")


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted.py").write_text(PLANTED)
    for name, (body, _) in CASES.items():
        (folder / f"{name}.yaml").write_text(f'ops: {{op: "planted:{name}"}}\n' + textwrap.dedent(body))
    for name in JVP_CASES:
        (folder / f"{name}.yaml").write_text(f'ops: {{op: "planted:{name}"}}\n' + textwrap.dedent(UNARY))
    for name, body in TWINS.items():
        (folder / f"{name}.yaml").write_text(f'ops: {{op: "planted:{name}"}}\n' + textwrap.dedent(body))
    return folder


@pytest.fixture(scope="module")
def report(planted) -> dict:
    result = CliRunner().invoke(main, ["run", str(planted), "--format", "json"])
    assert result.exit_code == 1, result.output
    return {spec["name"]: spec for spec in json.loads(result.stdout)["specs"]}


# ------------------------------------------------------------------------------------------ (a) planted bugs

@pytest.mark.parametrize("name", sorted(CASES))
def test_a_planted_bug_is_blamed_on_its_op_and_argument_with_its_kind(report, name):
    spec = report[name]
    expected = CASES[name][1]
    assert spec["status"] == "fail"
    blamed = {s["argument"]: s for s in spec["suspects"] if s["node"] == "y" or s["node"] == "loss"}
    assert set(expected) <= set(blamed)
    # an argument named only because the rule's fault poisoned all it returned is right: no diagnosis
    assert all(blamed[argument]["diagnosis"] is None for argument in set(blamed) - set(expected))
    if not any(s["diagnosis"] is None for s in spec["suspects"]):
        assert set(blamed) == set(expected)
    for argument, (kind, numbers) in expected.items():
        diagnosis = blamed[argument]["diagnosis"]
        assert diagnosis["kind"] == kind, diagnosis
        assert diagnosis["detail"]
        for key, value in numbers.items():
            assert diagnosis[key] == (pytest.approx(value) if isinstance(value, float) else value), (key, diagnosis)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_correct_twin_passes_with_no_suspect_and_no_diagnosis(report, name):
    assert report[name]["status"] == "pass"
    assert report[name]["suspects"] == []


def test_the_scale_names_the_batch_axis_and_the_region_its_split(report):
    scale = report["AffineMeanBias"]["suspects"][0]["diagnosis"]
    assert "mean instead of a sum" in scale["detail"] and "n = 4" in scale["detail"]
    assert scale["axis"] == 0 and scale["of"] == "output"
    region = report["HuberUpper"]["suspects"][0]["diagnosis"]
    # x ~ normal(0, 2), seed 0: the wrong elements are exactly those above the threshold the rule wrote
    assert region["wrong"] + region["right"] == region["total"] == 40
    assert 0 < region["wrong"] < 40
    assert "x > 1" in region["detail"]


def test_the_suspect_points_at_the_rule_that_is_wrong(report, planted):
    for name in CASES:
        for suspect in report[name]["suspects"]:
            source = suspect["source"]
            assert Path(source["file"]).resolve() == (planted / "planted.py").resolve()
            assert source["line"] == rule_line(name) and source["rule"] == "vjp"


def test_a_wrong_jvp_points_at_the_jvp(report, planted):
    jvp = report["TanhWrong"]["jvp"][0]
    assert jvp["status"] == "fail"
    assert jvp["source"]["line"] == rule_line("TanhWrong", "jvp") and jvp["source"]["rule"] == "jvp"


@pytest.mark.parametrize("name", sorted(JVP_CASES))
def test_a_wrong_jvp_is_diagnosed(report, name):
    kind, numbers = JVP_CASES[name]
    spec = report[name]
    assert spec["status"] == "fail" and spec["suspects"] == []
    (jvp,) = spec["jvp"]
    assert jvp["status"] == "fail" and jvp["diagnosis"]["kind"] == kind
    for key, value in numbers.items():
        assert jvp["diagnosis"][key] == value
    assert jvp["source"]["line"] == rule_line(name, "jvp")


def test_github_annotates_the_python_line_as_well_as_the_spec(planted):
    result = CliRunner().invoke(main, ["run", str(planted / "AffineMeanBias.yaml"), "--format", "github"])
    lines = [line for line in result.stdout.splitlines() if line.startswith("::")]
    on_code = [line for line in lines if "planted.py" in line.split("::")[1]]
    assert len(on_code) == 1
    assert f"line={rule_line('AffineMeanBias')}," in on_code[0]
    assert "scale: analytic = 1/4" in on_code[0].split("::")[2]
    on_spec = [line for line in lines if "AffineMeanBias.yaml" in line.split("::")[1]]
    assert any("scale: analytic = 1/4" in line.split("::")[2] for line in on_spec)


@pytest.mark.parametrize("output_format", ["table", "junit", "markdown", "github"])
def test_every_renderer_says_the_kind_and_the_line(planted, output_format):
    result = CliRunner().invoke(main, ["run", str(planted / "AffineUnreduced.yaml"), "--format", output_format])
    text = re.sub(r"\s+", " ", result.stdout)
    assert "unreduced" in text and "sum over axes (0,) before returning" in text
    assert f"planted.py:{rule_line('AffineUnreduced')}" in text


def test_the_pytest_message_carries_the_diagnosis(planted):
    from gradcheck import check_spec

    try:  # the concise message of the pytest plugin and the Python API (it moves beside the report sentences)
        from gradcheck.report.common import failure_text
    except ImportError:
        from gradcheck.pytest_plugin import failure_text

    text = failure_text(check_spec(planted / "MulSwapped.yaml"))
    assert "swapped: the gradient returned for argument 0 ('a') is the right gradient of argument 1 ('b')" in text


# ------------------------------------------------------------------------------------------ (b) the classifier

def exact(values) -> LocalEstimate:
    values = np.asarray(values, dtype=np.float64)
    return LocalEstimate(values, np.full(values.shape, 1e-12))


RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3))
RIGHT = RNG.standard_normal((4, 3))


def test_a_right_gradient_has_no_diagnosis():
    assert classify(RIGHT + 1e-9, [exact(RIGHT)], 0, [X], TOL) is None


@pytest.mark.parametrize("factor,kind,n", [(0.25, "scale", 4), (3.0, "scale", 3), (-1.0, "sign", None),
                                           (1 / 12, "scale", 12), (1.37, "scale", None)])
def test_scale(factor, kind, n):
    found = classify(factor * RIGHT, [exact(RIGHT)], 0, [X], TOL, output_shape=(4, 3))
    assert found.kind == kind and found.numbers["factor"] == pytest.approx(factor)
    assert found.numbers.get("n") == n


def test_a_factor_on_a_single_number_is_named_only_when_it_is_a_known_constant():
    assert classify(np.array(1.37 * 2.0), [exact(2.0)], 0, [np.array(0.5)], TOL).kind == "unknown"
    assert classify(np.array(-2.0), [exact(2.0)], 0, [np.array(0.5)], TOL).kind == "sign"


def test_transpose_and_swapped():
    square = RNG.standard_normal((3, 3))
    assert classify(square.T, [exact(square)], 0, [square], TOL).kind == "transpose"
    other = RNG.standard_normal((4, 3))
    found = classify(other, [exact(RIGHT), exact(other)], 0, [X, X], TOL, names=["a", "b"])
    assert found.kind == "swapped" and found.numbers["argument"] == 1 and found.numbers["argument_node"] == "b"


def test_unreduced_names_every_broadcast_axis():
    right = RNG.standard_normal((1, 3))
    returned = np.broadcast_to(right / 8, (2, 4, 3)).copy()
    found = classify(returned, [exact(right)], 0, [np.ones((1, 3))], TOL)
    assert found.kind == "unreduced" and found.numbers["axes"] == [0, 1]
    assert classify(returned * 2, [exact(right)], 0, [np.ones((1, 3))], TOL).kind == "unknown"


@pytest.mark.parametrize("mask,side,threshold", [(lambda x: x > 0.5, ">", 0.5), (lambda x: x < 0, "<", 0.0),
                                                 (lambda x: x < -1, "<", -1.0)])
def test_region_finds_the_threshold_the_rule_wrote(mask, side, threshold):
    x = np.linspace(-2.95, 2.95, 60)
    right = np.cos(x)
    wrong = mask(x)
    found = classify(np.where(wrong, 0.0, right), [exact(right)], 0, [x], TOL)
    assert found.kind == "region" and found.numbers["side"] == side
    assert found.numbers["threshold"] == pytest.approx(threshold)
    assert found.numbers["wrong"] == wrong.sum() and found.numbers["there"] == "zero"


def test_an_interval_region():
    x = np.linspace(-2.95, 2.95, 60)
    right = np.cos(x) + 2
    wrong = (x > 0) & (x < 1)
    found = classify(np.where(wrong, 0.0, right), [exact(right)], 0, [x], TOL)
    assert found.kind == "region" and found.numbers["side"] == "between"
    assert (found.numbers["low"], found.numbers["high"]) == (0.0, 1.0)


def test_missing():
    assert classify(None, [exact(RIGHT)], 0, [X], TOL).kind == "missing"
    assert classify(np.zeros_like(RIGHT), [exact(RIGHT)], 0, [X], TOL).kind == "missing"
    assert classify(None, [exact(np.zeros(3))], 0, [np.ones(3)], TOL) is None  # None is right where nothing flows
    scattered = RIGHT.copy()
    scattered[[0, 2, 3], [1, 0, 2]] = 0.0  # no threshold on x describes these three
    found = classify(scattered, [exact(RIGHT)], 0, [np.arange(12.0).reshape(4, 3) % 5], TOL)
    assert found.kind in ("missing", "region")
    assert found.numbers["wrong"] == 3


def test_a_gradient_zero_within_the_tolerance_is_missing_not_a_tiny_scale():
    found = classify(1e-12 * RIGHT, [exact(RIGHT)], 0, [X], TOL)
    assert found.kind == "missing" and found.numbers["wrong"] == RIGHT.size


def test_unknown_names_the_worst_element():
    returned = RIGHT.copy()
    returned[2, 1] += 5.0
    returned[0, 0] += 1.0
    found = classify(returned, [exact(RIGHT)], 0, [X], TOL)
    assert found.kind == "unknown" and found.numbers["worst_index"] == [2, 1] and found.numbers["wrong"] == 2
    assert (found.numbers["worst_analytic"], found.numbers["worst_numeric"]) == (returned[2, 1], RIGHT[2, 1])


def test_elements_without_an_estimate_take_no_part():
    values = RIGHT.copy()
    values[0, 0] = np.nan  # a step left the op's domain there
    returned = 0.5 * RIGHT
    returned[0, 0] = 99.0
    assert classify(returned, [exact(values)], 0, [X], TOL).kind == "scale"


# ------------------------------------------------------------------------------------------ (c) the property

SHAPES = st.sampled_from([(5,), (3, 3), (4, 3), (2, 2, 2), (12,)])


def corruptions(shape):
    names = ["identity", "scale", "sign", "zero", "zero_some", "noise_some", "noise_all", "swap", "region", "square",
             "offset"]
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        names.append("transpose")
    return st.sampled_from(names)


def true_claim(diagnosis, returned, numeric, args, position) -> bool:
    """Is the diagnosis true of the returned gradient? Judged from the arrays, with the judge's tolerance."""
    right = numeric[position].values

    def close(a, b):
        return bool(np.all(np.abs(a - b) <= TOL.atol + TOL.rtol * np.abs(b) + 1e-9))

    kind, numbers = diagnosis.kind, diagnosis.numbers
    if kind in ("scale", "sign"):
        return close(returned, numbers["factor"] * right)
    if kind == "transpose":
        return close(np.swapaxes(returned, -1, -2), right)
    if kind == "swapped":
        return close(returned, numeric[numbers["argument"]].values)
    if kind == "missing":
        if returned is None:
            return not close(np.zeros_like(right), right)
        wrong = ~(np.abs(returned - right) <= TOL.atol + TOL.rtol * np.abs(right) + 1e-9)
        return bool(wrong.any()) and bool(np.all(np.abs(returned[wrong]) <= TOL.atol))
    if kind == "region":
        v = np.broadcast_to(args[numbers["input"]], right.shape)
        wrong = ~(np.abs(returned - right) <= TOL.atol + TOL.rtol * np.abs(right) + 1e-9)
        claimed = {">": lambda: v > numbers["threshold"], "<": lambda: v < numbers["threshold"],
                   "between": lambda: (v > numbers["low"]) & (v < numbers["high"])}[numbers["side"]]()
        return bool(np.array_equal(wrong, claimed))
    if kind == "unreduced":
        return close(returned.sum(axis=tuple(numbers["axes"])).reshape(right.shape), right)
    return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=SHAPES, data=st.data())
def test_a_diagnosis_other_than_unknown_is_true_of_the_corruption(shape, data):
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal(shape), rng.standard_normal(shape)]
    numeric = [exact(rng.standard_normal(shape) * rng.choice([0.01, 1.0, 100.0])), exact(rng.standard_normal(shape))]
    right = numeric[0].values
    corruption = data.draw(corruptions(shape), label="corruption")
    some = rng.random(shape) < data.draw(st.floats(0.05, 0.95), label="fraction")
    returned = {
        "identity": lambda: right * (1 + 1e-7),
        "scale": lambda: right * data.draw(st.sampled_from([0.5, 2.0, 0.25, 1 / 3, 7.3, 1 / shape[0]]), label="c"),
        "sign": lambda: -right,
        "zero": lambda: np.zeros(shape),
        "zero_some": lambda: np.where(some, 0.0, right),
        "noise_some": lambda: np.where(some, right + rng.standard_normal(shape), right),
        "noise_all": lambda: right + rng.standard_normal(shape),
        "swap": lambda: numeric[1].values.copy(),
        "region": lambda: np.where(args[data.draw(st.integers(0, 1), label="k")] > data.draw(
            st.floats(-1.5, 1.5), label="t"), right * data.draw(st.sampled_from([0.0, -1.0, 3.0]), label="c"), right),
        "square": lambda: right ** 2,
        "offset": lambda: right + data.draw(st.floats(0.01, 10.0), label="offset"),
        "transpose": lambda: np.swapaxes(right, -1, -2).copy(),
    }[corruption]()
    diagnosis = classify(returned, numeric, 0, args, TOL, output_shape=shape)
    if corruption == "identity":
        assert diagnosis is None
        return
    changed = not np.all(np.abs(returned - right) <= TOL.atol + TOL.rtol * np.abs(right))
    if not changed:
        assert diagnosis is None
        return
    assert diagnosis is not None
    if diagnosis.kind != "unknown":
        assert true_claim(diagnosis, returned, numeric, args, 0), (corruption, diagnosis)
    if corruption in ("sign", "swap", "zero", "transpose"):  # unambiguous corruptions are named
        assert diagnosis.kind == {"sign": "sign", "swap": "swapped", "zero": "missing",
                                  "transpose": "transpose"}[corruption]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_a_right_gradient_is_never_diagnosed(seed, scale):
    rng = np.random.default_rng(seed)
    shape = (3, 4)
    right = rng.standard_normal(shape) * scale
    error = np.abs(rng.standard_normal(shape)) * 1e-9 * scale
    within = right + rng.uniform(-1, 1, shape) * (0.5 * (TOL.atol + TOL.rtol * np.abs(right)))
    assert classify(within, [LocalEstimate(right, error)], 0, [rng.standard_normal(shape)], TOL) is None


def test_a_threshold_on_an_element_value_keeps_that_element_on_its_side():
    x = np.round(np.linspace(-2.0, 2.0, 21), 10)  # 0.0 among them
    right = np.ones_like(x)
    below = classify(np.where(x <= 0.0, 0.0, right), [exact(right)], 0, [x], TOL)  # x = 0 is wrong: x < t, t > 0
    assert below.kind == "region" and below.numbers["side"] == "<" and below.numbers["threshold"] > 0.0
    above = classify(np.where(x >= 0.0, 0.0, right), [exact(right)], 0, [x], TOL)  # x = 0 is wrong: x > t, t < 0
    assert above.kind == "region" and above.numbers["side"] == ">" and above.numbers["threshold"] < 0.0


def test_explain_marks_the_wrong_gradient_at_its_step(planted):
    text = CliRunner().invoke(main, ["explain", str(planted / "AffineMeanBias.yaml")]).stdout
    assert text.count("✗ wrong") == 1
    marked = " ".join(text.split("✗ wrong")[1].split("gradients of the inputs")[0].split())  # wrapped lines joined
    assert "to b ✗" in " ".join(text.split())
    assert marked.startswith(": scale: analytic = 1/4") and f"planted.py:{rule_line('AffineMeanBias')}" in marked
    walk = json.loads(CliRunner().invoke(main, ["explain", str(planted / "MulSwapped.yaml"), "--format", "json"]).stdout)
    (step,) = [s for s in walk["steps"] if s["name"] == "y"]
    assert [a["diagnosis"]["kind"] for a in step["arguments"]] == ["swapped", "swapped"]
    assert [a["diagnosis"]["numbers"]["argument"] for a in step["arguments"]] == [1, 0]
    assert "✗" not in CliRunner().invoke(main, ["explain", str(planted / "Affine.yaml")]).stdout


def test_a_rule_that_raises_is_a_fault_not_a_guess(tmp_path):
    (tmp_path / "raising.py").write_text(textwrap.dedent('''
        import numpy as np

        class Raising:
            def forward(self, x):
                return np.sin(x)

            def vjp(self, g, out, x):
                raise ValueError("not written yet")
    '''))
    (tmp_path / "raising.yaml").write_text('ops: {op: "raising:Raising"}\ninputs:\n  x: [0.1, 0.2]\n'
                                           'nodes:\n  y: op(x)\n  loss: sum(y * y)\n')
    result = CliRunner().invoke(main, ["run", str(tmp_path), "--format", "json"])
    (suspect,) = json.loads(result.stdout)["specs"][0]["suspects"]
    assert suspect["diagnosis"]["kind"] == "fault" and "not written yet" in suspect["diagnosis"]["detail"]
    assert suspect["source"]["line"] == 8


# ------------------------------------------------------------------------------------------ (c') end to end

CORRUPTIBLE = '''
import numpy as np


class Op:
    """f(a, b) = a * b + a**2, whose right vjp is (g (b + 2a), g a); ``corrupt`` is set by the test."""

    corrupt = None

    def forward(self, a, b):
        return a * b + a ** 2

    def vjp(self, g, out, a, b):
        grads = (g * (b + 2 * a), g * a)
        return grads if self.corrupt is None else self.corrupt(grads, a, b)
'''
E2E_SPEC = """
seed: %d
ops: {op: "corruptible:Op"}
inputs:
  a: {shape: [3, 3], init: normal}
  b: {shape: [3, 3], init: normal}
nodes:
  y: op(a, b)
  loss: sum(y * y)
"""


@pytest.fixture(scope="module")
def corruptible(tmp_path_factory):
    from gradcheck.pipeline import run

    folder = tmp_path_factory.mktemp("corruptible")
    (folder / "corruptible.py").write_text(CORRUPTIBLE)
    paths = []
    for seed in range(4):
        path = folder / f"spec{seed}.yaml"
        path.write_text(textwrap.dedent(E2E_SPEC % seed))
        paths.append(path)
    checked = run(paths[0])
    return paths, type(checked.graph.ops["op"].impl)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_a_corrupted_rule_end_to_end_is_diagnosed_only_with_what_is_true_of_it(corruptible, data):
    """Through the whole pipeline: a corruption T of one argument's right gradient; the suspect's diagnosis,
    unless unknown, must be what T did (its factor, its transposition, the swapped argument, its wrong set)."""
    from gradcheck.pipeline import run

    paths, op_class = corruptible
    seed = data.draw(st.integers(0, 3), label="seed")
    position = data.draw(st.integers(0, 1), label="position")
    kind = data.draw(st.sampled_from(["identity", "scale", "zeros", "transpose", "swapped", "region", "noise"]),
                     label="kind")
    factor = data.draw(st.sampled_from([-1.0, 0.5, 2.0, 1 / 3, 1 / 9, 4.2]), label="factor")
    threshold = data.draw(st.floats(-1.0, 1.0).map(lambda t: round(t, 1)), label="threshold")
    region_factor = data.draw(st.sampled_from([0.0, -1.0, 3.0]), label="region factor")
    rows = data.draw(st.lists(st.integers(0, 8), min_size=1, max_size=4, unique=True), label="noisy elements")

    def corrupt(grads, a, b):
        grads = list(grads)
        x = np.asarray(grads[position], dtype=np.float64)
        inputs = (a, b)
        grads[position] = {
            "identity": lambda: x,
            "scale": lambda: factor * x,
            "zeros": lambda: np.zeros_like(x),
            "transpose": lambda: x.T.copy(),
            "swapped": lambda: np.asarray(grads[1 - position]),
            "region": lambda: np.where(inputs[position] > threshold, region_factor * x, x),
            "noise": lambda: x + np.isin(np.arange(9), rows).reshape(3, 3) * (1.0 + np.abs(x)),
        }[kind]()
        return tuple(grads)

    op_class.corrupt = staticmethod(corrupt)
    try:
        checked = run(paths[seed])
    finally:
        op_class.corrupt = None
    result, inputs = checked.result, [np.asarray(v) for v in checked.analytic.values[:2]]
    assert result is not None
    if kind == "region":  # a region every element lies in is a factor on the whole argument, none: no bug
        inside = inputs[position] > threshold
        if inside.all():
            kind, factor = ("zeros", factor) if region_factor == 0.0 else ("scale", region_factor)
        elif not inside.any():
            kind = "identity"
    blamed = [s for s in result.suspects if s.node == "y" and s.argument == position]
    if kind == "identity":
        assert result.status == "pass" and not result.suspects
        return
    diagnosed = [s.diagnosis for s in blamed if s.diagnosis is not None]
    if not diagnosed:
        return  # the corruption changed nothing the judge can see (a region no element lies in)
    (diagnosis,) = diagnosed
    if diagnosis.kind in ("scale", "sign"):
        assert kind == "scale" and diagnosis.numbers["factor"] == pytest.approx(factor, rel=1e-3)
    elif diagnosis.kind == "transpose":
        assert kind == "transpose"
    elif diagnosis.kind == "swapped":
        assert kind == "swapped" and diagnosis.numbers["argument"] == 1 - position
    elif diagnosis.kind == "missing":
        assert kind == "zeros" or (kind == "region" and region_factor == 0.0)
    elif diagnosis.kind == "region":
        numbers = diagnosis.numbers
        value = inputs[numbers["input"]]
        claimed = {">": lambda: value > numbers["threshold"], "<": lambda: value < numbers["threshold"],
                   "between": lambda: (value > numbers["low"]) & (value < numbers["high"])}[numbers["side"]]()
        changed = inputs[position] > threshold if kind == "region" else np.isin(np.arange(9), rows).reshape(3, 3)
        assert kind in ("region", "noise") and np.array_equal(claimed, changed)
    else:
        assert diagnosis.kind == "unknown", diagnosis
    if kind in ("scale", "zeros", "transpose", "swapped"):  # these explain the whole argument: always named
        assert diagnosis.kind == {"scale": "sign" if factor == -1 else "scale", "zeros": "missing",
                                  "transpose": "transpose", "swapped": "swapped"}[kind]


def test_an_op_that_adapts_a_backward_function_points_at_that_function(tmp_path):
    """backward_rule (the op record hook): the line is the user's backward, not the adapter's vjp."""
    (tmp_path / "adapted.py").write_text(textwrap.dedent('''
        import numpy as np


        def scale_backward(dout, x):
            return 0.5 * dout * 3.0


        class Scale:
            backward_rule = staticmethod(scale_backward)

            def forward(self, x):
                return 3.0 * x

            def vjp(self, g, out, x):
                return (scale_backward(g, x),)
    '''))
    (tmp_path / "adapted.yaml").write_text('ops: {op: "adapted:Scale"}\ninputs:\n  x: [0.1, 0.2, 0.3]\n'
                                           'nodes:\n  y: op(x)\n  loss: sum(y * y)\n')
    report = json.loads(CliRunner().invoke(main, ["run", str(tmp_path), "--format", "json"]).stdout)
    (suspect,) = report["specs"][0]["suspects"]
    assert suspect["source"]["line"] == 5 and suspect["source"]["rule"] == "backward"
    assert suspect["source"]["function"] == "scale_backward"
    assert suspect["diagnosis"]["kind"] == "scale" and suspect["diagnosis"]["factor"] == 0.5


def test_github_annotates_a_wrong_jvp_on_its_line(planted):
    result = CliRunner().invoke(main, ["run", str(planted / "TanhJvpSign.yaml"), "--format", "github"])
    on_code = [line for line in result.stdout.splitlines() if line.startswith("::") and "planted.py" in line.split("::")[1]]
    assert len(on_code) == 1 and f"line={rule_line('TanhJvpSign', 'jvp')}," in on_code[0]
    assert "sign: analytic = -numeric everywhere" in on_code[0]
