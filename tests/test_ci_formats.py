"""Issue 11: at home in CI and editors.

One run writing every report; GitHub annotations that lead with the cause; JUnit that junit-10.xsd and
junitparser accept; a Markdown step summary; folders that tell specs from other YAML; progress on a
terminal only; 80 columns; the help, the docs' CI snippets and the pre-commit hooks as written.
"""
from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gradcheck.cli import _console, main, without_trailing_spaces
from gradcheck.format import visible
from gradcheck.report.junit import classname, xml_text

ROOT = Path(__file__).resolve().parent.parent
XSD = ROOT / "tests" / "data" / "junit-10.xsd"
LAYERS = 30

WRONG_SCALE = '''
class WrongScale:
    """y = 1.5 x whose backward rule forgets the factor 1.5."""
    def forward(self, x):
        return 1.5 * x
    def vjp(self, g, out, x):
        return (g,)
'''


def deep_spec(folder: Path, name: str = "deep") -> Path:
    """LAYERS layers h_i = tanh(bad(h_{i-1})), each with the wrong rule: one suspect, many failing nodes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "layers.py").write_text(WRONG_SCALE)
    lines = [f"name: {name}", "inputs:", "  x: [0.5, -0.2, 0.3]", 'ops: {bad: "layers:WrongScale"}', "nodes:"]
    previous = "x"
    for layer in range(LAYERS):
        lines.append(f"  h{layer}: tanh(bad({previous}))")
        previous = f"h{layer}"
    lines.append(f"  loss: sum({previous})")
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def mixed(tmp_path):
    """A folder with a many-failure spec, an expect-only failure, a kink, a spec error and a passing spec."""
    folder = tmp_path / "specs"
    deep_spec(folder / "deep")
    (folder / "pinned.yaml").write_text("name: pinned\ninputs: {w: 2.0}\nnodes:\n  f: w * w\nexpect: {output: 5.0}\n")
    (folder / "kink.yaml").write_text("name: kink\ninputs: {x: [-1.0, 0.0, 2.0]}\nnodes:\n  y: sum(relu(x))\n")
    (folder / "broken.yaml").write_text("inputs: {x: 1}\nnodes:\n  y: x * q\n")
    (folder / "good.yaml").write_text('name: "bell\\x07 and \\x1b[31mred"\ninputs: {x: 2.0}\nnodes:\n  y: x * x\n')
    return folder


def cli(*args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


def report(folder, fmt, *extra):
    return json.loads(cli("run", folder, "--format", fmt, *extra).stdout) if fmt == "json" else \
        cli("run", folder, "--format", fmt, *extra).stdout


# ------------------------------------------------------------------------------------------ one run, every report

def test_one_run_writes_every_report_as_the_single_runs_do(mixed, tmp_path):
    files = {"junit": tmp_path / "r.xml", "json": tmp_path / "r.json", "markdown": tmp_path / "s.md"}
    result = cli("run", mixed, "--junit-xml", files["junit"], "--json", files["json"], "--markdown", files["markdown"])
    assert result.exit_code == 2  # broken.yaml
    assert "FAIL  deep" in result.stdout  # the terminal table, beside the files
    single = {fmt: report(mixed, fmt) for fmt in files}
    untimed = re.compile(r'(time="|"seconds": |· )[0-9.]+s?|\| [0-9.]+ \|$', re.M)
    for fmt, path in files.items():
        written = path.read_text(encoding="utf-8")
        if fmt == "json":
            assert _without_seconds(json.loads(written)) == _without_seconds(single[fmt])
        else:
            assert untimed.sub("T", written) == untimed.sub("T", single[fmt]), fmt
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed into place


def _without_seconds(document):
    for spec in document["specs"]:
        spec.pop("seconds")
    return document


def test_two_reports_cannot_share_a_file(mixed, tmp_path):
    result = cli("run", mixed, "--junit-xml", tmp_path / "r", "--markdown", tmp_path / "r")
    assert result.exit_code == 2 and "both go to" in result.stderr
    assert cli("run", mixed, "--format", "json", "--markdown", "-").exit_code == 2  # stdout twice


def test_a_report_never_replaces_a_spec(mixed):
    result = cli("run", mixed, "--junit-xml", mixed / "good.yaml")
    assert result.exit_code == 2 and "which this run reads" in result.stderr
    assert "inputs" in (mixed / "good.yaml").read_text()


def test_the_summary_line_appears_once_on_stderr(mixed):
    for fmt in ("github", "json", "junit", "markdown"):
        result = cli("run", mixed, "--format", fmt)
        summary = "5 specs: 2 passed, 2 failed, 1 error"
        assert result.stderr.count(summary) == 1, fmt
        assert summary not in result.stdout or fmt == "markdown", fmt  # the summary's own heading


def test_github_actions_get_the_step_summary(mixed, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    cli("run", mixed, "--format", "github", env=env)
    text = summary.read_text()
    assert text.startswith("earlier step\n# gradcheck report")  # appended, not replaced
    assert "| deep (`" in text and "```mermaid" in text
    cli("run", mixed, "--format", "json", env=env)
    assert summary.read_text() == text  # only --format github writes it
    other = tmp_path / "other.md"
    cli("run", mixed, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(other)})
    assert not other.exists()  # outside GitHub Actions


# ------------------------------------------------------------------------------------------ GitHub annotations

def annotations(text: str) -> list[tuple[str, dict, str]]:
    found = []
    for line in text.splitlines():
        match = re.match(r"^::(error|warning) ([^:]*)::(.*)$", line)
        assert match, line
        props = dict(item.split("=", 1) for item in match.group(2).split(","))
        found.append((match.group(1), props, match.group(3)))
    return found


def test_annotations_lead_with_the_suspect_then_the_first_failing_node(tmp_path):
    path = deep_spec(tmp_path / "specs")
    document = report(path, "json")["specs"][0]
    nodes = {node["name"]: node for node in document["nodes"]}
    # issue 8: every use site of the wrong rule is checked on its own; each one whose error stands above the
    # tolerance at its own scale is a suspect (deep in the chain the gradients vanish below atol)
    suspects = document["suspects"]
    assert {s["op"] for s in suspects} == {"bad"} and 1 <= len(suspects) <= LAYERS
    suspect = suspects[0]
    failing = [node["name"] for node in document["nodes"] if node["status"] == "fail"]
    assert len(failing) > 10
    found = annotations(report(path, "github"))
    # issue 13: the suspect's message is also put on the Python line of the custom op's rule, right after it
    on_code = [note for note in found if note[1]["file"].endswith("layers.py")]
    vjp_line = WRONG_SCALE.splitlines().index("    def vjp(self, g, out, x):") + 1
    assert on_code and {int(props["line"]) for _, props, _ in on_code} == {vjp_line}
    assert found.index(on_code[0]) == 1 and on_code[0][2] == found[0][2]
    found = [note for note in found if note not in on_code]
    assert len(found) <= 10 and {level for level, _, _ in found} == {"error"}  # fits in GitHub's ten
    (_, first, first_text) = found[0]
    text_line = path.read_text().splitlines()[nodes[suspect["node"]]["line"] - 1]
    assert "wrong backward rule in op 'bad'" in first["title"].replace("%3A", ":")
    assert int(first["line"]) == nodes[suspect["node"]]["line"]
    column = int(first["col"])
    assert text_line[column - 1:int(first["endColumn"]) - 1] == nodes[suspect["node"]]["expr"]
    assert suspect["node"] in first_text
    (_, rest, rest_text) = found[-1]
    assert "more" in rest["title"]
    shown = " ".join(text for _, _, text in found)
    assert all(name in shown for name in failing)


def test_kinks_are_warnings_and_expect_misses_lead_their_spec(mixed):
    found = annotations(report(mixed, "github"))
    by_file = {}
    for level, props, text in found:
        by_file.setdefault(Path(props["file"]).name, []).append((level, props, text))
    assert [level for level, _, _ in by_file["kink.yaml"]] == ["warning"]
    ((level, props, text),) = by_file["pinned.yaml"]
    assert level == "error" and props["line"] == "5" and "expect output: expected 5.0, got 4.0" in text
    ((level, props, text),) = by_file["broken.yaml"]
    assert (level, props["line"], props["col"]) == ("error", "3", "10")
    assert "good.yaml" not in by_file
    strict = annotations(report(mixed, "github", "--strict"))
    assert [lv for lv, props, _ in strict if props["file"].endswith("kink.yaml")] == ["error"]
    assert not [1 for _, props, _ in annotations(report(mixed, "github", "-q")) if props["file"].endswith("kink.yaml")]


def test_annotation_text_is_escaped():
    from gradcheck.report.github import escape_data, escape_property

    assert escape_data("100%\nline\r") == "100%25%0Aline%0D"
    assert escape_property("a:b,c") == "a%3Ab%2Cc"
    assert escape_data("\x1b[31m") == "\\x1b[31m"


# ------------------------------------------------------------------------------------------ JUnit

def xsd_errors(text: str) -> list[str]:
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(XSD))
    return [str(error.reason) for error in schema.iter_errors(text)]


def test_the_xsd_can_refuse():
    """The schema file is a real one: the old output's faults are caught."""
    assert xsd_errors('<testsuites skipped="1"><testsuite name="a" tests="1" failures="0" errors="0">'
                      '<testcase name="b" file="x"/></testsuite></testsuites>')
    assert not xsd_errors('<testsuites><testsuite name="a" tests="1" failures="0" errors="0">'
                          '<testcase name="b" time="0.1"/></testsuite></testsuites>')


def test_junit_passes_junit_10_xsd_apart_from_file_and_line(mixed):
    default = report(mixed, "junit")
    errors = xsd_errors(default)
    assert errors and all(re.search(r"'(file|line)' attribute not allowed for element", e) for e in errors), errors[:3]
    assert xsd_errors(report(mixed, "junit", "--junit-flavor", "strict")) == []
    assert xsd_errors(report(ROOT / "specs", "junit", "--junit-flavor", "strict")) == []


def test_junit_as_junitparser_reads_it(mixed):
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromstring(report(mixed, "junit").encode())
    cases = [(suite, case) for suite in xml for case in suite]
    assert len(cases) == sum(int(suite.tests) for suite in xml)
    for suite, case in cases:
        assert case._elem.get("time") is not None and case.time >= 0  # dorny/test-reporter computed NaN without it
        path = suite._elem.get("file")
        assert case.classname == classname(path)
        for result in case.result:
            if isinstance(result, (junitparser.Failure, junitparser.Error)):
                assert re.match(rf"{re.escape(path)}:\d+:(\d+:)? ", result.text), result.text
                assert case._elem.get("line"), case.name
    by_name = {(suite.name, case.name): case for suite, case in cases}
    expect = by_name[("pinned", "expect output")]
    assert expect.result and expect.result[0].text.startswith(f"{mixed / 'pinned.yaml'}:5:")
    assert by_name[("broken", "spec")]._elem.get("line") == "3"


def test_junit_classnames_do_not_collide(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "net.yaml").write_text("name: net\ninputs: {x: 1.0}\nnodes: {y: x * x}\n")
    root = ET.fromstring(report(tmp_path, "junit"))
    names = {case.get("classname") for case in root.iter("testcase")}
    assert names == {classname(str(tmp_path / "a" / "net.yaml")), classname(str(tmp_path / "b" / "net.yaml"))}
    assert classname("specs/nn/mlp.yaml") == "specs.nn.mlp"


def test_junit_holds_no_character_xml_refuses(mixed):
    text = report(mixed, "junit")
    ET.fromstring(text)  # parses
    assert "bell\\x07 and \\x1b[31mred" in text and "\x07" not in text and "\x1b" not in text
    assert xml_text("a\ufffeb\udcff") == "a\ufffdb\ufffd"


def test_junit_strict_kinks_and_times():
    root = ET.fromstring(report(ROOT / "specs" / "relu_kink.yaml", "junit", "--strict"))
    kinked = [case for case in root.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in kinked] == ["x"] and kinked[0].find("failure").get("type") == "Kink"
    assert root.get("failures") == "1" and root.get("skipped") is None
    assert all(float(case.get("time")) >= 0 for case in root.iter("testcase"))


# ------------------------------------------------------------------------------------------ Markdown

def test_markdown_summary(mixed):
    text = report(mixed, "markdown")
    table = [line for line in text.splitlines() if line.startswith("| ") and "(`" in line]
    assert len(table) == 5  # one row per spec in the overview
    folded = text[text.index("<details>"):text.index("</details>")]
    assert "#### good" not in text.split("<details>")[0]  # the passing spec only inside the fold
    assert "bell\\\\x07" in folded  # made visible, its backslash escaped for Markdown
    deep = text[text.index("## deep"):text.index("## ", text.index("## deep") + 3)]
    assert "**suspect**: op 'bad'" in deep and "```mermaid\nflowchart BT" in deep
    assert '-.->|"wrong gradient"|' in deep  # the edge the suspect passes wrong
    assert "| `h28` | tanh |" in deep


def test_markdown_quiet_shows_an_expect_only_failure(mixed):
    text = report(mixed, "markdown", "-q")
    pinned = text[text.index("## pinned"):]
    pinned = pinned[:pinned.index("\n## ")] if "\n## " in pinned else pinned
    assert "| node |" not in pinned  # no empty table
    assert "**expect output**" in pinned and "expected 5.0, got 4.0" in pinned
    assert "<details>" not in text


def test_markdown_of_the_shipped_specs_is_short():
    text = report(ROOT / "specs", "markdown")
    outside = text.split("<details>")[0].splitlines()
    specs = len(list((ROOT / "specs").rglob("*.yaml")))
    skipped = text.count("— ➖ skip")  # a spec whose `requires:` module is missing: a short section saying what to install
    assert len(outside) <= 10 + specs + 5 * skipped  # title, summary, one overview row per spec


# ------------------------------------------------------------------------------------------ which files are specs

WORKFLOW = """name: ci
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pytest
"""


def test_a_folder_skips_other_yaml_with_a_note(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    shutil.copy(ROOT / "specs" / "gates.yaml", tmp_path / "gates.yaml")
    (tmp_path / "broken.gradcheck.yaml").write_text("jobs: {}\n")  # the naming convention: a spec, whatever it holds
    result = cli("run", tmp_path)
    assert result.exit_code == 2
    assert f"gradcheck: note: skipped {tmp_path / '.github' / 'workflows' / 'ci.yml'}:" in result.stderr
    assert "broken.gradcheck.yaml:1:1: error: unknown key 'jobs'" in result.stderr
    excluded = cli("run", tmp_path, "--exclude", "*.gradcheck.yaml", "--exclude", ".github")
    assert excluded.exit_code == 0 and "skipped" not in excluded.stderr
    assert cli("run", tmp_path, "-q", "--exclude", "broken*").stderr.count("note") == 0  # -q: no notes


def test_exclude_applies_to_named_files_and_an_all_excluded_run_is_an_error(tmp_path):
    shutil.copy(ROOT / "specs" / "gates.yaml", tmp_path / "gates.yaml")
    result = cli("run", tmp_path / "gates.yaml", "--exclude", "gates.*")
    assert result.exit_code == 2 and "no *.yaml or *.yml specs found" in result.stderr


def test_skip_non_specs_for_named_files(tmp_path):
    (tmp_path / "config.yml").write_text("key: value\n")
    assert cli("run", tmp_path / "config.yml").exit_code == 2  # named: a spec, and a bad one
    skipped = cli("run", tmp_path / "config.yml", "--skip-non-specs")
    assert skipped.exit_code == 0 and "note: skipped" in skipped.stderr  # nothing to check is not a failure
    shutil.copy(ROOT / "specs" / "gates.yaml", tmp_path / "gates.yaml")
    assert cli("run", tmp_path / "config.yml", tmp_path / "gates.yaml", "--skip-non-specs").exit_code == 0


def test_a_folder_of_other_yaml_only_is_an_error(tmp_path):
    (tmp_path / "config.yml").write_text("key: value\n")
    result = cli("run", tmp_path)
    assert result.exit_code == 2 and "1 other YAML file skipped" in result.stderr


# ------------------------------------------------------------------------------------------ progress

def _run_with_stderr_on_a_terminal(args, cwd):
    """(stdout, what was drawn on stderr) of a run whose stderr is a pseudo-terminal."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    with open(cwd / "stdout.txt", "wb") as stdout:  # a file, not a pipe: a full pipe would block the run
        process = subprocess.Popen([sys.executable, "-m", "gradcheck", *args], cwd=cwd, stdout=stdout, stderr=slave,
                                   stdin=subprocess.DEVNULL, env=env)
        os.close(slave)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                break
            if not chunk:
                break
            drawn += chunk
        process.wait(timeout=120)
    os.close(master)
    return (cwd / "stdout.txt").read_bytes(), drawn.decode("utf-8", "replace")


def test_progress_is_drawn_on_a_terminal_and_never_changes_stdout(tmp_path):
    lines = ["inputs:", "  x: [0.5, -0.2, 0.3]", "nodes:"] + [f"  h{i}: tanh(1.5 * {'h' + str(i - 1) if i else 'x'})"
                                                              for i in range(LAYERS)] + [f"  loss: sum(h{LAYERS - 1})"]
    (tmp_path / "layers.yaml").write_text("\n".join(lines) + "\n")
    deep_spec(tmp_path / "custom")  # custom ops: checked in a child process, shown per spec
    args = ["run", "layers.yaml", "custom/deep.yaml", "--format", "json"]
    piped = subprocess.run([sys.executable, "-m", "gradcheck", *args], cwd=tmp_path, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert "evaluations" not in piped.stderr.decode()  # not a terminal: silent
    stdout, drawn = _run_with_stderr_on_a_terminal(args, tmp_path)
    # the first node of a spec is drawn at once; later ones only as the redraw rate allows (the run may be quicker)
    assert re.search(r"\S+ · [\d,]+ evaluations", drawn) and "layers.yaml" in drawn and "deep.yaml" in drawn
    assert _without_seconds(json.loads(stdout)) == _without_seconds(json.loads(piped.stdout))
    _, quiet = _run_with_stderr_on_a_terminal([*args, "-q"], tmp_path)
    assert "evaluations" not in quiet and "━" not in quiet


class _ProgressLog:
    """A Progress that writes which process told it what (a forked child writes with its own pid)."""

    def __init__(self, path: Path):
        self.path = path

    def _log(self, what: str) -> None:
        with open(self.path, "a") as log:
            log.write(f"{os.getpid()} {what}\n")

    def spec_started(self, path, number, total):
        self._log("spec_started")

    def node_checked(self, name, done, total, evaluations):
        self._log("node_checked")

    def spec_finished(self, path):
        self._log("spec_finished")


def test_a_forked_check_never_touches_the_parents_progress(tmp_path):
    """The child that checks a custom-op spec must not call the progress display it inherited: its redraw thread
    may have held the display's lock at the fork, and a child taking that lock waits for ever (the parent still
    shows the spec's start and end)."""
    from gradcheck import CheckOptions
    from gradcheck.isolation import Limits
    from gradcheck.pipeline import check_paths

    log = tmp_path / "progress.log"
    spec = deep_spec(tmp_path / "custom")
    result = check_paths([spec], options=CheckOptions(progress=_ProgressLog(log)),
                         limits=Limits(timeout=120, max_memory=None))
    assert result.specs[0].status == "fail"  # checked (its planted bug found), not an error
    calls = [line.split() for line in log.read_text().splitlines()]
    assert {pid for pid, _ in calls} == {str(os.getpid())}
    assert [what for _, what in calls] == ["spec_started", "spec_finished"]


# ------------------------------------------------------------------------------------------ 80 columns

def test_the_table_at_80_columns_folds_instead_of_dropping(mixed):
    text = cli("run", mixed / "deep", env={"COLUMNS": "80"}).stdout
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert all(line == line.rstrip() for line in lines)
    assert "worst element" in text or ("worst" in text and "element" in text)
    assert "h28/bad#1" in text and "…" not in text
    header = next(line for line in lines if line.startswith("node"))
    assert "status" in header


def test_long_names_fold_and_every_op_name_is_whole_in_ops():
    from gradcheck.ops.registry import all_builtin_ops

    text = cli("ops", env={"COLUMNS": "80"}).stdout
    assert all(len(line) <= 80 and line == line.rstrip() for line in text.splitlines())
    words = set(text.split())
    for name in all_builtin_ops():
        assert name in words or any(word.startswith(name + "(") for word in words), name


def test_explain_wraps_at_word_boundaries_with_indentation():
    spec = ROOT / "specs" / "neuron_sigmoid.yaml"
    narrow = cli("explain", spec, env={"COLUMNS": "80"}).stdout
    wide = cli("explain", spec, env={"COLUMNS": "1000"}).stdout
    assert narrow.split() == wide.split()  # only whitespace changed: no word broken
    lines = narrow.splitlines()
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines)
    step = next(index for index, line in enumerate(lines) if line.startswith("1. "))
    assert lines[step + 1].startswith(" " * 4) and not lines[step + 1].startswith(" " * 30)


def test_piped_output_without_a_known_width_uses_the_documented_default():
    text = cli("run", ROOT / "specs" / "nn" / "transformer_block.yaml").stdout
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert all(line == line.rstrip() for line in lines)


def test_without_trailing_spaces_keeps_colour_codes():
    assert without_trailing_spaces("a  \x1b[0m\nb \n") == "a\x1b[0m\nb\n"


@pytest.mark.parametrize("value, colour", [("", True), ("1", False), ("0", False)])
def test_an_empty_no_color_is_unset(monkeypatch, value, colour):
    monkeypatch.setenv("NO_COLOR", value)
    console = _console(sys.stdout, "auto")
    assert console.no_color is not colour
    monkeypatch.delenv("NO_COLOR")
    assert _console(sys.stdout, "auto").no_color is False


def test_visible_makes_control_characters_visible():
    assert visible("a\x1b[1mb\u202ec\x7f\nd\te") == "a\\x1b[1mb\\u202ec\\x7f\nd\te"


# ------------------------------------------------------------------------------------------ help and docs

def test_run_help_shows_examples_and_exit_codes():
    text = cli("run", "--help").stdout
    assert "Examples:" in text and "gradcheck run specs/ --format github --junit-xml report.xml" in text
    for code in ("0 ", "1 ", "2 ", "130"):
        assert re.search(rf"^\s+{code}", text, re.M), code
    for option in ("--junit-xml", "--json", "--markdown", "--junit-flavor", "--exclude", "--skip-non-specs"):
        assert option in text


def _snippets() -> list[dict]:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    return [yaml.safe_load(body) for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
            if lang == "yaml" and "gradcheck run" in body]


def _commands(snippet: dict) -> list[str]:
    found = []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith("gradcheck run"):
            found.append(value)

    walk(snippet)
    return found


def test_the_ci_snippets_work_as_written(tmp_path):
    snippets = _snippets()
    assert len(snippets) == 2  # GitHub Actions, GitLab CI
    github, gitlab = snippets
    junit_paths = []
    for snippet in snippets:
        (command,) = _commands(snippet)
        shutil.copytree(ROOT / "specs", tmp_path / "specs", dirs_exist_ok=True)
        args = shlex.split(command)[1:]
        result = subprocess.run([sys.executable, "-m", "gradcheck", *args], cwd=tmp_path, capture_output=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
        assert result.returncode == 0, result.stderr
        written = [args[args.index(flag) + 1] for flag in ("--junit-xml", "--json", "--markdown") if flag in args]
        assert written
        for name in written:
            assert (tmp_path / name).stat().st_size > 0
        junit_paths.append(args[args.index("--junit-xml") + 1])
    assert gitlab["gradcheck"]["artifacts"]["reports"]["junit"] == junit_paths[1]
    upload = github["jobs"]["gradcheck"]["steps"][-1]
    assert junit_paths[0] in upload["with"]["path"]


def test_shell_completion_works_as_documented():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_GRADCHECK_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'gradcheck'; "
                             "from gradcheck.cli import main; main()"], env=env, capture_output=True, timeout=60)
    assert b"_gradcheck_completion" in script.stdout
    assert "_GRADCHECK_COMPLETE=bash_source gradcheck" in (ROOT / "docs" / "ci.md").read_text()


# ------------------------------------------------------------------------------------------ pre-commit

HOOKS = ROOT / ".pre-commit-hooks.yaml"


def test_the_pre_commit_hooks_are_declared():
    hooks = {hook["id"]: hook for hook in yaml.safe_load(HOOKS.read_text())}
    assert set(hooks) == {"gradcheck", "gradcheck-yaml"}
    for hook in hooks.values():
        assert hook["language"] == "python" and shlex.split(hook["entry"])[:2] == ["gradcheck", "run"]
    pattern = re.compile(hooks["gradcheck"]["files"])
    assert pattern.search("specs/mlp.gradcheck.yaml") and pattern.search("a.gradcheck.yml")
    assert not pattern.search(".github/workflows/ci.yml") and not pattern.search("specs/mlp.yaml")
    assert "--skip-non-specs" in hooks["gradcheck-yaml"]["entry"] and hooks["gradcheck-yaml"]["types"] == ["yaml"]
    clientlib = pytest.importorskip("pre_commit.clientlib")
    clientlib.load_manifest(str(HOOKS))


@pytest.mark.skipif(shutil.which("pre-commit") is None or not (ROOT / ".git").exists(),
                    reason="pre-commit is not installed (or this is not a git checkout)")
def test_pre_commit_try_repo_on_a_scratch_repository(tmp_path):
    """Installs the hook from this checkout's HEAD (committed files only), as a user's pre-commit would."""
    repo = tmp_path / "scratch"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    shutil.copy(ROOT / "specs" / "gates.yaml", repo / "gates.yaml")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "scratch"], cwd=repo, check=True)
    done = subprocess.run(["pre-commit", "try-repo", str(ROOT), "gradcheck-yaml", "--all-files", "--verbose"], cwd=repo,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped .github/workflows/ci.yml" in done.stdout and "Passed" in done.stdout


def test_a_table_written_to_a_file_has_no_trailing_spaces(tmp_path):
    target = tmp_path / "table.txt"
    assert cli("run", ROOT / "specs" / "nn", "-o", target).exit_code == 0
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines and all(line == line.rstrip() and len(line) <= 120 for line in lines)
