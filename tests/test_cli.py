"""The command line through click's CliRunner: exit codes, formats, options."""
from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"

BROKEN_LAYER = '''
import numpy as np

class Swish:
    def forward(self, x):
        return x / (1 + np.exp(-x))
    def vjp(self, g, out, x):
        s = 1 / (1 + np.exp(-x))
        return (g * s,)      # wrong: forgets x * s * (1 - s)
'''


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture
def broken(tmp_path):
    (tmp_path / "layers.py").write_text(BROKEN_LAYER)
    path = tmp_path / "broken.yaml"
    path.write_text(textwrap.dedent("""
        name: broken swish
        inputs:
          x: [[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]]
          W: [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.6]]
        ops: {act: "layers:Swish"}
        nodes:
          h: x @ W
          out: sum(act(h))
    """))
    return path


@pytest.fixture
def malformed(tmp_path):
    path = tmp_path / "malformed.yaml"
    path.write_text("inputs: {x: 1.0}\nnodes:\n  y: x +* 2\n")
    return path


def test_exit_0_on_the_shipped_specs():
    result = run("run", SPECS)
    assert result.exit_code == 0, result.output
    assert "passed" in result.output and "0 failed" in result.output


def test_exit_1_names_the_element_and_the_op(broken):
    result = run("run", broken)
    assert result.exit_code == 1
    assert "suspect: op 'act' at node out/act#1" in result.output
    assert "gradient wrong at [" in result.output


def test_exit_2_with_file_line_column(malformed):
    result = run("run", malformed)
    assert result.exit_code == 2
    assert f"{malformed}:3:" in result.stderr
    assert "Traceback" not in result.output


def test_exit_2_for_a_missing_path_and_an_empty_folder(tmp_path):
    assert run("run", tmp_path / "nope.yaml").exit_code == 2
    empty = run("run", tmp_path)
    assert empty.exit_code == 2 and "no *.yaml" in empty.stderr


def test_one_bad_spec_does_not_stop_the_others(tmp_path, malformed):
    good = tmp_path / "good.yaml"
    good.write_text((SPECS / "chain_rule_xyz.yaml").read_text())
    result = run("run", tmp_path)
    assert result.exit_code == 2
    assert "1 passed" in result.output and "1 error" in result.output


def test_json_report_follows_the_contract(broken):
    result = run("run", broken, "--format", "json", "--values")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["version"] == 1 and report["ok"] is False
    spec = report["specs"][0]
    assert {"path", "name", "status", "error", "output", "nodes", "suspects"} <= set(spec)
    assert spec["status"] == "fail" and spec["error"] is None
    assert spec["output"]["name"] == "out"
    nodes = {n["name"]: n for n in spec["nodes"]}
    assert nodes["x"]["op"] == "input" and nodes["x"]["shape"] == [2, 3]
    assert nodes["out/act#1"]["parent"] == "out"
    for node in spec["nodes"]:
        assert {"name", "op", "parent", "shape", "status", "max_abs_error", "max_rel_error", "worst_index",
                "analytic", "numeric"} <= set(node)
    assert len(nodes["x"]["analytic"]) == 2 and len(nodes["x"]["analytic"][0]) == 3
    suspect = spec["suspects"][0]
    assert spec["suspects"] == [{"node": "out/act#1", "op": "act", "argument": 0, "argument_node": "h",
                                 "message": suspect["message"], "diagnosis": suspect["diagnosis"],
                                 "source": suspect["source"]}]
    # the forgotten term x s (1 - s) is no constant factor, sign, transpose or threshold: unknown, worst element
    assert suspect["diagnosis"]["kind"] == "unknown" and suspect["diagnosis"]["wrong"] == 4
    assert suspect["source"]["line"] == BROKEN_LAYER.splitlines().index("    def vjp(self, g, out, x):") + 1
    assert Path(suspect["source"]["file"]).name == "layers.py"


def test_json_without_values_and_for_errors(malformed):
    report = json.loads(run("run", malformed, "--format", "json").stdout)
    spec = report["specs"][0]
    assert spec["status"] == "error" and spec["error"]["line"] == 3 and spec["error"]["column"] is not None
    clean = json.loads(run("run", SPECS / "chain_rule_xyz.yaml", "--format", "json").stdout)
    assert "analytic" not in clean["specs"][0]["nodes"][0]


def test_junit_is_valid_xml_with_failures(broken, tmp_path):
    out = tmp_path / "report.xml"
    result = run("run", broken, "--format", "junit", "--output", out)
    assert result.exit_code == 1
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites" and int(root.get("failures")) >= 2
    failed = [case.get("name") for case in root.iter("testcase") if case.find("failure") is not None]
    assert "x" in failed and "h" in failed and "out" not in failed


def test_github_annotations_are_escaped(broken):
    result = run("run", broken, "--format", "github")
    lines = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert lines and all("file=" in line for line in lines)
    assert any("line=" in line for line in lines)
    from gradcheck.report.github import escape_data, escape_property

    assert escape_data("50%\nnext") == "50%25%0Anext"
    assert escape_property("a:b,c") == "a%3Ab%2Cc"


def test_markdown_table(broken):
    text = run("run", broken, "--format", "markdown").stdout
    assert "| node | op |" in text and "❌ fail" in text


@pytest.mark.parametrize("option,value", [("--method", "five-point"), ("--mode", "full"), ("--mode", "fast"),
                                          ("--dtype", "float32"), ("--seed", "3"), ("--eps", "1e-5")])
def test_options_keep_the_shipped_specs_passing(option, value):
    result = run("run", SPECS / "mlp_squared_error.yaml", option, value, "--format", "json")
    assert result.exit_code == 0, result.output
    spec = json.loads(result.stdout)["specs"][0]
    if option == "--dtype":
        assert spec["dtype"] == "float32"


def test_tolerance_overrides_decide_a_small_error(tmp_path):
    (tmp_path / "layers.py").write_text(
        "import numpy as np\nclass Scaled:\n    def forward(self, x):\n        return np.tanh(x)\n"
        "    def vjp(self, g, out, x):\n        return (g * (1 - out * out) * 1.001,)   # 0.1 % off\n")
    path = tmp_path / "small.yaml"
    path.write_text('inputs: {x: [0.3, -0.7]}\nops: {t: "layers:Scaled"}\nnodes: {y: sum(t(x))}\n')
    assert run("run", path).exit_code == 1                      # default rtol 1e-4
    loose = run("run", path, "--rtol", "1e-2", "--format", "json")
    assert loose.exit_code == 0
    assert json.loads(loose.stdout)["specs"][0]["nodes"][0]["rtol"] == 1e-2


def test_strict_turns_kinks_into_failures():
    assert run("run", SPECS / "relu_kink.yaml").exit_code == 0
    assert run("run", SPECS / "relu_kink.yaml", "--strict").exit_code == 1


def test_verbose_lists_failing_elements(broken):
    result = run("run", broken, "--verbose")
    assert "a=" in result.output and result.output.count("[") > 4


def test_quiet_shows_only_failures():
    result = run("run", SPECS, "-q")
    assert result.exit_code == 0
    assert "chain-rule" not in result.output and "passed" in result.output


def test_usage_error_is_exit_2():
    assert run("run").exit_code == 2
    assert run("run", SPECS, "--format", "yaml").exit_code == 2
    assert run("run", SPECS, "--atol", "-1").exit_code == 2


@pytest.mark.parametrize("option, value", [("--atol", "nan"), ("--rtol", "inf"), ("--atol", "-1"), ("--eps", "0"),
                                           ("--mode", "slow"), ("--method", "secant")])
def test_run_and_graph_refuse_the_same_bad_options(option, value):
    """run and graph share one option set: what one refuses, the other refuses too."""
    spec = str(SPECS / "gates.yaml")
    for command in ("run", "graph"):
        result = run(command, spec, option, value)
        assert result.exit_code == 2, (command, option, value, result.output)


def _first_error_lines(spec) -> set[str]:
    lines = set()
    for command in ("run", "explain", "graph"):
        result = run(command, str(spec))
        assert result.exit_code == 2 and "Traceback" not in result.output, (command, result.output)
        lines.add(result.stderr.strip().splitlines()[0])
    return lines


def test_every_command_words_an_internal_error_once(tmp_path, monkeypatch):
    """One fault wording for run, explain and graph: a bug below the pipeline is one line, exit 2."""
    import gradcheck.pipeline as pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    spec = tmp_path / "ok.yaml"
    spec.write_text("inputs: {x: 1.0}\nnodes:\n  y: sin(x)\n")
    monkeypatch.setattr(pipeline, "build_graph", broken)
    assert _first_error_lines(spec) == {f"{spec}: error: internal error: ZeroDivisionError: a bug (please report)"}


def test_an_op_raising_a_base_exception_is_the_specs_error(tmp_path):
    """Not Exception, not SystemExit: still that spec's one-line error in every command, never a traceback."""
    (tmp_path / "layers.py").write_text("class Odd(BaseException):\n    pass\n\nclass Raises:\n"
                                        "    def forward(self, x):\n        raise Odd('odd')\n"
                                        "    def vjp(self, g, out, x):\n        return (g,)\n")
    spec = tmp_path / "odd.yaml"
    spec.write_text("inputs: {x: 1.0}\nops: {raises: \"layers:Raises\"}\nnodes:\n  y: raises(x)\n")
    lines = _first_error_lines(spec)
    assert len(lines) == 1 and "Odd" in lines.pop()


def test_ops_lists_every_op():
    from gradcheck.ops import BUILTIN_OPS

    result = run("ops")
    assert result.exit_code == 0
    for name in BUILTIN_OPS:
        assert name in result.output
    listed = json.loads(run("ops", "--json").stdout)
    assert {entry["name"] for entry in listed} == set(BUILTIN_OPS)
    assert any(entry["signature"] == "sum(x, axis=None, keepdims=False)" for entry in listed)


def test_schema_is_json_schema():
    schema = json.loads(run("schema").stdout)
    assert schema["required"] == ["inputs", "nodes"]
    assert schema["additionalProperties"] is False
    assert "expect" in schema["properties"]


def test_python_dash_m(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(SPECS / "chain_rule_xyz.yaml"), "-q"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_yaml_style_booleans_in_keywords(tmp_path):
    path = tmp_path / "kw.yaml"
    path.write_text("inputs: {x: [[0.5, 1.0], [2.0, -1.0]]}\n"
                    "nodes: {y: 'sum(sum(x, axis=0, keepdims=true) * x)', z: 'sum(attention(x, x, x, causal=true))'}\n"
                    "output: y\n")
    result = run("run", path, "--format", "json")
    assert result.exit_code == 0, result.output
