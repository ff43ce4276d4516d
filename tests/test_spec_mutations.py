"""Issue #4, part 4: mutate every shipped spec and assert a clean outcome every time.

For each ``specs/**/*.yaml`` (and a few samples written here, so the test means something even in a
checkout without specs): delete each top-level key in turn, rename each key near the top, change the
type of every scalar (number -> string, string -> list, ...), and truncate the file at several byte
offsets.  Every run must end with exit 0, 1 or 2, print no traceback and no internal error, and an
exit 2 must print exactly one `path:line:...: error:` line for the file.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gradcheck.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for p in (ROOT / "specs").rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())

SAMPLES = {
    "sample_full.yaml": """\
# every top-level key, several input and node forms
name: sample
description: a sample with every key
dtype: float64
seed: 7
inputs:
  x: [1.0, -2.0, 0.5]
  w: {value: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]}
  b: {shape: [2], init: uniform, low: -0.5, high: 0.5}
  label: {value: [1, 0], dtype: int64}
  mask: {value: [1.0, 0.0], requires_grad: false}
nodes:
  z: w @ x + b
  h: {expr: "tanh(z) * mask", atol: 1e-7, rtol: 1e-5}
  skip: {expr: sum(label * h), check: false}
  loss: |
    mean(square(h)) + 0.5 * sum(softplus(z))
output: loss
tolerance: {atol: 1e-6, rtol: 1e-4}
numeric: {method: central, eps: auto}
expect:
  atol: 1e-3
  grad: {x: [0.0, 0.0, 0.0]}
""",
    "sample_block.yml": """\
inputs:
  a: 2.0
  b:
    value:
      - 1.0
      - 2.0
  c:
    shape: [2, 2]
    init: normal
    std: 0.1
nodes:
  s: a * b
  t: sum(s) + sum(c)
""",
}


def _specs():
    return [pytest.param(path, id=str(path.relative_to(ROOT))) for path in SHIPPED] + \
        [pytest.param(name, id=f"sample:{name}") for name in SAMPLES]


def _materialise(spec, tmp_path: Path) -> tuple[str, Path]:
    """The spec's text, and a scratch folder for the mutants holding copies of the spec's neighbours (data
    files, custom op modules) — never the repository's own folder, which others may be running."""
    if isinstance(spec, Path):
        folder = tmp_path / "copy"
        shutil.copytree(spec.parent, folder, ignore=shutil.ignore_patterns("*.yaml", "*.yml", "__pycache__"))
        return spec.read_text(encoding="utf-8"), folder
    return SAMPLES[spec], tmp_path


def run_mutant(folder: Path, name: str, text: str | bytes, problems: list, label: str) -> None:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--mode", "fast", str(path)])
    try:
        output = result.output
        problem = None
        if result.exit_code not in (0, 1, 2):
            problem = f"exit {result.exit_code}"
        elif result.exception is not None and not isinstance(result.exception, SystemExit):
            problem = f"uncaught {result.exception!r}"
        elif "Traceback" in output or "internal error" in output:
            problem = "traceback or internal error"
        elif result.exit_code == 2:
            errors = [row for row in result.stderr.splitlines() if ": error:" in row]
            if len(errors) != 1:
                problem = f"{len(errors)} error lines"
            elif not errors[0].startswith(f"{path}:") or not errors[0][len(f"{path}:"):].split(":")[0].isdigit():
                problem = f"no path:line in {errors[0]!r}"
        if problem:
            problems.append(f"{label}: {problem}\n{output[-800:]}")
    finally:
        path.unlink(missing_ok=True)


def _compose(text: str):
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _mutant_name(spec) -> str:
    stem = spec.stem if isinstance(spec, Path) else Path(spec).stem
    return f"_mutant_{stem}.yaml"


# ------------------------------------------------------------------------------------------ mutations

def delete_top_level_keys(text: str):
    root = _compose(text)
    lines = text.splitlines(keepends=True)
    starts = [key.start_mark.line for key, _ in root.value]
    for index, (key, _) in enumerate(root.value):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        yield f"delete '{key.value}'", "".join(lines[: starts[index]] + lines[end:])


def rename_keys(text: str, max_depth: int = 2):
    """Append a letter to each mapping key in the top two levels (tolerance -> tolerancex, an input's name, ...)."""
    root = _compose(text)
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, yaml.MappingNode) or depth >= max_depth:
            continue
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                at = key.end_mark.index
                yield f"rename key '{key.value}'", text[:at] + "x" + text[at:]
            stack.append((value, depth + 1))


def _replacement(node: yaml.ScalarNode) -> list[str]:
    """Other-typed values for a scalar: number -> string, string -> list, bool/null -> number, ..."""
    tag = node.tag.rsplit(":", 1)[-1]
    if tag in ("int", "float"):
        return ["abc", "[1, 2]"]
    if tag == "str":
        return ["[1, 2]", "{a: 1}"] if node.style is None else ["[1, 2]"]
    if tag == "bool":
        return ["3"]
    return ["x"]


def change_scalar_types(text: str):
    """Every scalar value (not keys); of a list's items only the first, so big inline arrays stay cheap."""
    root = _compose(text)
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            stack.extend(value for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value[:1])
        elif node.style not in ("|", ">"):
            start, end = node.start_mark.index, node.end_mark.index
            for new in _replacement(node):
                if node.start_mark.line == node.end_mark.line:
                    yield f"line {node.start_mark.line + 1}: {node.value[:20]!r} -> {new}", text[:start] + new + text[end:]


def truncations(data: bytes, count: int = 9):
    offsets = sorted({0, 1, len(data) - 1, *(len(data) * k // count for k in range(1, count))})
    for offset in offsets:
        yield f"truncate at byte {offset}", data[:offset]


# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("spec", _specs())
def test_the_unmutated_spec_runs_cleanly(spec, tmp_path):
    text, folder = _materialise(spec, tmp_path)
    problems: list = []
    run_mutant(folder, _mutant_name(spec), text, problems, "original")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("spec", _specs())
def test_deleting_each_top_level_key(spec, tmp_path):
    text, folder = _materialise(spec, tmp_path)
    problems: list = []
    for label, mutant in delete_top_level_keys(text):
        run_mutant(folder, _mutant_name(spec), mutant, problems, label)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("spec", _specs())
def test_renaming_keys(spec, tmp_path):
    text, folder = _materialise(spec, tmp_path)
    problems: list = []
    for label, mutant in rename_keys(text):
        run_mutant(folder, _mutant_name(spec), mutant, problems, label)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("spec", _specs())
def test_changing_the_type_of_every_scalar(spec, tmp_path):
    text, folder = _materialise(spec, tmp_path)
    problems: list = []
    count = 0
    for label, mutant in change_scalar_types(text):
        run_mutant(folder, _mutant_name(spec), mutant, problems, label)
        count += 1
    assert count > 0
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("spec", _specs())
def test_truncating_the_file(spec, tmp_path):
    text, folder = _materialise(spec, tmp_path)
    problems: list = []
    for label, mutant in truncations(text.encode("utf-8")):
        run_mutant(folder, _mutant_name(spec), mutant, problems, label)
    assert not problems, "\n".join(problems)


def test_mutations_do_produce_located_errors(tmp_path):
    """The harness itself: a deleted 'nodes' and a string where a number belongs give exit 2 at a line."""
    text = SAMPLES["sample_block.yml"]
    mutants = dict(delete_top_level_keys(text))
    path = tmp_path / "m.yaml"
    path.write_text(mutants["delete 'nodes'"])
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and f"{path}:1:1: error: the spec has no 'nodes'" in result.stderr
    changed = dict(change_scalar_types(text))
    path.write_text(changed["line 2: '2.0' -> abc"])
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and f"{path}:2:6: error: input 'a' must be a number" in result.stderr
