"""The pytest plugin: spec files as test items, opt-in (`--gradcheck PATH` or `gradcheck_specs`)."""
from __future__ import annotations

import importlib.metadata
import os
import textwrap
from pathlib import Path

# numpy and yaml are loaded for the whole session: pytester's in-process runs drop the modules they import,
# and numpy and PyYAML's C parser cannot be imported a second time in one process.
import numpy  # noqa: F401
import pytest
import yaml  # noqa: F401

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

LAYERS = '''
class BadOp:
    """x ** 2 with the factor 2 forgotten in its backward rule."""
    def forward(self, x):
        return x * x
    def vjp(self, g, out, x):
        return (g * x,)
'''

GOOD = """
name: good neuron
inputs: {w: 2.0, x: -1.0}
nodes:
  f: sigmoid(w * x)
"""

BAD = """
name: bad square
inputs: {x: [1.0, 2.0, 3.0]}
ops: {bad: "layers:BadOp"}
nodes:
  y: bad(x)
  loss: sum(y)
"""

BROKEN = """
inputs: {x: 2.0}
nodes:
  f: x * q
"""

KINK = """
inputs: {x: [-1.0, 0.0, 2.0]}
nodes:
  loss: sum(relu(x))
"""


def plugin_args() -> list[str]:
    """The plugin loads itself through its entry point once installed; otherwise load it by hand.

    Looked up the way pluggy does (every distribution, not one per name: a stale *.egg-info in
    the working directory must not hide the installed metadata).
    """
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    installed = any(ep.group == "pytest11" and ep.value == "gradcheck.pytest_plugin"
                    for dist in importlib.metadata.distributions() for ep in dist.entry_points)
    return [] if installed and autoload else ["-p", "gradcheck.pytest_plugin"]


def run(pytester, *args):
    # other plugins of this environment (hypothesis, benchmark) only slow the inner runs down;
    # in-process runs re-import an already imported gradcheck, which pytest warns it cannot rewrite
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                              "-p", "no:benchmark",
                              "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def make_specs(pytester, folder="specs", **files):
    base = pytester.path / folder
    base.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (base / name.replace("__", ".")).write_text(textwrap.dedent(text))
    return base


@pytest.fixture
def specs(pytester):
    return make_specs(pytester, layers__py=LAYERS, good__yaml=GOOD, bad__yaml=BAD)


def test_the_entry_point_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest11"] == {"gradcheck": "gradcheck.pytest_plugin"}


def test_a_passing_and_a_failing_spec(pytester, specs):
    result = run(pytester, "--gradcheck", "specs", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert "PASSED specs/good.yaml::good" in output
    assert "FAILED specs/bad.yaml::bad" in output
    # the failure names the failing node, its worst element, analytic vs numeric, and the op to blame
    failure = output[output.index("gradcheck spec bad"):]
    assert "gradcheck: spec 'bad square' failed (specs/bad.yaml)" in failure
    assert "x (input): gradient wrong at [2]: analytic 3, numeric 6" in failure
    assert "suspect: op 'bad' at node y passes a wrong gradient to its argument 0 (x)" in failure
    assert "Traceback" not in output and "def runtest" not in output  # concise: no Python frames


def test_a_spec_error_shows_its_location(pytester):
    """A malformed spec is a collection error (issue 11), located: the run reports it and exits 2 (interrupted)."""
    make_specs(pytester, broken__yaml=BROKEN)
    result = run(pytester, "--gradcheck", "specs")
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting specs/broken.yaml*",
                                 "specs/broken.yaml:4:10: node 'f' uses 'q', which is neither an input*"])
    assert "Traceback" not in result.stdout.str()


def test_nothing_is_collected_without_opting_in(pytester, specs):
    # YAML under tests/ and specs/, a real test beside it: a plain run sees only the Python test
    make_specs(pytester, "tests", bad__yaml=BAD, config__yml="key: value\n")
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    assert ".yaml" not in result.stdout.str() and ".yml" not in result.stdout.str()
    # naming the spec folder as a path is not opting in either
    assert run(pytester, "specs").ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_only_yaml_under_the_given_paths_is_collected(pytester, specs):
    make_specs(pytester, "tests", bad__yaml=BAD)
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = run(pytester, "--gradcheck", "specs", "--collect-only", "-q")
    collected = [line for line in result.stdout.lines if "::" in line]
    assert sorted(collected) == ["specs/bad.yaml::bad", "specs/good.yaml::good", "test_plain.py::test_ok"]


def test_the_ini_option_collects_specs(pytester, specs):
    pytester.makeini("[pytest]\ngradcheck_specs = specs\n")
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    run(pytester).assert_outcomes(passed=2, failed=1)
    # explicit paths still select what runs
    run(pytester, "test_plain.py").assert_outcomes(passed=1)
    run(pytester, "specs/good.yaml").assert_outcomes(passed=1)


def test_a_bare_flag_means_the_paths_given_to_pytest(pytester, specs):
    run(pytester, "specs/good.yaml", "--gradcheck").assert_outcomes(passed=1)


def test_kinks_warn_and_fail_only_when_strict(pytester):
    make_specs(pytester, kink__yaml=KINK)
    result = run(pytester, "--gradcheck", "specs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and "failed" not in outcomes
    assert result.stdout.str().count("GradcheckKinkWarning") == 1
    assert "specs/kink.yaml:2: GradcheckKinkWarning: x (input): kink at [1]" in result.stdout.str()
    strict = run(pytester, "--gradcheck", "specs", "--gradcheck-strict")
    strict.assert_outcomes(failed=1)
    assert "x (input): kink at [1]" in strict.stdout.str()
    assert "--strict: kinks count as failures" in strict.stdout.str()


# ------------------------------------------------------------------------------------------ issue 11

NEAR = """
name: near
inputs: {x: [1.0, 2.0]}
ops: {off: "layers:SlightlyOff"}
nodes:
  y: off(x)
  loss: sum(y)
"""

SLIGHTLY_OFF = '''
class SlightlyOff:
    """x ** 2 whose backward rule is off by 1e-3 (absolute): relative 2.5e-4 to 5e-4 at x = 1, 2."""
    def forward(self, x):
        return x * x
    def vjp(self, g, out, x):
        return (g * 2 * x + 1e-3,)
'''

PINNED = """
inputs: {w: 2.0}
nodes:
  f: w * w
expect: {output: 5.0}
"""


def test_every_spec_fault_that_has_a_place_is_a_collection_error(pytester):
    make_specs(pytester, layers__py=LAYERS, yaml__yaml="inputs: {x: [1, 2\n", keys__yaml="inputs: {x: 1}\nnodez: {}\n",
               op__yaml="inputs: {x: 1}\nops: {f: \"nowhere:F\"}\nnodes: {y: f(x)}\n", good__yaml=GOOD)
    result = run(pytester, "--gradcheck", "specs", "--continue-on-collection-errors")
    result.assert_outcomes(errors=3, passed=1)
    output = result.stdout.str()
    for name in ("yaml", "keys", "op"):
        assert f"ERROR collecting specs/{name}.yaml" in output
    result.stdout.fnmatch_lines(["specs/keys.yaml:2:1: unknown key 'nodez'*", "specs/op.yaml:2:10: *nowhere*"])


def test_other_yaml_in_a_spec_folder_is_not_collected(pytester, specs):
    (pytester.path / "specs" / "config.yml").write_text("jobs: {test: {runs-on: ubuntu-latest}}\non: [push]\n")
    result = run(pytester, "--gradcheck", "specs", "--collect-only", "-q")
    assert "config.yml" not in result.stdout.str() and result.ret == 0


def test_tolerances_from_the_command_line_and_the_ini(pytester):
    make_specs(pytester, layers__py=SLIGHTLY_OFF, near__yaml=NEAR)
    run(pytester, "--gradcheck", "specs").assert_outcomes(failed=1)  # the defaults (1e-6, 1e-4) catch the 1e-3
    run(pytester, "--gradcheck", "specs", "--gradcheck-atol", "1e-2").assert_outcomes(passed=1)
    run(pytester, "--gradcheck", "specs", "--gradcheck-rtol", "1e-2").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ngradcheck_specs = specs\ngradcheck_atol = 1e-2\n")
    run(pytester).assert_outcomes(passed=1)
    run(pytester, "--gradcheck-atol", "1e-6").assert_outcomes(failed=1)  # the command line wins over the ini


def test_mode_seed_and_strict_from_the_ini(pytester):
    make_specs(pytester, kink__yaml=KINK)
    pytester.makeini("[pytest]\ngradcheck_specs = specs\ngradcheck_strict = true\ngradcheck_mode = full\n"
                     "gradcheck_seed = 7\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "kink at [1]" in result.stdout.str()
    pytester.makeini("[pytest]\ngradcheck_specs = specs\ngradcheck_mode = fastest\n")
    refused = run(pytester)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "gradcheck_mode = 'fastest'" in refused.stderr.str()


def test_bad_option_values_are_usage_errors(pytester, specs):
    for option, value in (("--gradcheck-atol", "-1"), ("--gradcheck-rtol", "nan"), ("--gradcheck-seed", "-3"),
                          ("--gradcheck-mode", "fastest")):
        assert run(pytester, "--gradcheck", "specs", option, value).ret == pytest.ExitCode.USAGE_ERROR, option


def test_one_item_per_node(pytester, specs):
    result = run(pytester, "--gradcheck", "specs", "--gradcheck-per-node", "-rA")
    # good: w, x, f pass; bad: x fails (the wrong rule feeds it), y and loss pass
    result.assert_outcomes(passed=5, failed=1)
    output = result.stdout.str()
    assert "FAILED specs/bad.yaml::x" in output and "PASSED specs/bad.yaml::y" in output
    failure = output[output.index("node x"):]
    assert "x (input): gradient wrong at [2]: analytic 3, numeric 6" in failure
    assert "suspect: op 'bad' at node y passes a wrong gradient to its argument 0 (x)" in failure
    selected = run(pytester, "--gradcheck", "specs", "--gradcheck-per-node", "-k", "bad and loss")
    selected.assert_outcomes(passed=1)


def test_one_item_per_node_from_the_ini_with_expectations(pytester):
    make_specs(pytester, pinned__yaml=PINNED)
    pytester.makeini("[pytest]\ngradcheck_specs = specs\ngradcheck_per_node = true\n")
    result = run(pytester, "-rA")
    result.assert_outcomes(passed=2, failed=1)  # w and f are right; the pinned output 5 is not w*w = 4
    assert "FAILED specs/pinned.yaml::expect" in result.stdout.str()
    assert "expect output: expected 5, got 4" in result.stdout.str()
