"""Issue 11, point 5: one spec format for editors and the loader.

- the JSON Schema and the loader give the same answer on every accepted and refused case of the loader's
  tests (tests/test_spec_errors.py), the shipped specs and the cases the issue names; where they may differ
  is listed once (what no JSON Schema can say: ragged lists, missing data files, names of nodes);
- both read YAML by the 1.2 core schema: 1e-9 is a number, no/on/yes are text;
- the schema files are shipped (repository and package data), equal to what `gradcheck schema` prints, with
  a $id that is their path in the repository; the JSON report validates against its schema.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck.cli import main
from gradcheck.errors import SpecError
from gradcheck.schema import REPORT_SCHEMA_FILE, SCHEMA_FOLDER, SCHEMAS, SPEC_SCHEMA_FILE, schema_text, spec_schema
from gradcheck.spec import parse_spec
from gradcheck.yamlsource import LocatedList, LocatedMap, load_yaml

from .test_spec_errors import CASES, OK

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "specs").rglob("*.yaml"))

# refusals no JSON Schema can state: they depend on values together, on files, or on other parts of the spec
BEYOND_A_SCHEMA = ("ragged", "not found", "must be finite", "inputs must be finite", "non-integer values",
                   "beyond float32", "wider than float64", "the limit is", "low < high", "is both an input",
                   "which is not a node", "neither an input nor a node", "cannot open", "cannot read")

# what the issue found the two disagreeing on, and the YAML 1.2 spellings: (spec text, accepted?)
ISSUE_CASES = [
    (OK + "tolerance: {atol: 1e-9, rtol: 1E-3}\n", True),          # 1e-9: a number in both
    ("inputs:\n  x: 1\nnodes:\n  y: {expr: x * x, check: no}\n", False),   # no: text, and check wants a boolean
    ("inputs:\n  x: 1\nnodes:\n  y: {expr: x * x, check: false}\n", True),
    ("name: 42\n" + OK, True),                                     # a number is read as the name's text
    ("name: true\n" + OK, False),
    ("inputs:\n  x: {shape: [2], init: normal, low: 0}\nnodes:\n  y: sum(x)\n", False),   # normal takes mean/std
    ("inputs:\n  x: {shape: [2], init: normal, mean: 1, std: 2}\nnodes:\n  y: sum(x)\n", True),
    ("inputs:\n  x: {shape: [2], init: constant}\nnodes:\n  y: sum(x)\n", False),          # constant needs value
    ("inputs:\n  x: {shape: [2], init: constant, value: 3}\nnodes:\n  y: sum(x)\n", True),
    ("inputs:\n  x: {shape: [2], init: randint, low: 0}\nnodes:\n  y: sum(x)\n", False),   # randint needs high
    ("inputs:\n  x: {shape: 3, init: zeros}\nnodes:\n  y: sum(x)\n", True),                # a scalar shape
    ("inputs:\n  x: {value: [1, 2], init: zeros}\nnodes:\n  y: sum(x)\n", False),          # init goes with shape
    ("inputs:\n  on: 1\n  off: 2\nnodes:\n  y: on * off\n", True),            # YAML 1.2: on / off are names
    ("inputs:\n  x: 1\nnodes:\n  y: x\ntolerance:\n", True),                  # an empty mapping
    ("inputs:\n  x: 1\nnodes:\n  y: x\nseed: 0x10\n", True),
    ("inputs:\n  x: 1\nnodes:\n  y: x\nseed: 1.5\n", False),
    ("inputs:\n  x: 1\nnodes:\n  y: x\nnumeric: {eps: auto}\n", True),
    ("inputs:\n  x: 1\nnodes:\n  y: x\nops: {f: \"a.b:C\"}\n", True),
    ("inputs:\n  x: 1\nnodes:\n  y: x\nops: {f: \"a..b:C\"}\n", False),
    ("inputs:\n  \u03c9: 1\nnodes:\n  y: \u03c9 * 2\n", True),
    ("inputs:\n  x: {value: 1, requires_grad: yes}\nnodes:\n  y: x\n", False),  # yes: text
]


def as_json(value):
    """The document as a JSON instance (what an editor validates): mappings with text keys, lists, scalars."""
    if isinstance(value, LocatedMap):
        return {json.dumps(key) if not isinstance(key, str) else key: as_json(item) for key, item in value.items()}
    if isinstance(value, (LocatedList, list)):
        return [as_json(item) for item in value]
    return value


def loader_verdict(text: str, tmp_path: Path) -> tuple[bool, str]:
    document = load_yaml(text, "spec.yaml")
    try:
        parse_spec(document, "spec.yaml", tmp_path, "spec")
    except SpecError as error:
        return False, error.message
    return True, ""


def schema_verdict(text: str, validator) -> bool:
    return validator.is_valid(as_json(load_yaml(text, "spec.yaml")))


def corpus() -> list[tuple[str, str, bool | None]]:
    """(id, text, expected acceptance or None where only agreement is asserted)."""
    cases = [(f"shipped:{path.relative_to(ROOT)}", path.read_text(encoding="utf-8"), True) for path in SHIPPED]
    cases += [(f"errors:{case[0]}", case[1], None) for case in CASES if isinstance(case[1], str)]
    cases += [("errors:OK", OK, True)]
    cases += [(f"issue:{number}", text, accepted) for number, (text, accepted) in enumerate(ISSUE_CASES)]
    return cases


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def classify(text: str, tmp_path: Path, validator) -> str:
    """'yaml' (no document: both refuse, at the YAML), 'agree', 'beyond' (the loader alone refuses, by a rule
    listed in BEYOND_A_SCHEMA) or 'disagree'."""
    try:
        load_yaml(text, "spec.yaml")
    except SpecError:
        return "yaml"
    accepted, message = loader_verdict(text, tmp_path)
    valid = schema_verdict(text, validator)
    if accepted == valid:
        return "agree"
    if not accepted and valid and any(fragment in message for fragment in BEYOND_A_SCHEMA):
        return "beyond"
    return "disagree"


@pytest.mark.parametrize("case_id, text, expected", corpus(), ids=[case[0] for case in corpus()])
def test_schema_and_loader_give_the_same_answer(case_id, text, expected, tmp_path, validator):
    verdict = classify(text, tmp_path, validator)
    detail = loader_verdict(text, tmp_path) if verdict != "yaml" else None
    assert verdict != "disagree", (case_id, detail, schema_verdict(text, validator))
    if expected is not None and verdict != "yaml":
        assert loader_verdict(text, tmp_path)[0] is expected, (case_id, detail)
        assert schema_verdict(text, validator) is expected, case_id


def test_the_agreement_counts(tmp_path, validator):
    """Every case is counted; the ones the schema leaves to the loader are few and named."""
    counts: dict[str, list[str]] = {}
    for case_id, text, _ in corpus():
        counts.setdefault(classify(text, tmp_path, validator), []).append(case_id)
    assert "disagree" not in counts, counts["disagree"]
    assert len(counts["agree"]) >= len(SHIPPED) + len(ISSUE_CASES)
    assert set(counts.get("beyond", [])) <= {f"errors:{case[0]}" for case in CASES}


def test_the_one_name_the_schema_refuses_and_the_loader_takes(tmp_path, validator):
    """A quoted "true" is text to the loader; an editor sees the same text as a plain `true` (a boolean)."""
    text = 'inputs:\n  "true": 1\nnodes:\n  y: true * 2\n'
    assert loader_verdict(text, tmp_path)[0] and not schema_verdict(text, validator)


def test_the_agreement_check_can_fail(tmp_path, validator):
    """A schema that forgot a rule the loader has is caught: without 'check' being a boolean, `check: no` disagrees."""
    loose = spec_schema()
    node = loose["properties"]["nodes"]["additionalProperties"]["anyOf"][1]
    node["properties"]["check"] = {}
    text = "inputs:\n  x: 1\nnodes:\n  y: {expr: x * x, check: no}\n"
    assert classify(text, tmp_path, jsonschema.Draft202012Validator(loose)) == "disagree"
    assert classify(text, tmp_path, validator) == "agree"


def test_shipped_specs_validate_as_editors_read_them(validator):
    """YAML 1.2 (the editors' reading): every shipped spec is valid, its exponents numbers."""
    for path in SHIPPED:
        document = as_json(load_yaml(path.read_text(encoding="utf-8"), str(path)))
        errors = [error.message for error in validator.iter_errors(document)]
        assert not errors, (path, errors)


@pytest.mark.parametrize("text, value", [("1e-9", 1e-9), ("1E+3", 1000.0), ("-2.5e-3", -2.5e-3), (".5", 0.5),
                                         ("017", 17), ("0o17", 15), ("0x1f", 31), ("-.inf", -math.inf),
                                         ("true", True), ("False", False), ("no", "no"), ("on", "on"), ("yes", "yes"),
                                         ("off", "off"), ("~", None), ("null", None), ("1_000", "1_000"),
                                         ("2001-12-14", "2001-12-14"), ("0b101", "0b101"), ("1:20", "1:20")])
def test_plain_scalars_follow_yaml_1_2(text, value):
    read = load_yaml(f"key: {text}\n", "x.yaml")["key"]
    assert read == value and type(read) is type(value)


def test_no_is_text_so_check_no_is_refused_with_its_place(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("inputs:\n  x: 1\nnodes:\n  y: {expr: x * x, check: no}\n")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2
    assert f"{path}:4:" in result.stderr and "'check' must be true or false, got the string 'no'" in result.stderr


def test_the_schema_files_are_what_the_program_prints():
    for name in SCHEMAS:
        shipped = (SCHEMA_FOLDER / name).read_text(encoding="utf-8")
        assert shipped == schema_text(name), f"regenerate {name}: python -c 'from gradcheck.schema import ...'"
        assert json.loads(shipped)["$id"] == f"gradcheck/schemas/{name}"
        assert (ROOT / json.loads(shipped)["$id"]).is_file()  # the $id is the file's path in the repository
    assert CliRunner().invoke(main, ["schema"]).stdout == schema_text(SPEC_SCHEMA_FILE)
    assert CliRunner().invoke(main, ["schema", "--report"]).stdout == schema_text(REPORT_SCHEMA_FILE)


def test_the_schemas_are_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gradcheck"]
    assert any(Path("gradcheck").joinpath(name).match(f"gradcheck/{pattern}")
               for pattern in patterns for name in (f"schemas/{SPEC_SCHEMA_FILE}", f"schemas/{REPORT_SCHEMA_FILE}"))


@pytest.fixture(scope="module")
def report_validator():
    schema = json.loads((SCHEMA_FOLDER / REPORT_SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_json_report_follows_its_schema(tmp_path, report_validator):
    (tmp_path / "bad.yaml").write_text("inputs:\n  x: 1\nnodes:\n  y: x * q\n")
    (tmp_path / "kink.yaml").write_text("inputs:\n  x: [-1.0, 0.0, 2.0]\nnodes:\n  y: sum(relu(x))\n"
                                        "expect: {output: 5.0}\n")
    for args in (["run", str(ROOT / "specs"), "--format", "json", "--values"], ["run", str(tmp_path), "--format", "json"]):
        document = json.loads(CliRunner().invoke(main, args).stdout)
        errors = [f"{list(error.path)}: {error.message}" for error in report_validator.iter_errors(document)]
        assert not errors, errors[:5]


def test_the_report_schema_can_fail(report_validator):
    assert not report_validator.is_valid({"version": 1, "ok": "yes", "specs": []})
    assert not report_validator.is_valid({"version": 1, "ok": True, "specs": [{"path": "a", "name": "a",
                                                                                "status": "weird", "error": None,
                                                                                "output": None, "nodes": [],
                                                                                "suspects": []}]})
