"""docs/ stays true of the code: options, keys, limits, JSON fields, links, and the outputs it quotes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck import spec as spec_module
from gradcheck import yamlsource
from gradcheck.cli import main
from gradcheck.expr import MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH
from gradcheck.graph import MAX_GRAPH_NODES
from gradcheck.ops import base

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPECS = ROOT / "specs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def run(*args, columns=80):
    """The CLI as a terminal of ``columns`` columns would show it (80: what it assumes outside a terminal).

    click lays help out 2 columns narrower than the terminal; CliRunner would force 80.
    """
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(main, [str(a) for a in args], prog_name="gradcheck",
                                                           terminal_width=columns - 2)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


# ------------------------------------------------------------------------------------------ the CLI

@pytest.mark.parametrize("command", ["run", "explain", "graph", "ops", "schema"])
def test_cli_page_quotes_the_current_help_of_every_command(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"$ gradcheck {command} --help\n{result.output}" in page("cli.md")


def test_every_option_the_cli_page_names_exists():
    known = {"--help", "--version"}
    for command in main.commands.values():
        for param in command.params:
            known.update(opt for opt in param.opts + param.secondary_opts if opt.startswith("--"))
    plugin = (ROOT / "gradcheck" / "pytest_plugin.py").read_text(encoding="utf-8")
    known.update(re.findall(r'addoption\("(--[\w-]+)"', plugin))
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", page("cli.md")))
    assert named - known == set()


@pytest.mark.parametrize("command", ["explain", "graph"])
def test_cli_page_quotes_explain_and_graph_as_they_print(command, monkeypatch):
    quoted = next(body for _, body in fenced_blocks(page("cli.md")) if body.startswith(f"$ gradcheck {command} specs/"))
    lines = quoted.splitlines()
    monkeypatch.chdir(ROOT)
    result = run(*lines[0].split()[2:], "--color", "never", columns=100)
    assert result.exit_code == 0, result.output
    assert [line.rstrip() for line in result.stdout.splitlines()] == [line.rstrip() for line in lines[1:]]


# ------------------------------------------------------------------------------------------ the spec format

def test_spec_format_page_lists_every_top_level_key_initialiser_and_method():
    text = page("spec-format.md")
    table = text[text.index("## Top-level keys"): text.index("## Inputs")]
    for key in spec_module.TOP_LEVEL_KEYS:
        assert f"| `{key}` |" in table, key
    for init, params in spec_module.INITIALISERS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{init}` |"))
        for name, default in params.items():
            assert f"`{name}`" in row and (default is None or f"({default!r}" in row), (init, name)
    for method in spec_module.METHODS:
        assert f"| `{method}`" in text, method


@pytest.mark.parametrize("value", [
    yamlsource.MAX_FILE_BYTES, yamlsource.MAX_YAML_NODES, yamlsource.MAX_EXPANDED_SCALARS, yamlsource.MAX_YAML_DEPTH,
    yamlsource.MAX_NUMBER_DIGITS, spec_module.MAX_NAME_CHARS, spec_module.MAX_INPUT_ELEMENTS,
    spec_module.MAX_TOTAL_ELEMENTS, MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH, MAX_GRAPH_NODES])
def test_spec_format_page_quotes_every_limit(value):
    limits = page("spec-format.md").split("## Limits")[1].split("\n## ")[0]
    assert f"| {value:,}" in limits


def test_spec_format_page_quotes_the_default_tolerances():
    text = page("spec-format.md")
    for dtype, (atol, rtol) in spec_module.DEFAULT_TOLERANCE.items():
        row = re.search(rf"^\| {dtype} \| ([^|]+) \| ([^|]+) \|$", text, flags=re.M)
        assert row and (float(row[1]), float(row[2])) == (atol, rtol), dtype


def test_annotated_example_runs_as_quoted(tmp_path, monkeypatch):
    text = page("spec-format.md").split("## A complete annotated example")[1]
    blocks = fenced_blocks(text)
    spec_yaml = next(body for language, body in blocks if language == "yaml")
    quoted = next(body for language, body in blocks if body.startswith("$ gradcheck run classifier.yaml"))
    np.save(tmp_path / "features.npy", np.random.default_rng(1).normal(size=(4, 3)))
    (tmp_path / "classifier.yaml").write_text(spec_yaml, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert_output_as_quoted(quoted, expected_exit=0)


# ------------------------------------------------------------------------------------------ the reports

def emitted_fields(document: dict) -> set[str]:
    fields = set(document)
    for spec in document["specs"]:
        fields |= set(spec)
        for key in ("error", "output"):
            if spec[key]:
                fields |= set(spec[key])
        for key in ("nodes", "suspects", "jvp", "expect"):
            for entry in spec[key]:
                fields |= set(entry)
    return fields


def test_report_page_documents_every_json_field_emitted(tmp_path):
    (tmp_path / "layers.py").write_text(custom_ops_layer(), encoding="utf-8")
    (tmp_path / "broken.yaml").write_text(custom_ops_spec().replace("layers:Swish", "layers:BrokenSwish"),
                                          encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("inputs: {x: 1.0}\nnodes:\n  y: x.real\n", encoding="utf-8")
    result = run("run", SPECS, tmp_path, "--format", "json", "--values")
    fields = emitted_fields(json.loads(result.stdout))
    assert {"suspects", "jvp", "expect", "analytic", "column", "argument_node"} <= fields  # every kind was emitted
    section = re.sub(r"^```.*?^```", "", page("report.md").split("## JSON")[1].split("\n## ")[0], flags=re.M | re.S)
    documented = {word for span in re.findall(r"`([^`]+)`", section) for word in re.findall(r"[a-z_]+", span)}
    assert fields - documented == set()


def test_report_page_quotes_the_github_annotations_as_printed(tmp_path, monkeypatch):
    quoted = next(body for _, body in fenced_blocks(page("report.md")) if body.startswith("::error file=broken_swish.yaml"))
    (tmp_path / "layers.py").write_text(custom_ops_layer(), encoding="utf-8")
    (tmp_path / "broken_swish.yaml").write_text(
        custom_ops_spec().replace("layers:Swish", "layers:BrokenSwish").replace("name: swish layer", "name: broken swish layer"),
        encoding="utf-8")
    (tmp_path / "relu_kink.yaml").write_text((SPECS / "relu_kink.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("inputs:\n  x: [1.0, 2.0]\nnodes:\n  y: x.real\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run("run", "broken_swish.yaml", "relu_kink.yaml", "bad.yaml", "--format", "github")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == quoted.splitlines()


def test_report_page_lists_every_diagnosis_kind():
    from gradcheck.results import Kind

    section = page("report.md").split("**A diagnosis**")[1]
    for kind in Kind:
        assert f"| `{kind.value}` |" in section, kind.value


def test_report_page_lists_every_skip_reason_the_comparator_gives():
    source = (ROOT / "gradcheck" / "judge" / "nodes.py").read_text(encoding="utf-8")
    reasons = re.findall(r'return f?"([^"{]+)', source.split("def skip_reason")[1].split("\n    def ")[0])
    assert len(reasons) >= 5
    for reason in reasons:
        assert reason in page("report.md"), reason


# ------------------------------------------------------------------------------------------ the Python API

def test_api_page_example_runs_and_raises_what_it_quotes():
    text = page("api.md")
    example = next(body for language, body in fenced_blocks(text) if language == "python")
    quoted = next(body for _, body in fenced_blocks(text) if body.startswith("AssertionError: "))
    *setup, last = example.rstrip().splitlines()
    namespace: dict = {}
    exec("\n".join(setup), namespace)  # everything but the last line passes
    with pytest.raises(AssertionError) as raised:
        exec(last, namespace)
    assert f"AssertionError: {raised.value}" == quoted.rstrip()


def test_api_page_names_every_parameter_of_the_api():
    import inspect

    import gradcheck

    text = page("api.md")
    for function in (gradcheck.check, gradcheck.check_op):
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.kind is parameter.KEYWORD_ONLY:
                assert f"`{name}`" in text or f"{name}=" in text, (function.__name__, name)


# ------------------------------------------------------------------------------------------ custom ops

def custom_ops_layer() -> str:
    blocks = [body for language, body in fenced_blocks(page("custom-ops.md")) if language == "python"]
    swish = next(body for body in blocks if body.startswith("import numpy"))
    broken = next(body for body in blocks if body.startswith("class BrokenSwish"))
    return swish + "\n\n" + broken


def custom_ops_spec() -> str:
    return next(body for language, body in fenced_blocks(page("custom-ops.md"))
                if language == "yaml" and "layers:Swish" in body and "name: swish layer" in body)


def test_custom_ops_page_lists_every_optional_hook():
    hooks = getattr(base, "OPTIONAL_HOOKS", None)
    if hooks is None:
        pytest.skip("this version of the op record does not list its hooks")
    table = page("custom-ops.md").split("## Optional hooks")[1].split("\n## ")[0]
    for hook in hooks:
        assert f"| `{hook}` |" in table, hook


@pytest.mark.parametrize("reference, command, expected_exit", [
    ("layers:Swish", "$ gradcheck run swish.yaml\n", 0),
    ("layers:BrokenSwish", "$ gradcheck run broken_swish.yaml\n", 1),
])
def test_custom_ops_examples_run_as_quoted(tmp_path, monkeypatch, reference, command, expected_exit):
    text = page("custom-ops.md")
    quoted = next(body for _, body in fenced_blocks(text) if body.startswith(command))
    (tmp_path / "layers.py").write_text(custom_ops_layer(), encoding="utf-8")
    name = command.split()[-1]
    spec = custom_ops_spec().replace("layers:Swish", reference)
    if reference == "layers:BrokenSwish":
        spec = spec.replace("name: swish layer", "name: broken swish layer")
    (tmp_path / name).write_text(spec, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert_output_as_quoted(quoted, expected_exit)


def assert_output_as_quoted(quoted: str, expected_exit: int) -> None:
    """The table report of the quoted `$ gradcheck run ...`, run here, line by line against the quote (timing aside)."""
    lines = quoted.splitlines()
    shown = [line for line in lines[1:] if not line.startswith("$ ")]
    result = run(*lines[0].split()[2:], "--color", "never", columns=250)
    assert result.exit_code == expected_exit, result.output

    def comparable(text_lines):
        return [re.sub(r" · [0-9.]+s$", "", line.rstrip()) for line in text_lines if line.strip() != str(expected_exit)]

    assert comparable(result.stdout.splitlines()) == comparable(shown)


# ------------------------------------------------------------------------------------------ code the docs name

def documented_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


def gradcheck_modules() -> set[str]:
    import pkgutil

    import gradcheck

    return {"gradcheck"} | {name for _, name, _ in pkgutil.iter_modules(gradcheck.__path__)}


@pytest.mark.parametrize("path", documented_pages(), ids=lambda p: p.name)
def test_every_constant_and_name_the_docs_cite_in_gradcheck_exists(path):
    """`spec.MAX_NAME_CHARS`, `judge.CheckOptions`, `gradcheck.ops.base.unbroadcast(...)`: each resolves."""
    import importlib

    modules = gradcheck_modules()
    cited = set(re.findall(r"`((?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*)[`(]", path.read_text(encoding="utf-8")))
    for dotted in sorted(cited):
        parts = dotted.split(".")
        if parts[0] not in modules or parts[-1] in ("py", "yaml", "yml", "npy", "csv", "md", "json", "xml"):
            continue
        if parts[0] != "gradcheck":
            parts.insert(0, "gradcheck")
        obj, consumed = importlib.import_module(parts[0]), 1
        while consumed < len(parts):
            name = parts[consumed]
            if not hasattr(obj, name):
                obj = importlib.import_module(".".join(parts[:consumed + 1]))  # a submodule not imported yet
            else:
                obj = getattr(obj, name)
            consumed += 1


@pytest.mark.parametrize("path", documented_pages(), ids=lambda p: p.name)
def test_every_repository_file_the_docs_name_exists(path):
    named = re.findall(r"`((?:gradcheck|tests|specs|bench|docs)/[\w./-]*)`", path.read_text(encoding="utf-8"))
    for relative in named:
        assert (ROOT / relative).exists(), relative


def test_cli_page_describes_every_run_option_and_plugin_option():
    text = page("cli.md")
    run_section = text.split("## gradcheck run")[1].split("\n## ")[0]
    rows = "\n".join(line for line in run_section.splitlines() if line.startswith("| `"))
    for param in main.commands["run"].params:
        longest = [opt for opt in param.opts if opt.startswith("--")]
        if longest and longest[0] != "--help":
            assert longest[0] in rows, longest[0]
    plugin = (ROOT / "gradcheck" / "pytest_plugin.py").read_text(encoding="utf-8")
    plugin_section = text.split("## The pytest plugin")[1]
    for option in re.findall(r'addoption\("(--[\w-]+)"', plugin) + re.findall(r'addini\("(\w+)"', plugin):
        assert f"`{option}" in plugin_section, option


def test_report_page_describes_every_status():
    from gradcheck.results import Status

    table = page("report.md").split("## Statuses")[1].split("\n## ")[0]
    for status in Status:
        if status is not Status.ERROR:  # a spec's status, and a jvp rule's: described beside them
            assert f"| `{status.value}` |" in table, status.value
    assert "`error`" in table


# ------------------------------------------------------------------------------------------ links

def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.md")) + [ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve_to_files_and_headings(path):
    text = path.read_text(encoding="utf-8")
    outside_code = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", outside_code):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), target
        assert ROOT in linked.parents or linked == ROOT, target  # nothing outside the repository
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", linked.read_text(encoding="utf-8"),
                                                      flags=re.M | re.S), flags=re.M)
            assert anchor in {slug(h) for h in headings}, target


def test_report_page_table_example_is_the_one_docs_reproduce():
    shown = next(body for _, body in fenced_blocks(page("report.md"))
                 if body.startswith("FAIL  broken swish layer")).splitlines()
    quoted = next(body for _, body in fenced_blocks(page("custom-ops.md"))
                  if body.startswith("$ gradcheck run broken_swish.yaml\n")).splitlines()[1:-2]
    assert [line for line in shown if "·" not in line] == [line for line in quoted if "·" not in line]


def test_readme_failure_example_is_the_one_docs_reproduce():
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## What a failure looks like")[1]
    shown = fenced_blocks(readme)[0][1].splitlines()
    quoted = next(body for _, body in fenced_blocks(page("custom-ops.md"))
                  if body.startswith("$ gradcheck run broken_swish.yaml\n")).splitlines()[1:-2]
    assert [line for line in shown if "·" not in line] == [line for line in quoted if "·" not in line]
