"""Issue #4, part 1: every malformed spec ends with exit 2 and ONE message `path:line:column: error: ...`.

One row per error class: the spec text, the line and column the message must name (column None where
only the line is asserted) and a fragment of the message that says what is wrong.  Every case runs the
real command line and also asserts: no traceback and a single error line; a hang fails the test after
conftest.HANG_SECONDS.
"""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck.cli import main

pytestmark = pytest.mark.usefixtures("hang_bound")

OK = "inputs:\n  x: 2.0\nnodes:\n  y: x * x\n"

CASES = [
    # --- the file itself -------------------------------------------------------------------------
    ("yaml-syntax", "inputs:\n  x: [1, 2\nnodes:\n  y: x\n", 3, 6, "YAML syntax error"),
    ("yaml-bad-indent", "inputs:\n  x: 1\n   y: 2\nnodes:\n  y: x\n", 3, 5, "YAML syntax error"),
    ("tab-indent", "inputs:\n\tx: 1\nnodes:\n  y: x\n", 2, 1, "tab character"),
    ("empty-file", "", 1, 1, "the spec is empty"),
    ("only-a-comment", "# nothing here\n", 1, 1, "the spec is empty"),
    ("not-a-mapping-list", "- inputs\n- nodes\n", 1, 1, "must be a mapping"),
    ("not-a-mapping-scalar", "just some text\n", 1, 1, "must be a mapping"),
    ("binary-garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", 1, 1, "not UTF-8 text"),
    ("control-character", "inputs:\n  x: 1\nnodes:\n  y: \"x\x07\"\n", 4, 8, "control character U+0007"),
    ("second-document", OK + "---\n" + OK, 5, 1, "second document"),
    # --- keys --------------------------------------------------------------------------------------
    ("unknown-key-did-you-mean", OK + "tolerence: {atol: 1e-5}\n", 5, 1, "unknown key 'tolerence' (did you mean 'tolerance'?)"),
    ("unknown-input-key", "inputs:\n  x: {vaule: 1}\nnodes:\n  y: x\n", 2, 7, "unknown key 'vaule' (did you mean 'value'?)"),
    ("unknown-node-key", "inputs:\n  x: 1\nnodes:\n  y: {expr: x, atoll: 1}\n", 4, 16,
     "unknown key 'atoll' (did you mean 'atol'?)"),
    ("duplicate-top-key", OK + "inputs:\n  z: 1\n", 5, 1, "duplicate key 'inputs' (first given at line 1)"),
    ("duplicate-input", "inputs:\n  x: 1\n  x: 2\nnodes:\n  y: x\n", 3, 3, "duplicate key 'x' (first given at line 2)"),
    ("duplicate-bool-spellings", "inputs:\n  x: {value: 1, requires_grad: yes, requires_grad: true}\nnodes:\n  y: x\n",
     2, 37, "duplicate key 'requires_grad'"),
    ("missing-inputs", "nodes:\n  y: 1\n", 1, 1, "has no 'inputs'"),
    ("missing-nodes", "inputs:\n  x: 1\n", 1, 1, "has no 'nodes'"),
    ("empty-inputs", "inputs: {}\nnodes:\n  y: 1\n", 1, 9, "'inputs' is empty"),
    ("empty-nodes", "inputs:\n  x: 1\nnodes:\n", 3, 7, "'nodes' is empty"),
    ("inputs-not-a-mapping", "inputs: [1, 2]\nnodes:\n  y: 1\n", 1, 9, "'inputs' must be a mapping"),
    ("keyword-as-name", "inputs:\n  lambda: 1\nnodes:\n  y: 2 * 1\n", 2, 3, "Python keyword"),
    ("boolean-as-name", "inputs:\n  true: 1\nnodes:\n  y: 2\n", 2, 3, "quote the name"),  # YAML 1.2: on is a name
    ("name-clash", "inputs:\n  x: 1\nnodes:\n  x: x * 2\n", 4, 3, "'x' is both an input (line 2) and a node"),
    # --- expressions -------------------------------------------------------------------------------
    ("unknown-op-did-you-mean", "inputs:\n  x: 1\nnodes:\n  y: tnah(x)\n", 4, 6, "unknown op 'tnah' (did you mean 'tanh'?)"),
    ("wrong-arity", "inputs:\n  x: 1\nnodes:\n  y: tanh(x, x)\n", 4, 6, "tanh() takes 1 array argument(s)"),
    ("unknown-keyword", "inputs:\n  x: [1, 2]\nnodes:\n  y: sum(x, axs=0)\n", 4, 6, "no keyword 'axs'"),
    ("keyword-given-twice", "inputs:\n  x: [[1, 2]]\nnodes:\n  y: sum(x, axis=0, axis=0)\n", 4, 21,
     "keyword 'axis' is given twice"),
    ("keyword-wrong-type", "inputs:\n  x: [[1, 2]]\nnodes:\n  y: sum(x, axis='a')\n", 4, 6, "keyword 'axis' must be an axis"),
    ("keyword-not-constant", "inputs:\n  x: [[1, 2]]\nnodes:\n  y: sum(x, axis=x)\n", 4, 18, "must be a constant"),
    ("axis-out-of-range", "inputs:\n  x: [[1, 2], [3, 4]]\nnodes:\n  y: sum(x, axis=5)\n", 4, 6,
     "axis=5 is out of range for an input with 2 dimension(s)"),
    ("keyword-out-of-range-second-line", "inputs:\n  x: [[1, 2], [3, 4]]\nnodes:\n  a: x * 2\n  y: mean(a, axis=-3)\n",
     5, 6, "axis=-3 is out of range"),
    ("undefined-name-did-you-mean", "inputs:\n  weight: 1\nnodes:\n  y: 2 * wieght\n", 4, 10,
     "uses 'wieght', which is neither an input nor an earlier node (did you mean 'weight'?)"),
    ("forward-reference", "inputs:\n  x: 1\nnodes:\n  y: x * z\n  z: x + 1\n", 4, 10, "'z', which is defined later"),
    ("self-reference", "inputs:\n  x: 1\nnodes:\n  y: x + y\n", 4, 10, "node 'y' refers to itself"),
    ("invalid-syntax", "inputs:\n  x: 1\nnodes:\n  y: \"x +* 2\"\n", 4, None, "invalid expression 'x +* 2'"),
    ("attribute-access", "inputs:\n  x: 1\nnodes:\n  y: x.real\n", 4, 6, "attribute access is not allowed"),
    ("comparison", "inputs:\n  x: 1\nnodes:\n  y: \"x < 1\"\n", 4, 7, "a comparison is allowed only as the condition of where"),
    ("string-constant", "inputs:\n  x: 1\nnodes:\n  y: \"x * 'a'\"\n", 4, 11, "is not a number"),
    ("number-too-large", "inputs:\n  x: 1\nnodes:\n  y: x * 1e999\n", 4, 10, "out of the float64 range"),
    ("node-not-a-string", "inputs:\n  x: 1\nnodes:\n  y: [x]\n", 4, 6, "must be an expression string"),
    ("node-empty-expression", "inputs:\n  x: 1\nnodes:\n  y: \"\"\n", 4, 6, "empty expression"),
    ("node-mapping-without-expr", "inputs:\n  x: 1\nnodes:\n  y: {atol: 1}\n", 4, 6, "has no 'expr'"),
    ("expression-nested-too-deep", "inputs:\n  x: 1\nnodes:\n  y: \"" + "tanh(" * 300 + "x" + ")" * 300 + "\"\n",
     4, None, "split it into several nodes"),
    ("expression-operators-too-deep", "inputs:\n  x: 1\nnodes:\n  y: \"" + "-" * 300 + "x\"\n", 4, None,
     "more than 200 deep; split it into several nodes"),
    # --- input values ------------------------------------------------------------------------------
    ("ragged-list", "inputs:\n  x: [[1, 2], [3]]\nnodes:\n  y: sum(x)\n", 2, 15, "ragged: element 1 has shape [1]"),
    ("string-in-list", "inputs:\n  x: [1, two, 3]\nnodes:\n  y: sum(x)\n", 2, 10, "element 1 is the string 'two', not a number"),
    ("string-as-input", "inputs:\n  x: hello\nnodes:\n  y: x\n", 2, 6, "must be a number or a nested list of numbers"),
    ("null-input", "inputs:\n  x:\nnodes:\n  y: x\n", 2, None, "got nothing (null)"),
    ("nan-input", "inputs:\n  x: [1.0, .nan]\nnodes:\n  y: sum(x)\n", 2, 6, "holds nan at index [1]: inputs must be finite"),
    ("inf-input", "inputs:\n  x: {value: [[1, 2], [3, .inf]]}\nnodes:\n  y: sum(x)\n", 2, 6, "holds inf at index [1, 1]"),
    ("negative-shape", "inputs:\n  x: {shape: [3, -1], init: zeros}\nnodes:\n  y: sum(x)\n", 2, 14, "negative dimension"),
    ("absurd-shape", "inputs:\n  x: {shape: [100000, 100000], init: normal}\nnodes:\n  y: sum(x)\n", 2, 14,
     "10,000,000,000 elements (~74.5 GiB in float64); the limit is 20,000,000 elements"),
    ("absurd-float-shape", "inputs:\n  x: {shape: [1e12], init: zeros}\nnodes:\n  y: sum(x)\n", 2, 14, "the limit is 20,000,000"),
    ("non-integer-shape", "inputs:\n  x: {shape: [2.5], init: zeros}\nnodes:\n  y: sum(x)\n", 2, 14,
     "must be a list of integers"),
    ("shape-without-init", "inputs:\n  x: {shape: [2]}\nnodes:\n  y: sum(x)\n", 2, 6, "shape: needs init:"),
    ("unknown-init", "inputs:\n  x: {shape: [2], init: gaussian}\nnodes:\n  y: sum(x)\n", 2, 25, "'init' must be one of"),
    ("two-value-sources", "inputs:\n  x: {value: 1, file: x.npy}\nnodes:\n  y: x\n", 2, 6,
     "exactly one of value:, file: or shape:"),
    ("no-value-source", "inputs:\n  x: {dtype: float64}\nnodes:\n  y: x\n", 2, 6, "got none"),
    ("missing-data-file", "inputs:\n  x: {file: missing.npy}\nnodes:\n  y: sum(x)\n", 2, 13, "data file 'missing.npy' not found"),
    ("bad-data-file-suffix", "inputs:\n  x: {file: data.txt}\nnodes:\n  y: sum(x)\n", 2, 13, "must be .npy or .csv"),
    ("input-dtype-float16", "inputs:\n  x: {value: 1, dtype: float16}\nnodes:\n  y: x\n", 2, 24, "'dtype' must be one of"),
    ("int-input-not-integer", "inputs:\n  x: {value: 1.5, dtype: int64}\nnodes:\n  y: x\n", 2, 6,
     "int64 but holds non-integer values"),
    ("uniform-range-too-wide", "inputs:\n  x: {shape: [3], init: uniform, low: -1e308, high: 1e308}\nnodes:\n  y: sum(x)\n",
     2, 6, "wider than float64 holds"),
    ("beyond-float32", "inputs:\n  x: {value: [1.0, 1e300], dtype: float32}\nnodes:\n  y: sum(x)\n", 2, 6,
     "holds 1e+300 at index [1], beyond float32's range"),
    ("infinite-constant-node", "inputs:\n  x: 1\nnodes:\n  c: 1e400\n  y: x * c\n", 4, 6, "constants must be finite"),
    ("huge-integer-literal", "inputs:\n  x: " + "9" * 5000 + "\nnodes:\n  y: x\n", 2, 6, "5,000 digits is out of range"),
    # --- settings ----------------------------------------------------------------------------------
    ("bad-output-did-you-mean", OK + "output: yy\n", 5, 9, "'output' names 'yy', which is not a node (did you mean 'y'?)"),
    ("output-names-an-input", OK + "output: x\n", 5, 9, "it is an input"),
    ("output-not-a-string", OK + "output: [y]\n", 5, 9, "'output' must name a node, got a list"),
    ("negative-atol", OK + "tolerance: {atol: -1}\n", 5, 19, "'atol' must be >= 0, got -1"),
    ("string-rtol", OK + "tolerance: {rtol: small}\n", 5, 19, "'rtol' must be a number, got the string 'small'"),
    ("tolerance-not-mapping", OK + "tolerance: 1e-3\n", 5, 12, "'tolerance' must be a mapping"),
    ("unknown-tolerance-key", OK + "tolerance: {abs: 1}\n", 5, 13, "unknown key 'abs'"),
    ("bad-method-did-you-mean", OK + "numeric: {method: centrl}\n", 5, 19, "(did you mean 'central'?)"),
    ("bad-method", OK + "numeric: {method: foo}\n", 5, 19, "'method' must be one of central"),
    ("zero-eps", OK + "numeric: {eps: 0}\n", 5, 16, "'eps' must be > 0"),
    ("dtype-float16", "dtype: float16\n" + OK, 1, 8, "'dtype' must be one of float64, float32"),
    ("negative-seed", "seed: -1\n" + OK, 1, 7, "'seed' must be >= 0"),
    ("huge-seed", "seed: 99999999999999999999999\n" + OK, 1, 7, "'seed' is too large"),
    ("expect-unknown-node", OK + "expect: {grad: {q: 1.0}}\n", 5, 17, "expect grad: 'q' is neither an input nor a node"),
    ("expect-not-a-number", OK + "expect: {output: four}\n", 5, 18, "expect output must be a number"),
    ("custom-op-not-a-reference", OK + "ops: {swish: swish}\n", 5, 14, "must be given as \"module:attribute\""),
    ("custom-op-missing-module", OK + "ops: {swish: \"no_such_module_xyz:Swish\"}\n", 5, 14,
     "module 'no_such_module_xyz' not found"),
    ("custom-op-dunder", OK + "ops: {swish: \"os:__builtins__\"}\n", 5, 14, "dotted Python names"),
    ("yaml-python-tag", "inputs:\n  x: !!python/object/apply:os.getcwd []\nnodes:\n  y: x\n", 2, 6, "is not allowed"),
    # --- evaluation --------------------------------------------------------------------------------
    ("broadcast-mismatch", "inputs:\n  a: [1.0, 2.0, 3.0]\n  b: [1.0, 2.0]\nnodes:\n  y: sum(a * b)\n", 5, 10,
     "node 'y/mul#1' (a * b): shapes (3,), (2,) do not broadcast together"),
    ("matmul-mismatch", "inputs:\n  a: [[1.0, 2.0, 3.0]]\n  b: [[1.0, 2.0]]\nnodes:\n  y: sum(a @ b)\n", 5, 10,
     "shapes (1, 3) and (1, 2)"),
    ("broadcast-too-large", "inputs:\n  a: {shape: [100000, 1], init: ones}\n  b: {shape: [1, 100000], init: ones}\n"
     "nodes:\n  y: sum(a * b)\n", 5, 10, "would have shape (100000, 100000), 10,000,000,000 elements"),
    ("no-differentiable-path", "inputs:\n  x: 1.0\n  w: 2.0\nnodes:\n  y: x * 3\n", 3, 3,
     "input 'w' has no path to the output 'y'"),
    ("nan-in-forward", "inputs:\n  x: [1.0, -1.0, 2.0]\nnodes:\n  h: x * 2\n  y: sum(log(h))\n", 5, 10,
     "node 'y/log#1' (log: log(h)) produced nan at index [1] from log(-2)"),
    ("inf-in-forward", "inputs:\n  x: [1.0, 0.0]\nnodes:\n  y: sum(1 / x)\n", 4, 10, "produced inf at index [1]"),
    ("float32-overflow", "dtype: float32\ninputs:\n  x: 100.0\nnodes:\n  y: exp(x)\n", 5, 6,
     "produced inf from exp(100) in the float32 forward pass"),
    ("index-out-of-range", "inputs:\n  x: [1.0, 2.0]\nnodes:\n  y: x[5]\n", 4, 6,
     "index [5] does not fit an array of shape (2,)"),
]


def run(tmp_path, content, name="spec.yaml"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path, CliRunner().invoke(main, ["run", str(path)])


@pytest.mark.parametrize("content, line, column, fragment", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_error_class_is_one_located_message(tmp_path, content, line, column, fragment):
    path, result = run(tmp_path, content)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [row for row in result.stderr.splitlines() if f"{path}" in row and ": error:" in row]
    assert len(errors) == 1, result.stderr
    where = f"{path}:{line}:" + (f"{column}:" if column is not None else "")
    assert errors[0].startswith(where), f"expected {where}\n got {errors[0]}"
    assert fragment in errors[0], errors[0]


def test_case_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def test_a_good_spec_passes(tmp_path):
    path, result = run(tmp_path, OK)
    assert result.exit_code == 0, result.output


def test_bad_data_file_contents(tmp_path):
    (tmp_path / "bad.csv").write_text("1,2\n3\n")
    (tmp_path / "obj.npy").write_bytes(b"not really an npy file")
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan]))
    for file_name, fragment in (("bad.csv", "cannot read 'bad.csv'"), ("obj.npy", "cannot read 'obj.npy'"),
                                ("nan.npy", "holds nan at index [1]")):
        path, result = run(tmp_path, f"inputs:\n  x: {{file: {file_name}}}\nnodes:\n  y: sum(x)\n",
                              name=f"spec_{file_name.replace('.', '_')}.yaml")
        assert result.exit_code == 2, result.output
        assert f"{path}:2:" in result.stderr and fragment in result.stderr, result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize("module, fragment", [
    ("import sys\nsys.exit(0)\n", "called exit(0)"),
    ("raise RuntimeError('broken at import')\n", "RuntimeError: broken at import"),
    ("class Op:\n    def __init__(self):\n        raise ValueError('no')\n", "ValueError: no"),
    ("import sys\nclass Op:\n    def __init__(self):\n        sys.exit(3)\n", "called exit(3)"),
    ("def Op(x):\n    return x\n", "has no forward and no vjp method"),
    ("Op = 42\n", "has no forward and no vjp method"),
    ("class Other:\n    pass\n", "has no attribute 'Op'"),
    ("class Op:\n    def forward(self, x):\n        return 'text'\n    def vjp(self, g, out, x):\n        return (g,)\n",
     "data, not numbers"),
    ("class Op:\n    def forward(self, x):\n        return None\n    def vjp(self, g, out, x):\n        return (g,)\n",
     "data, not numbers"),
    ("class Op:\n    def forward(self, x):\n        return [[1.0], [2.0, 3.0]]\n    def vjp(self, g, out, x):\n"
     "        return (g,)\n", "raised ValueError"),
    ("import sys\nclass Op:\n    def forward(self, x):\n        sys.exit(0)\n    def vjp(self, g, out, x):\n"
     "        return (g,)\n", "called exit(0)"),
    ("import numpy as np\nclass Op:\n    def forward(self, x):\n        return np.log(x - 10)\n"
     "    def vjp(self, g, out, x):\n        return (g / (x - 10),)\n", "produced nan at index [0]"),
], ids=["exit-at-import", "raise-at-import", "constructor-raises", "constructor-exits", "function-not-op",
        "number-not-op", "missing-attribute", "forward-returns-string", "forward-returns-none",
        "forward-returns-ragged-list", "forward-exits", "forward-nan"])
def test_custom_op_faults(tmp_path, module, fragment):
    (tmp_path / "badop.py").write_text(module)
    spec = "inputs:\n  x: [1.0, 2.0]\nops:\n  myop: \"badop:Op\"\nnodes:\n  y: sum(myop(x))\n"
    path, result = run(tmp_path, spec)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [row for row in result.stderr.splitlines() if ": error:" in row]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert errors[0].startswith(f"{path}:4:9:") or errors[0].startswith(f"{path}:6:10:"), errors[0]


def test_a_faulty_spec_among_good_ones_is_counted_and_the_others_run(tmp_path):
    (tmp_path / "a_good.yaml").write_text(OK)
    (tmp_path / "b_bad.yaml").write_text("inputs:\n  x: 1\nnodes:\n  y: tnah(x)\n")
    (tmp_path / "c_good.yaml").write_text("inputs:\n  w: [1.0, 2.0]\nnodes:\n  y: sum(tanh(w))\n")
    result = CliRunner().invoke(main, ["run", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{tmp_path / 'b_bad.yaml'}:4:6: error: node 'y': unknown op 'tnah'" in result.stderr
    assert "2 passed" in result.output and "1 error" in result.output, result.output


def test_a_faulty_spec_in_json_report(tmp_path):
    import json

    (tmp_path / "a_good.yaml").write_text(OK)
    (tmp_path / "b_bad.yaml").write_text("inputs:\n  x: [1.0, -1.0]\nnodes:\n  y: sum(sqrt(x))\n")
    result = CliRunner().invoke(main, ["run", "--format", "json", str(tmp_path)])
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    statuses = {spec["name"]: spec["status"] for spec in report["specs"]}
    assert statuses == {"a_good": "pass", "b_bad": "error"}
    error = report["specs"][1]["error"]
    assert (error["line"], error["column"]) == (4, 10) and "produced nan at index [1]" in error["message"]


def test_an_internal_error_is_one_clean_line(tmp_path, monkeypatch):
    """A bug anywhere below check_spec still ends as that spec's error, exit 2, no traceback."""
    import gradcheck.pipeline as pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    (tmp_path / "a.yaml").write_text(OK)
    (tmp_path / "b.yaml").write_text(OK)
    calls = []
    original = pipeline.check_graph

    def sometimes_broken(graph, options=None):
        calls.append(graph.spec.path)
        if graph.spec.path.endswith("a.yaml"):
            return broken()
        return original(graph, options) if options is not None else original(graph)

    monkeypatch.setattr(pipeline, "check_graph", sometimes_broken)
    result = CliRunner().invoke(main, ["run", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "internal error: ZeroDivisionError: a bug (please report)" in result.stderr
    assert len(calls) == 2 and "1 passed" in result.output


@pytest.mark.parametrize("spec, module", [
    ("inputs:\n  x: 1\nnodes:\n  y: |\n    x +\n    * 2\n", None),
    ("inputs:\n  x: [1.0]\nops:\n  myop: \"multiline:Op\"\nnodes:\n  y: sum(myop(x))\n",
     "class Op:\n    def forward(self, x):\n        raise ValueError('line one\\nline two\\n\\nline four')\n"
     "    def vjp(self, g, out, x):\n        return (g,)\n"),
], ids=["block-scalar-expression", "custom-op-multiline-exception"])
def test_every_message_is_one_line(tmp_path, spec, module):
    if module:
        (tmp_path / "multiline.py").write_text(module)
    path, result = run(tmp_path, spec)
    assert result.exit_code == 2, result.output
    lines = [row for row in result.stderr.splitlines() if row.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{path}:"), result.stderr


def test_long_user_text_is_clipped_in_messages(tmp_path):
    spec = "inputs:\n  x: 1\n  junk: \"" + "a" * 1_000_000 + "\"\nnodes:\n  y: x\n"
    path, result = run(tmp_path, spec)
    assert result.exit_code == 2
    assert f"{path}:3:9:" in result.stderr
    assert len(result.stderr) < 2000


def test_an_undefined_name_is_not_matched_to_an_automatic_node_name(tmp_path):
    # sin(x) inside y becomes the automatic node 'y/sin#1', a name no expression can write
    path, result = run(tmp_path, "inputs:\n  x: 1.0\nnodes:\n  y: sin(x) * 2\n  z: ysin1 + 1\n")
    assert result.exit_code == 2, result.output
    assert "'ysin1'" in result.stderr
    assert "y/sin#1" not in result.stderr
