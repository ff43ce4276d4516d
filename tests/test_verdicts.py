"""Issue 8: no false pass, no false alarm.  Each case of the issue as a spec with its custom op in tmp_path,
judged through the CLI's JSON report (exit code, statuses, the op named in suspects)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS = '''
import numpy as np

def _ln(x):
    mu = x.mean(-1, keepdims=True)
    s = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
    return (x - mu) / s, s

class ForgetX:
    def forward(self, x, w): return x * w
    def vjp(self, g, out, x, w): return None, g * x

class LabelsAsFloats:            # None for the labels: data, rightly skipped
    def forward(self, x, y): return (x - y) ** 2
    def vjp(self, g, out, x, y): return 2 * g * (x - y), None

class LayerNormNoMean:           # drops the -mean(g) term
    def forward(self, x): return _ln(x)[0]
    def vjp(self, g, out, x):
        xh, s = _ln(x)
        return ((g - xh * (g * xh).mean(-1, keepdims=True)) / s,)
    def jvp(self, t, out, x):
        xh, s = _ln(x)
        tc = t[0] - t[0].mean(-1, keepdims=True)
        return (tc - xh * (tc * xh).mean(-1, keepdims=True)) / s

class LayerNorm(LayerNormNoMean):
    def vjp(self, g, out, x):
        xh, s = _ln(x)
        return ((g - g.mean(-1, keepdims=True) - xh * (g * xh).mean(-1, keepdims=True)) / s,)

class MutatesInput:
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x):
        x += 1
        return (g * np.cos(x - 1),)

class MutatesG:
    def forward(self, x): return 3 * x
    def vjp(self, g, out, x):
        g *= 2
        return (g * 1.5,)

class Tanh:
    def forward(self, x): return np.tanh(x)
    def vjp(self, g, out, x): return (g * (1 - np.tanh(x) ** 2),)

class Tanh15(Tanh):
    def vjp(self, g, out, x): return (1.5 * g * (1 - np.tanh(x) ** 2),)

class Nondeterministic:
    def forward(self, x): return 2 * x
    def vjp(self, g, out, x): return (2 * g * (1 + 1e-3 * np.random.rand(*np.shape(x))),)

class ComplexGrad:
    def forward(self, x): return 2 * x
    def vjp(self, g, out, x): return (2 * g + 0j,)

class StringGrad:
    def forward(self, x): return 2 * x
    def vjp(self, g, out, x): return (np.full(np.shape(x), "a"),)

class Float32Grad:                   # right values, computed and returned in float32
    def forward(self, x): return 2 * x
    def vjp(self, g, out, x): return ((2 * g).astype(np.float32),)

class Float16Grad:
    def forward(self, x): return 2 * x
    def vjp(self, g, out, x): return ((2 * g).astype(np.float16),)

class Square:
    def forward(self, x): return x ** 2
    def vjp(self, g, out, x): return (g * 2 * x,)

class SquareHalfPercent(Square):
    def vjp(self, g, out, x): return (g * 2 * x * 1.005,)

class SinOneElement:             # 0.1 % off in element 1234 only
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x):
        d = np.array(g * np.cos(x))
        d.reshape(-1)[1234] *= 1.001
        return (d,)

class Sin:
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x): return (g * np.cos(x),)

class Log1p:
    def forward(self, x): return np.log1p(x)
    def vjp(self, g, out, x): return (g / (1 + x),)

class Log:
    def forward(self, x): return np.log(x)
    def vjp(self, g, out, x): return (g / x,)

class Exp:
    def forward(self, x): return np.exp(x)
    def vjp(self, g, out, x): return (g * np.exp(x),)
'''


def run(tmp_path: Path, spec: str, *options: str) -> tuple[int, dict]:
    (tmp_path / "layers.py").write_text(LAYERS)
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(spec))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(path), "--format", "json", *options],
                          capture_output=True, text=True, env=env, timeout=300)
    return done.returncode, json.loads(done.stdout)["specs"][0]


def statuses(report: dict) -> dict[str, str]:
    return {n["name"]: n["status"] for n in report["nodes"]}


def suspects(report: dict) -> list[tuple[str, int]]:
    return [(s["op"], s["argument"]) for s in report["suspects"]]


# ---------------------------------------------------------------------------------------------- false passes

def test_a_forgotten_gradient_fails_naming_the_op_and_argument(tmp_path):
    code, report = run(tmp_path, """
        inputs: {x: [0.5, -1.2, 2.0], w: [1.0, 2.0, 3.0]}
        ops: {f: "layers:ForgetX"}
        nodes: {y: "sum(f(x, w) ** 2)"}
    """)
    assert code == 1 and statuses(report)["x"] == "fail"
    assert suspects(report)[0] == ("f", 0) and "forgotten gradient" in report["suspects"][0]["message"]


def test_none_for_data_stays_skipped(tmp_path):
    code, report = run(tmp_path, """
        inputs: {x: [0.5, -1.2], y: {value: [1.0, 0.0], requires_grad: false}}
        ops: {f: "layers:LabelsAsFloats"}
        nodes: {l: "sum(f(x, y))"}
    """)
    assert code == 0 and statuses(report)["y"] == "skip" and report["suspects"] == []


@pytest.mark.parametrize("op,code", [("LayerNormNoMean", 1), ("LayerNorm", 0)])
def test_a_bug_the_graphs_cotangent_cannot_see_is_caught_by_random_cotangents(tmp_path, op, code):
    # sum(u*u)/2 hands layer norm g = u, whose row mean is 0: the dropped -mean(g) term is invisible globally
    found, report = run(tmp_path, f"""
        inputs: {{x: {{shape: [4, 6], init: normal}}}}
        ops: {{ln: "layers:{op}"}}
        nodes: {{u: "ln(x)", y: "sum(u*u)/2"}}
    """)
    assert found == code
    assert suspects(report) == ([("ln", 0)] if code else [])


@pytest.mark.parametrize("op", ["MutatesInput", "MutatesG"])
def test_an_op_that_modifies_its_arguments_in_place_is_named(tmp_path, op):
    code, report = run(tmp_path, f"""
        inputs: {{x: [0.3, 0.5, -0.8]}}
        ops: {{f: "layers:{op}"}}
        nodes: {{y: "sum(f(x) * x)"}}
    """)
    assert code == 1 and suspects(report) == [("f", 0)]   # not the built-in mul
    assert "in place" in report["suspects"][0]["message"]


@pytest.mark.parametrize("op,words", [("Nondeterministic", "nondeterministic"), ("ComplexGrad", "complex"),
                                      ("StringGrad", "string"), ("Float32Grad", "float32 gradient for a float64"),
                                      ("Float16Grad", "float16 gradient for a float64")])
def test_misbehaving_vjps_fail_naming_the_op(tmp_path, op, words):
    code, report = run(tmp_path, f"""
        inputs: {{x: [0.3, 0.5, -0.8]}}
        ops: {{f: "layers:{op}"}}
        nodes: {{y: "sum(f(x) * x)"}}
    """)
    assert code == 1 and suspects(report) == [("f", 0)] and words in report["suspects"][0]["message"]


@pytest.mark.parametrize("tail", ["sum(f(x)) + 1e14", "sum(f(x)) + 1e17", "sum(f(x) + 1e8 - 1e8)"])
def test_a_bug_behind_a_large_offset_or_a_cancellation_is_caught_locally(tmp_path, tail):
    code, report = run(tmp_path, f"""
        inputs: {{x: [0.3, 0.5, -0.8]}}
        ops: {{f: "layers:Tanh15"}}
        nodes: {{y: "{tail}"}}
    """)
    assert code == 1 and suspects(report) == [("f", 0)]
    assert statuses(report)["x"] in ("fail", "inconclusive")   # never a pass


def test_what_float64_cannot_resolve_is_inconclusive_and_fails_unless_allowed(tmp_path):
    spec = """
        inputs: {x: [0.3, 0.5, -0.8]}
        ops: {f: "layers:Tanh"}
        nodes: {y: "sum(f(x)) + 1e14"}
    """
    code, report = run(tmp_path, spec, "--values")
    x = next(n for n in report["nodes"] if n["name"] == "x")
    assert code == 1 and x["status"] == "inconclusive" and report["suspects"] == []
    assert "inconclusive" in x["message"] and "complex-safe" in x["message"]
    assert len(x["numeric_error"]) == 3 and max(x["numeric_error"]) > 1e-6
    code, report = run(tmp_path, spec, "--allow-inconclusive")
    assert code == 0 and any("allow-inconclusive" in note for note in report["notes"])


def test_complex_step_resolves_what_real_differences_cannot(tmp_path):
    # every op is analytic: the second look uses complex-step, exact despite the 1e14
    code, report = run(tmp_path, """
        inputs: {x: [0.3, 0.5, -0.8]}
        nodes: {y: "sum(tanh(x)) + 1e14"}
    """)
    assert code == 0 and statuses(report)["x"] == "pass"


@pytest.mark.parametrize("op,code", [("SquareHalfPercent", 1), ("Square", 0)])
def test_float32_is_judged_in_float64_for_correctness(tmp_path, op, code):
    found, report = run(tmp_path, f"""
        dtype: float32
        inputs: {{x: [0.3, 0.5, -0.8, 1.5]}}
        ops: {{f: "layers:{op}"}}
        nodes: {{y: "sum(f(x))"}}
    """)
    assert found == code
    assert report["precision_checked"].startswith("correctness checked in float64")
    x = next(n for n in report["nodes"] if n["name"] == "x")
    assert x["atol"] == 1e-6 and x["rtol"] == 1e-4 and "float32 gradient" in x["precision"]


@pytest.mark.parametrize("mode", ["auto", "fast"])
def test_one_element_off_by_a_tenth_of_a_percent_in_5000_is_found_and_localised(tmp_path, mode):
    code, report = run(tmp_path, """
        inputs: {x: {shape: [5000], init: normal}}
        ops: {f: "layers:SinOneElement"}
        nodes: {y: "sum(f(x) * x)"}
    """, "--mode", mode)
    x = next(n for n in report["nodes"] if n["name"] == "x")
    assert code == 1 and x["status"] == "fail" and x["worst_index"] == [1234]
    assert suspects(report) == [("f", 0)]


def test_complex_step_is_never_replaced_by_a_noisier_estimate(tmp_path):
    code, report = run(tmp_path, """
        inputs: {x: [0.3, 0.5, -0.8]}
        nodes: {y: "sum(tanh(x) * x)"}
    """, "--method", "complex-step", "--values")
    x = next(n for n in report["nodes"] if n["name"] == "x")
    assert code == 0 and max(x["numeric_error"]) < 1e-14


# ---------------------------------------------------------------------------------------------- false alarms

@pytest.mark.parametrize("mode", ["full", "auto", "fast"])
def test_every_shipped_spec_passes_in_every_mode(mode):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(REPO / "specs"), "--mode", mode, "-q"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("op,values", [
    ("Sin", "[1.0e6, 3.3e7, -2.5e6]"),                 # the step relative to |x| spans many periods
    ("Log1p", "[-0.999999, -0.9999, 0.5]"),            # near the pole
    ("Exp", "[35.0]"),                                 # large gradient: rtol matters, not only atol
    ("Log", "[1.0e-6, 2.0e-6, 1.0e6, 3.0, 1.0e-5]"),   # mixed magnitudes in one node
])
def test_steps_chosen_from_an_error_estimate_raise_no_false_alarm(tmp_path, op, values):
    # custom ops are not complex-safe: the real-arithmetic step sequence has to do it
    code, report = run(tmp_path, f"""
        inputs: {{x: {values}}}
        ops: {{f: "layers:{op}"}}
        nodes: {{y: "sum(f(x))"}}
    """)
    assert code == 0, report["nodes"]
    assert statuses(report)["x"] == "pass"


def test_gradients_of_order_1e7_pass(tmp_path):
    code, report = run(tmp_path, """
        inputs: {x: [0.5, 1.5]}
        ops: {f: "layers:Exp"}
        nodes: {y: "sum(f(x) * 1e7)"}
    """)
    assert code == 0 and statuses(report)["x"] == "pass"


def test_a_wrong_gradient_at_large_arguments_still_fails(tmp_path):
    (tmp_path / "extra.py").write_text("import numpy as np\nclass SinBug:\n    def forward(self, x): return np.sin(x)\n"
                                       "    def vjp(self, g, out, x): return (g * np.cos(x) * 1.01,)\n")
    code, report = run(tmp_path, """
        inputs: {x: [1.0e6, 3.3e7, -2.5e6]}
        ops: {f: "extra:SinBug"}
        nodes: {y: "sum(f(x))"}
    """)
    assert code == 1 and statuses(report)["x"] == "fail" and suspects(report) == [("f", 0)]


def test_nothing_to_differentiate_is_a_spec_error(tmp_path):
    code, report = run(tmp_path, """
        inputs: {x: {value: [1.0, 2.0], requires_grad: false}}
        nodes: {y: "sum(x * x)"}
    """)
    assert code == 2 and "nothing to differentiate" in report["error"]["message"]


# ---------------------------------------------------------------------------------------------- taylor

@pytest.mark.parametrize("op,status,order", [("Tanh", "pass", 2.0), ("Tanh15", "fail", 1.0)])
def test_the_taylor_remainder_shows_the_order(tmp_path, op, status, order):
    code, report = run(tmp_path, f"""
        inputs: {{x: [0.3, 0.5, -0.8]}}
        ops: {{f: "layers:{op}"}}
        nodes: {{y: "sum(f(x) * x)"}}
    """, "--taylor")
    (test,) = report["taylor"]
    assert test["input"] == "x" and test["status"] == status and abs(test["order"] - order) < 0.2


def test_complex_step_reaches_every_element_of_a_node_of_any_memory_layout():
    # the small CNN's relu output is not C-ordered: a perturbation written through a reshaped view was lost
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(REPO / "specs" / "nn" / "small_cnn.yaml"),
                           "--mode", "full", "--method", "complex-step", "--format", "json", "--values"],
                          capture_output=True, text=True, env=env, timeout=300)
    report = json.loads(done.stdout)["specs"][0]
    features = next(n for n in report["nodes"] if n["name"] == "features")
    assert done.returncode == 0 and features["status"] in ("pass", "kink")
    assert any(abs(v) > 1e-3 for v in np.ravel(features["numeric"]))
