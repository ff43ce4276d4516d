"""Forward-mode rules (`jvp`) of custom ops: checked against finite differences, faults named, kinks kept apart."""
from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck import CheckOptions, check_spec
from gradcheck.cli import main

LAYERS = '''
import numpy as np

class Cube:
    def forward(self, x):
        return x ** 3
    def vjp(self, g, out, x):
        return (3 * g * x ** 2,)
    def jvp(self, tangents, out, x):
        return 3 * x ** 2 * tangents[0]

class CubeWrongJvp(Cube):
    def jvp(self, tangents, out, x):
        return 2 * x ** 2 * tangents[0]          # wrong: 3x² is right

class Product:
    def forward(self, a, b):
        return a * b
    def vjp(self, g, out, a, b):
        return (g * b, g * a)
    def jvp(self, tangents, out, a, b):
        return tangents[0] * b + tangents[1] * b  # wrong for b: should be tangents[1] * a

class Swish:
    def forward(self, x):
        return x / (1 + np.exp(-x))
    def vjp(self, g, out, x):
        s = 1 / (1 + np.exp(-x))
        return (g * (s + x * s * (1 - s)),)
    def jvp(self, tangents, out, x):
        s = 1 / (1 + np.exp(-x))
        return tangents[0] * (s + x * s * (1 - s))

class Rectifier:
    def forward(self, x):
        return np.maximum(x, 0)
    def vjp(self, g, out, x):
        return (g * (x > 0),)
    def jvp(self, tangents, out, x):
        return tangents[0] * (x > 0)

class Raising(Cube):
    def jvp(self, tangents, out, x):
        raise RuntimeError("no forward rule today")

class WrongShape(Cube):
    def jvp(self, tangents, out, x):
        return np.zeros(7)

class Logarithm:
    def forward(self, x):
        return np.log(x)
    def vjp(self, g, out, x):
        return (g / x,)
    def jvp(self, tangents, out, x):
        return tangents[0] / x

class Pick:
    """Row i of a table: the integer ids get no tangent."""
    def forward(self, table, ids):
        return table[ids]
    def vjp(self, g, out, table, ids):
        grad = np.zeros_like(table)
        np.add.at(grad, ids, g)
        return (grad, None)
    def jvp(self, tangents, out, table, ids):
        assert tangents[1] is None, "integer data must get no tangent"
        return tangents[0][ids]

class NoJvp:
    def forward(self, x):
        return 2 * x
    def vjp(self, g, out, x):
        return (2 * g,)
'''


def write(tmp_path, body: str, name: str = "spec.yaml"):
    (tmp_path / "layers.py").write_text(LAYERS)
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def jvps_by_place(result):
    return {(j.node, j.argument): j for j in result.jvps}


def test_a_right_rule_passes_and_is_listed(tmp_path):
    path = write(tmp_path, """
        ops: {cube: "layers:Cube", swish: "layers:Swish"}
        inputs: {x: [1.0, -2.0, 0.5], w: [0.3, 0.1, 2.0]}
        nodes:
          h: cube(x * w)
          out: sum(swish(h))
    """)
    result = check_spec(path)
    assert result.status == "pass"
    checks = jvps_by_place(result)
    assert set(checks) == {("h", 0), ("out/swish#1", 0)}
    assert all(j.status == "pass" and j.max_rel_error < 1e-8 for j in checks.values())
    assert checks[("h", 0)].argument_node == "h/mul#1"


def test_a_wrong_rule_fails_the_spec_at_the_element_with_closed_form_values(tmp_path):
    path = write(tmp_path, """
        ops: {cube: "layers:CubeWrongJvp"}
        inputs: {x: [1.0, -2.0, 0.5]}
        nodes:
          out: sum(cube(x))
    """)
    result = check_spec(path)
    assert result.status == "fail"
    assert all(node.status == "pass" for node in result.nodes)  # the vjp is right: only the jvp is wrong
    assert result.suspects == []
    (check,) = result.jvps
    assert check.status == "fail" and check.failing == 3
    # the rule gives 2x²t where 3x²t is right: the gap x²t is largest at the largest |x| (index 1), whatever
    # t's signs, since every |t_i| is at least the arguments' median magnitude and at most max(|x_i|, median)
    assert check.worst_index == (1,)
    assert check.worst_analytic / check.worst_numeric == pytest.approx(2 / 3, rel=1e-8)
    assert abs(check.worst_numeric) >= 3 * 2.0 ** 2 * 1.0  # 3 x² |t| with |t| >= median |x| = 1
    assert check.max_rel_error == pytest.approx(1 / 3, rel=1e-6)


def test_each_argument_is_checked_on_its_own(tmp_path):
    a, b = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, 2.0])
    path = write(tmp_path, """
        ops: {product: "layers:Product"}
        inputs: {a: [1.0, -2.0, 0.5], b: [0.3, 0.1, 2.0]}
        nodes:
          out: sum(product(a, b))
    """)
    checks = jvps_by_place(check_spec(path))
    assert checks[("out/product#1", 0)].status == "pass"
    wrong = checks[("out/product#1", 1)]
    assert wrong.status == "fail" and wrong.argument_node == "b"
    # the rule gives t_b * b where t_b * a is right: their ratio at the worst element is b / a there
    index = wrong.worst_index[0]
    assert wrong.worst_analytic / wrong.worst_numeric == pytest.approx(b[index] / a[index], rel=1e-8)


def test_a_kink_is_not_a_failure_unless_strict(tmp_path):
    path = write(tmp_path, """
        ops: {rect: "layers:Rectifier"}
        inputs: {z: [-1.0, 0.0, 2.0]}
        nodes:
          out: sum(rect(z))
    """)
    (check,) = check_spec(path).jvps
    assert check.status == "kink" and check.kinks == 1 and check.worst_index == (1,)
    assert check.worst_analytic == 0.0
    assert check_spec(path, options=CheckOptions(strict=True)).status == "fail"


@pytest.mark.parametrize("op, message", [
    ("Raising", "jvp raised RuntimeError: no forward rule today"),
    ("WrongShape", "jvp returned shape (7,), expected the output's shape (3,)"),
])
def test_a_misbehaving_rule_is_reported_against_the_op(tmp_path, op, message):
    path = write(tmp_path, f"""
        ops: {{bad: "layers:{op}"}}
        inputs: {{x: [1.0, -2.0, 0.5]}}
        nodes:
          out: sum(bad(x))
    """)
    result = check_spec(path)
    (check,) = result.jvps
    assert result.status == "fail" and check.status == "error" and check.message == message
    assert check.op == "bad" and check.line == 5


def test_steps_stay_inside_the_domain(tmp_path):
    path = write(tmp_path, """
        ops: {ln: "layers:Logarithm"}
        inputs: {p: [0.001, 5.0, 2.0]}
        nodes:
          out: sum(ln(p))
    """)
    (check,) = check_spec(path).jvps
    assert check.status == "pass"


def test_integer_data_gets_no_tangent(tmp_path):
    path = write(tmp_path, """
        ops: {pick: "layers:Pick"}
        inputs:
          table: [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
          ids: {value: [2, 0, 2], dtype: int64}
        nodes:
          out: sum(pick(table, ids) ** 2)
    """)
    result = check_spec(path)
    assert [(j.node, j.argument, j.status) for j in result.jvps] == [("out/pick#1", 0, "pass")]


def test_float32_rules_run_in_float32(tmp_path):
    path = write(tmp_path, """
        dtype: float32
        ops: {swish: "layers:Swish"}
        inputs: {x: [1.0, -2.0, 0.5]}
        nodes:
          out: sum(swish(x))
    """)
    result = check_spec(path)
    assert result.status == "pass" and [j.status for j in result.jvps] == ["pass"]


def test_ops_without_a_rule_are_not_listed(tmp_path):
    path = write(tmp_path, """
        ops: {double: "layers:NoJvp"}
        inputs: {x: [1.0, 2.0]}
        nodes:
          out: sum(double(x) * x)
    """)
    assert check_spec(path).jvps == []


def test_reports_carry_the_jvp_checks(tmp_path):
    path = write(tmp_path, """
        ops: {cube: "layers:CubeWrongJvp"}
        inputs: {x: [1.0, -2.0, 0.5]}
        nodes:
          out: sum(cube(x))
    """)
    runner = CliRunner()
    table = runner.invoke(main, ["run", str(path)])
    assert table.exit_code == 1
    assert "jvp of op 'cube' at node out/cube#1 along argument 0 (x): wrong at" in table.output

    document = json.loads(runner.invoke(main, ["run", str(path), "--format", "json"]).stdout)
    (entry,) = document["specs"][0]["jvp"]
    assert entry["status"] == "fail" and entry["op"] == "cube" and entry["argument"] == 0
    assert document["ok"] is False

    junit = ET.fromstring(runner.invoke(main, ["run", str(path), "--format", "junit"]).stdout)
    case = junit.find(".//testcase[@name='jvp out/cube#1 argument 0']")
    assert case is not None and case.find("failure") is not None

    github = runner.invoke(main, ["run", str(path), "--format", "github"]).stdout
    assert "::error file=" in github and "gradcheck jvp fail" in github


def counted_jvp(monkeypatch, name: str, factor: float = 1.0) -> list:
    """Count the calls of a built-in op's jvp (scaled by factor: 1 keeps it right)."""
    from gradcheck.ops import BUILTIN_OPS
    impl = BUILTIN_OPS[name].impl
    right, calls = impl.jvp, []

    def jvp(*args, **kwargs):
        calls.append(1)
        return factor * np.asarray(right(*args, **kwargs))

    monkeypatch.setattr(impl, "jvp", jvp)
    return calls


OUTER = """
    inputs: {a: [1.0, -2.0, 0.5], b: [0.3, 0.1]}
    nodes:
      y: outer(a, b)
      out: sum(y * y)
"""


def test_an_affine_built_in_op_is_checked_with_the_local_checks_tangent_and_jvp(tmp_path, monkeypatch):
    """The op-local check of an edge of an op affine in that argument has J t exactly, and calls the jvp for the
    transpose identity: the jvp check reuses both (one jvp call per edge, not two) and still passes."""
    calls = counted_jvp(monkeypatch, "outer")
    path = write(tmp_path, OUTER)
    result = check_spec(path)
    assert result.status == "pass"
    checks = jvps_by_place(result)
    assert {place: check.status for place, check in checks.items()} == {("y", 0): "pass", ("y", 1): "pass"}
    assert len(calls) == 2


def test_a_wrong_jvp_of_an_affine_built_in_op_is_still_checked_on_its_own(tmp_path, monkeypatch):
    """A jvp that is not the vjp's transpose is not reused: its own check fails it against finite differences."""
    calls = counted_jvp(monkeypatch, "outer", factor=1.5)
    path = write(tmp_path, OUTER)
    result = check_spec(path)
    assert result.status == "fail"
    checks = jvps_by_place(result)
    assert checks[("y", 0)].status == "fail" and checks[("y", 1)].status == "fail"
    assert checks[("y", 0)].max_rel_error == pytest.approx(1 / 3, rel=1e-6)  # 1.5 J t against J t
    assert len(calls) == 4  # the transpose check's call and the jvp check's own, per edge


def test_a_jvp_moving_one_argument_gets_none_for_a_builtin_ops_others_and_zeros_for_a_custom_ops():
    from gradcheck.judge.local import tangents_moving_one

    x, w, labels, tangent = np.ones((2, 3)), np.ones(3), np.array([1, 0]), np.full((2, 3), 0.5)
    builtin = tangents_moving_one([x, w, labels], 0, tangent, builtin=True)
    assert builtin[0] is tangent and builtin[1] is None and builtin[2] is None
    custom = tangents_moving_one([x, w, labels], 0, tangent, builtin=False)
    assert custom[0] is tangent and custom[2] is None  # integer data has no tangent
    assert custom[1].shape == w.shape and not custom[1].any()  # a custom rule may expect an array: zeros
