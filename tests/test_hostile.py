"""Issue #4, part 2: hostile input.  Nothing in a spec runs code (except the custom ops it names in
``ops:``), nothing exhausts memory or hangs, and every file ends with exit 2, its path and line, and
no traceback.  Each resource bomb must be stopped by the limit made for it (the message states it);
a hang fails the test after conftest.HANG_SECONDS.

Payloads that would execute try to create a sentinel file; the tests assert it never appears and
that os.system / subprocess were never called.
"""
from __future__ import annotations

import codecs
import os
import random
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from gradcheck.cli import main

pytestmark = pytest.mark.usefixtures("hang_bound")

BODY = "inputs:\n  x: [1.0, 2.0]\nnodes:\n"


@pytest.fixture
def no_processes(monkeypatch):
    """Record any attempt to start a process while gradcheck runs."""
    calls = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append(("os.system", a)) or 0)
    monkeypatch.setattr(os, "popen", lambda *a, **k: calls.append(("os.popen", a)))

    class NoPopen:
        def __init__(self, *a, **k):
            calls.append(("subprocess.Popen", a))
            raise OSError("no processes in tests")

    monkeypatch.setattr(subprocess, "Popen", NoPopen)
    return calls


def run(path, *extra):
    return CliRunner().invoke(main, ["run", *extra, str(path)])


def assert_clean_error(path, result, line=True, fragment=None):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [row for row in result.stderr.splitlines() if ": error:" in row]
    assert len(errors) == 1, result.stderr
    prefix = f"{path}:" if line else f"{path}"
    assert errors[0].startswith(prefix), errors[0]
    if line:
        assert errors[0][len(prefix):].split(":")[0].isdigit(), errors[0]
    if fragment:
        assert fragment in errors[0], errors[0]
    assert len(errors[0]) < 2000
    return errors[0]


# ------------------------------------------------------------------------------------------ YAML tags

TAG_PAYLOADS = [
    "inputs: !!python/object/apply:os.system ['touch {s}']\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/object/apply:builtins.open ['{s}', 'w']\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/object/apply:subprocess.check_output [[touch, '{s}']]\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/object/new:builtins.open ['{s}', 'w']\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/name:os.system\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/module:os\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/object:subprocess.Popen {{args: [touch, '{s}']}}\nnodes:\n  y: x\n",
    "inputs:\n  x: !!python/tuple [1, 2]\nnodes:\n  y: x\n",
    "!!python/object/apply:os.system ['touch {s}']\n",
    "inputs:\n  !!python/object/apply:os.system ['touch {s}'] : 1\nnodes:\n  y: x\n",
    "inputs:\n  x: !<tag:yaml.org,2002:python/object/apply:os.system> ['touch {s}']\nnodes:\n  y: x\n",
    "%TAG !p! tag:yaml.org,2002:python/\n---\ninputs:\n  x: !p!object/apply:os.system ['touch {s}']\nnodes:\n  y: x\n",
    "inputs:\n  x: !custom_tag 1\nnodes:\n  y: x\n",
    "nodes:\n  y: !!python/object/apply:eval [\"open('{s}', 'w')\"]\ninputs:\n  x: 1\n",
]


@pytest.mark.parametrize("payload", TAG_PAYLOADS, ids=[f"tag{i}" for i in range(len(TAG_PAYLOADS))])
def test_python_tags_are_refused_and_run_nothing(tmp_path, payload, no_processes):
    sentinel = tmp_path / "PWNED"
    path = tmp_path / "spec.yaml"
    path.write_text(payload.format(s=sentinel))
    result = run(path)
    message = assert_clean_error(path, result)
    assert "is not allowed" in message
    assert not sentinel.exists()
    assert no_processes == []


# ------------------------------------------------------------------------------------------ expressions

EXPRESSIONS = [
    ("__import__('os').system('touch {s}')", "attribute access"),
    ("__import__('os')", "unknown op '__import__'"),
    ("().__class__.__bases__", "attribute access"),
    ("x.__class__", "attribute access"),
    ("x.__class__.__mro__[1].__subclasses__()", "attribute access"),
    ("(lambda: open('{s}', 'w'))()", "not allowed"),
    ("[open('{s}', 'w') for i in x]", "a comprehension"),
    ("{{open('{s}', 'w') for i in x}}", "a comprehension"),
    ("f\"{{open('{s}', 'w')}}\"", "an f-string"),
    ("open('{s}', 'w')", "unknown op 'open'"),
    ("eval(\"open('{s}', 'w')\")", "unknown op 'eval'"),
    ("exec(\"open('{s}', 'w')\")", "unknown op 'exec'"),
    ("compile('1', 'f', 'eval')", "unknown op 'compile'"),
    ("globals()", "unknown op 'globals'"),
    ("getattr(x, '__class__')", "unknown op 'getattr'"),
    ("breakpoint()", "unknown op 'breakpoint'"),
    ("__builtins__", "neither an input nor an earlier node"),
    ("(y := x)", "an assignment"),
    ("x; import os", "invalid expression"),
    ("tanh(*[x])", "unpacking"),
    ("sum(x, **{{'axis': 0}})", "keyword unpacking"),
    ("x if x else x", "a conditional expression"),
    ("not x", "not supported"),
    ("sum(x, axis=__import__('os'))", "must be a constant"),
    ("x[__import__('os')]", "unknown op '__import__'"),  # an index array is an expression: no such op
    ("tanh(x)(x)", "calling an expression"),
    ("'abc'", "is not a number"),
    ("b'abc'", "is not a number"),
    ("1j * x", "is not a number"),
    ("sum(x % 2)", "not supported"),
]


@pytest.mark.parametrize("expression, fragment", EXPRESSIONS, ids=[f"expr{i}" for i in range(len(EXPRESSIONS))])
def test_expressions_never_run_code(tmp_path, expression, fragment, no_processes):
    sentinel = tmp_path / "PWNED"
    text = expression.format(s=sentinel)
    path = tmp_path / "spec.yaml"
    path.write_text(BODY + "  y: " + _quoted(text) + "\n")
    result = run(path)
    message = assert_clean_error(path, result, fragment=fragment)
    assert f"{path}:4:" in message
    assert not sentinel.exists()
    assert no_processes == []


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------------------ resource bombs

def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"' + ', "lol"' * (width - 1) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# Each bomb, and a fragment of the message of the limit that must stop it (the limits are gradcheck's own:
# MAX_EXPANDED_SCALARS, MAX_YAML_DEPTH, MAX_YAML_NODES, MAX_NUMBER_DIGITS in yamlsource.py, MAX_EXPRESSION_CHARS
# and MAX_EXPRESSION_DEPTH in expr.py, MAX_GRAPH_NODES in graph.py, MAX_INPUT_ELEMENTS and MAX_TOTAL_ELEMENTS in spec.py).
ALIAS_LIMIT = "the limit is 1,000,000"
DEPTH_LIMIT = "nests deeper than 100 levels; the limit is 100"
VALUES_LIMIT = "the limit is 50,000 (large arrays belong in a .npy or .csv file: use file:)"
EXPRESSION_LENGTH_LIMIT = "characters; the limit is 20,000"
PARSER_DEPTH_LIMIT = "split it into several nodes"
INPUT_ELEMENTS_LIMIT = "the limit is 20,000,000 elements"
RESULT_ELEMENTS_LIMIT = "the limit is 50,000,000 elements"
BOMBS = {
    "billion-laughs-top-level": (billion_laughs() + BODY + "  y: sum(x)\n", ALIAS_LIMIT),
    "billion-laughs-in-an-input": ("inputs:\n  x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 8)) + "nodes:\n  y: sum(x7)\n",
        ALIAS_LIMIT),
    "recursive-alias": ("inputs: &a\n  x: *a\nnodes:\n  y: x\n", "a recursive alias"),
    "deep-flow-lists": ("inputs:\n  x: " + "[" * 100_000 + "\nnodes:\n  y: x\n", DEPTH_LIMIT),
    "deep-closed-lists": ("inputs:\n  x: " + "[" * 100_000 + "1" + "]" * 100_000 + "\nnodes:\n  y: sum(x)\n", DEPTH_LIMIT),
    "deep-flow-mappings": ("inputs:\n  x: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\nnodes:\n  y: x\n", DEPTH_LIMIT),
    "deep-block-mappings": ("inputs:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(3000)) + "nodes:\n  y: x\n",
                            DEPTH_LIMIT),
    "deep-parentheses": (BODY + "  y: \"" + "(" * 100_000 + "x" + ")" * 100_000 + "\"\n", EXPRESSION_LENGTH_LIMIT),
    "deep-parentheses-under-the-length-limit": (BODY + "  y: \"" + "(" * 5000 + "x" + ")" * 5000 + "\"\n",
                                                PARSER_DEPTH_LIMIT),
    "deep-calls": (BODY + "  y: \"" + "tanh(" * 3000 + "x" + ")" * 3000 + "\"\n", PARSER_DEPTH_LIMIT),
    "deep-unary": (BODY + "  y: \"" + "-" * 15_000 + "x\"\n", PARSER_DEPTH_LIMIT),
    "long-sum": (BODY + "  y: \"" + "+".join(["x"] * 6000) + "\"\n", PARSER_DEPTH_LIMIT),
    "ten-megabyte-line": (BODY + "  y: \"x + " + "1" * 10_000_000 + "\"\n", EXPRESSION_LENGTH_LIMIT),
    "ten-megabyte-string-input": ("inputs:\n  x: 1\n  junk: \"" + "a" * 10_000_000 + "\"\nnodes:\n  y: x\n",
                                  "input 'junk' must be a number"),
    "two-million-literal-values": ("inputs:\n  x: [" + ", ".join(["1"] * 2_000_000) + "]\nnodes:\n  y: sum(x)\n",
                                   VALUES_LIMIT),
    "huge-integer": ("inputs:\n  x: " + "9" * 100_000 + "\nnodes:\n  y: x\n", "(the limit is 400 digits)"),
    "huge-integer-in-expression": (BODY + "  y: \"x * " + "9" * 10_000 + "\"\n", "(the limit is 400 digits)"),
    "many-inputs": ("inputs:\n" + "".join(f"  x{i}: 1\n" for i in range(30_000)) + "nodes:\n  y: x0\n", VALUES_LIMIT),
    "many-nodes": ("inputs:\n  x: 1\nnodes:\n" + "".join(f"  n{i}: x + 1\n" for i in range(20_000)) + "  y: undefined\n",
                   "more than 10,000 nodes"),
    "huge-shape": ("inputs:\n  x: {shape: [100000, 100000], init: normal}\nnodes:\n  y: sum(x)\n", INPUT_ELEMENTS_LIMIT),
    "huge-shape-with-a-zero": ("inputs:\n  x: {shape: [0, 100000000000000000000000], init: zeros}\nnodes:\n  y: sum(x)\n",
                               INPUT_ELEMENTS_LIMIT),
    "too-many-dimensions": ("inputs:\n  x: {shape: [" + ", ".join(["1"] * 100) + "], init: zeros}\nnodes:\n  y: sum(x)\n",
                            "has 100 dimensions; the limit is 32"),
    "huge-broadcast": ("inputs:\n  a: {shape: [100000, 1], init: ones}\n  b: {shape: [1, 100000], init: ones}\n"
                       "nodes:\n  y: sum(a * b)\n", RESULT_ELEMENTS_LIMIT),
    "huge-outer-matmul": ("inputs:\n  a: {shape: [30000, 1], init: ones}\n  b: {shape: [1, 30000], init: ones}\n"
                          "nodes:\n  y: sum(a @ b)\n", RESULT_ELEMENTS_LIMIT),
    "huge-reshape": (BODY + "  y: reshape(x, shape=(100000, 100000))\n", "cannot reshape an array of shape (2,)"),
}


@pytest.mark.parametrize("text, limit", list(BOMBS.values()), ids=list(BOMBS))
def test_resource_bombs_are_stopped_by_their_limit(tmp_path, text, limit, no_processes):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = run(path)
    assert_clean_error(path, result, fragment=limit)


def test_alias_bomb_message_states_the_limit(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs() + BODY + "  y: sum(x)\n")
    result = run(path)
    message = assert_clean_error(path, result)
    assert "alias" in message and "the limit is 1,000,000" in message


def test_huge_shape_states_the_limit_and_a_memory_estimate(tmp_path):
    path = tmp_path / "shape.yaml"
    path.write_text("inputs:\n  x: {shape: [100000, 100000], init: normal}\nnodes:\n  y: sum(x)\n")
    result = run(path)
    message = assert_clean_error(path, result)
    assert f"{path}:2:14:" in message
    assert "10,000,000,000 elements" in message and "74.5 GiB" in message and "the limit is 20,000,000" in message


def test_deep_nesting_names_the_place(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("inputs:\n  x: " + "[" * 100_000 + "\nnodes:\n  y: x\n")
    result = run(path)
    message = assert_clean_error(path, result, fragment="nests deeper than 100 levels")
    # the top mapping is level 1 and inputs' mapping level 2, so the 99th '[' (column 5 + 99) opens level 101;
    # libyaml's own nesting limit (1000 in newer builds) must not be what the user sees
    assert message.startswith(f"{path}:2:104: error: ")


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML without libyaml")
def test_nesting_past_the_limit_is_reported_before_a_later_syntax_error(tmp_path):
    """libyaml scans ahead of the composer on one line: its error at '@' (column 157) must not hide the depth bound
    passed earlier on that line (the same place as in test_deep_nesting_names_the_place)."""
    path = tmp_path / "deep.yaml"
    path.write_text("inputs:\n  x: " + "[" * 150 + " @\nnodes:\n  y: x\n")
    result = run(path)
    message = assert_clean_error(path, result, fragment="nests deeper than 100 levels")
    assert message.startswith(f"{path}:2:104: error: ")


def test_many_literal_values_point_to_data_files(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("inputs:\n  x: [" + ", ".join(["1"] * 2_000_000) + "]\nnodes:\n  y: sum(x)\n")
    result = run(path)
    assert_clean_error(path, result, fragment="use file:")


def test_a_file_over_the_size_limit_is_refused_without_reading_it(tmp_path):
    from gradcheck.yamlsource import MAX_FILE_BYTES

    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.write(b"inputs:\n  x: 1\nnodes:\n  y: x\n# ")
        handle.seek(MAX_FILE_BYTES + 10)
        handle.write(b"\n")
    result = run(path)
    assert_clean_error(path, result, fragment=f"the limit is {MAX_FILE_BYTES:,} bytes")


# ------------------------------------------------------------------------------------------ garbage and odd files

def _random_bytes(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


GARBAGE = {
    **{f"random-bytes-{seed}": _random_bytes(seed) for seed in range(8)},
    "png-header": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00",
    "gzip-header": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(50),
    "elf-header": b"\x7fELF\x02\x01\x01" + bytes(100),
    "utf16-le-bom": codecs.BOM_UTF16_LE + (BODY + "  y: sum(x)\n").encode("utf-16-le"),
    "utf16-be-bom": codecs.BOM_UTF16_BE + (BODY + "  y: sum(x)\n").encode("utf-16-be"),
    "utf32-bom": codecs.BOM_UTF32_LE + (BODY + "  y: sum(x)\n").encode("utf-32-le"),
    "latin-1": ("inputs:\n  x: 1\nnodes:\n  y: x  # café\n").encode("latin-1"),
    "nul-in-text": b"inputs:\n  x: 1\x00\nnodes:\n  y: x\n",
    "encoded-surrogate": b"inputs:\n  x: \"\xed\xa0\x80\"\nnodes:\n  y: x\n",
    "escape-sequences": b"inputs:\n  x: 1\nnodes:\n  y: \x1b[31mx\x1b[0m\n",
    "bell-in-key": b"inputs:\n  x\x07: 1\nnodes:\n  y: x\n",
    "only-nul": b"\x00" * 100,
    "only-document-end-marker": b"...\n",
    "right-to-left-override": "inputs:\n  x: 1\nnodes:\n  y: \"\u202ex\"\n".encode(),
}


@pytest.mark.parametrize("content", list(GARBAGE.values()), ids=list(GARBAGE))
def test_binary_garbage(tmp_path, content):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(content)
    result = run(path)
    assert_clean_error(path, result)


EMPTYISH = {
    "empty": "",
    "only-a-comment": "# a spec, one day\n",
    "only-whitespace": "   \n\n  \n",
    "only-document-start": "---\n",
    "null-document": "~\n",
    "explicit-null-document": "--- null\n",
}


@pytest.mark.parametrize("content", list(EMPTYISH.values()), ids=list(EMPTYISH))
def test_empty_files(tmp_path, content):
    path = tmp_path / "empty.yaml"
    path.write_text(content)
    result = run(path)
    assert_clean_error(path, result, fragment="the spec is empty")


def test_a_second_document_is_an_error_naming_its_line(tmp_path):
    path = tmp_path / "multi.yaml"
    first = BODY + "  y: sum(x)\n"
    path.write_text("---\n" + first + "---\n" + first)
    result = run(path)
    message = assert_clean_error(path, result, fragment="second document")
    assert message.startswith(f"{path}:6:1:")


def test_a_document_end_marker_alone_is_fine(tmp_path):
    path = tmp_path / "ended.yaml"
    path.write_text("---\n" + BODY + "  y: sum(x)\n...\n")
    result = run(path)
    assert result.exit_code == 0, result.output


def test_utf8_bom_and_crlf_are_fine(tmp_path):
    path = tmp_path / "windows.yaml"
    path.write_bytes(codecs.BOM_UTF8 + (BODY + "  y: sum(x)\n").replace("\n", "\r\n").encode())
    result = run(path)
    assert result.exit_code == 0, result.output


def test_hostile_custom_op_reference_is_refused(tmp_path, no_processes):
    """ops: names code by module and attribute; paths and dunder walks are not references."""
    sentinel = tmp_path / "PWNED"
    for index, reference in enumerate(["../../etc/passwd:x", "os:system.__self__", "builtins:__import__",
                                       f"os:system('touch {sentinel}')", "a b:c", ":x", "x:"]):
        path = tmp_path / f"ops{index}.yaml"
        path.write_text(BODY + "  y: sum(x)\nops:\n  evil: " + _quoted(reference) + "\n")
        result = run(path)
        assert_clean_error(path, result, fragment="module:attribute")
    assert not sentinel.exists()
    assert no_processes == []


def test_a_whole_hostile_folder_runs_every_file(tmp_path, no_processes):
    """Many bad files in one run: each gets its own error line; the run ends with exit 2."""
    sentinel = tmp_path / "PWNED"
    files = {f"tag{i}.yaml": payload.format(s=sentinel) for i, payload in enumerate(TAG_PAYLOADS[:4])}
    files.update({"good.yaml": BODY + "  y: sum(tanh(x))\n", "empty.yaml": "", "deep.yaml": "a: " + "[" * 5000})
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "garbage.yaml").write_bytes(_random_bytes(99))
    result = CliRunner().invoke(main, ["run", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    errors = [row for row in result.stderr.splitlines() if ": error:" in row]
    assert len(errors) == 4  # every tag payload (they hold inputs and nodes: specs, refused at their tag)
    # files without gradcheck's keys are not specs in a folder (issue 11): each skipped with a note, none run
    skipped = [row for row in result.stderr.splitlines() if row.startswith("gradcheck: note: skipped")]
    assert sorted(row.split()[3].rstrip(":").rsplit("/", 1)[-1] for row in skipped) == \
        ["deep.yaml", "empty.yaml", "garbage.yaml"]
    assert "1 passed" in result.output
    assert not sentinel.exists() and no_processes == []


def test_a_real_process_on_a_hostile_folder(tmp_path):
    """The installed program, as CI runs it: a separate process, an ASCII-only pipe, a hostile folder."""
    import sys

    sentinel = tmp_path / "PWNED"
    folder = tmp_path / "specs"
    folder.mkdir()
    bad = {
        "tag.yaml": TAG_PAYLOADS[0].format(s=sentinel),
        "expr.yaml": BODY + "  y: " + _quoted(f"__import__('os').system('touch {sentinel}')") + "\n",
        "bomb.yaml": billion_laughs() + BODY + "  y: sum(x)\n",
        "deep.yaml": "inputs:\n  x: " + "[" * 100_000 + "\n",
        "unicode.yaml": "inputs:\n  \u03c9: 1.0\nnodes:\n  y: \u03c9 * q\u00e9\n",
        "multi.yaml": BODY + "  y: sum(x)\n---\n" + BODY + "  y: sum(x)\n",
    }
    for name, text in bad.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "garbage.yaml").write_bytes(_random_bytes(5))
    (folder / "good.yaml").write_text("inputs:\n  \u03c9: [1.0, 2.0]\nnodes:\n  y: sum(tanh(\u03c9))\n", encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(folder)], capture_output=True, env=env,
                          timeout=45)  # a hang raises TimeoutExpired, before conftest.HANG_SECONDS ends the test
    stdout, stderr = done.stdout.decode("ascii", "replace"), done.stderr.decode("ascii", "replace")
    assert done.returncode == 2, stdout + stderr
    assert "Traceback" not in stdout + stderr and "internal error" not in stdout + stderr, stdout + stderr
    for name in bad:
        rows = [row for row in stderr.splitlines() if row.startswith(f"{folder / name}:") and ": error:" in row]
        assert len(rows) == 1 and rows[0][len(f"{folder / name}:"):].split(":")[0].isdigit(), (name, stderr)
    # random bytes hold no gradcheck keys: in a folder that is other YAML, skipped with a note (issue 11)
    assert f"gradcheck: note: skipped {folder / 'garbage.yaml'}: " in stderr
    assert "1 passed" in stdout
    assert not sentinel.exists()


def test_undecodable_file_names(tmp_path):
    name = os.fsdecode(b"spec\xff.yaml")
    try:
        (tmp_path / name).write_text("inputs:\n  x: 1\nnodes:\n  y: q\n")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses undecodable names")
    result = CliRunner().invoke(main, ["run", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert ":4:6: error: node 'y' uses 'q'" in result.stderr


# Each misuse, the place of the tagged value, and gradcheck's words for it; None where gradcheck passes
# PyYAML's own message through (its wording is PyYAML's, so only the place is asserted).
STANDARD_TAGS_MISUSED = {
    "int-on-text": ("inputs:\n  x: !!int abc\nnodes:\n  y: x\n", "2:6", "cannot read 'abc' as !!int"),
    "float-on-text": ("inputs:\n  x: !!float abc\nnodes:\n  y: x\n", "2:6", "cannot read 'abc' as !!float"),
    "bool-on-text": ("inputs:\n  x: !!bool maybe\nnodes:\n  y: x\n", "2:6", "cannot read 'maybe' as !!bool"),
    "bad-timestamp": ("inputs:\n  x: !!timestamp 2020-13-45\nnodes:\n  y: x\n", "2:6", "cannot read '2020-13-45' as !!timestamp"),
    "seq-on-mapping": ("inputs: !!seq {a: 1}\nnodes:\n  y: 1\n", "1:9", "the tag !!seq needs a list here"),
    "map-on-text": ("inputs: !!map abc\nnodes:\n  y: 1\n", "1:9", "the tag !!map needs a mapping here"),
    "str-on-mapping": ("inputs: !!str {a: 1}\nnodes:\n  y: 1\n", "1:9", None),
    "omap-on-number": ("inputs:\n  x: !!omap 5\nnodes:\n  y: x\n", "2:6", None),
    "binary-input": ("inputs:\n  x: !!binary aGVsbG8=\nnodes:\n  y: x\n", "2:6", "must be a number or a nested list of numbers"),
    "set-document": ("!!set {inputs, nodes}\n", "1:1", "a spec must be a mapping"),
    "merge-of-a-number": ("inputs:\n  <<: 5\nnodes:\n  y: 1\n", "2:7", None),
}


@pytest.mark.parametrize("text, place, fragment", list(STANDARD_TAGS_MISUSED.values()), ids=list(STANDARD_TAGS_MISUSED))
def test_standard_tags_on_the_wrong_value(tmp_path, text, place, fragment):
    path = tmp_path / "tags.yaml"
    path.write_text(text)
    result = run(path)
    message = assert_clean_error(path, result, fragment=fragment)
    assert message.startswith(f"{path}:{place}: error: "), message


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs POSIX devices")
@pytest.mark.parametrize("kind", ["symlink-to-dev-zero", "fifo", "data-file-symlink-to-dev-zero", "data-file-fifo"])
def test_devices_and_pipes_never_block(tmp_path, kind):
    """A symlink to /dev/zero or a named pipe (a PR can commit a symlink) must not be read forever."""
    path = tmp_path / "spec.yaml"
    if kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        data = tmp_path / "data.npy"
        data.symlink_to("/dev/zero") if kind.endswith("dev-zero") else os.mkfifo(data)
        path.write_text("inputs:\n  x: {file: data.npy}\nnodes:\n  y: sum(x)\n")
    result = run(path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}" in result.stderr and ": error:" in result.stderr
