"""The JSON Schemas of the spec format (version 1) and of the JSON report, built from the loader's own tables.

Every key, choice, default and per-initialiser parameter comes from gradcheck.spec, the module that
reads specs, so the schema editors validate with and the loader cannot drift apart; what a JSON
Schema cannot say (an expression's names, a data file's existence, ragged lists, low < high) the
loader alone checks.  Plain scalars are read by the YAML 1.2 core schema in both (``1e-9`` is a
number, ``no`` is text).  The schemas ship as files (``gradcheck/schemas/``, package data) whose
``$id`` is their path in the repository; `gradcheck schema` prints them.
"""
from __future__ import annotations

import keyword
from pathlib import Path
from typing import cast

from .spec import (
    DATA_FILE_SUFFIXES,
    EXPECT_KEYS,
    FLOAT_DTYPES,
    INITIALISERS,
    INPUT_DTYPES,
    INPUT_KEYS,
    MAX_NAME_CHARS,
    METHODS,
    NODE_KEYS,
    NUMERIC_KEYS,
    SHAPE_ONLY_KEYS,
    TOLERANCE_KEYS,
    TOP_LEVEL_KEYS,
)

SCHEMA_FOLDER = Path(__file__).resolve().parent / "schemas"
SPEC_SCHEMA_FILE = "spec-v1.json"
REPORT_SCHEMA_FILE = "report-v1.json"
SPEC_SCHEMA_ID = f"gradcheck/schemas/{SPEC_SCHEMA_FILE}"      # the file's path in the repository
REPORT_SCHEMA_ID = f"gradcheck/schemas/{REPORT_SCHEMA_FILE}"
# a Python identifier, as far as an ECMA-262 pattern can say it: ASCII letters, digits and _ plus any letter
# beyond Latin-1's symbols (the loader refines: str.isidentifier, no keyword)
IDENTIFIER = r"^[A-Za-z_\u00aa-\uffff][0-9A-Za-z_\u00aa-\uffff]*$"
DOTTED = r"(?!__)[A-Za-z_]\w*(?:\.(?!__)[A-Za-z_]\w*)*"
MAX_INT64 = 2**63 - 1


# a plain key spelled like these is a boolean or null to YAML 1.2, which the loader refuses as a name; an editor
# sees its text, so the schema refuses the text (a quoted "true" is the one name the loader takes and this refuses)
YAML_NON_TEXT_KEYS = ("true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~")


def _name() -> dict:
    return {"type": "string", "pattern": IDENTIFIER, "maxLength": MAX_NAME_CHARS,
            "not": {"enum": [*keyword.kwlist, *YAML_NON_TEXT_KEYS]}}


def _nullable(schema: dict) -> dict:
    """The loader reads an empty mapping (``tolerance:`` with nothing after it) as {}."""
    return {"anyOf": [{"type": "null"}, schema]}


def _non_negative() -> dict:
    return {"type": "number", "minimum": 0}


def _keys(schema: dict, allowed) -> dict:
    return {"type": "object", "additionalProperties": False, **schema,
            "properties": {key: schema.get("properties", {}).get(key, {}) for key in allowed}}


def _tolerance() -> dict:
    return _keys({"properties": {"atol": _non_negative(), "rtol": _non_negative()}}, TOLERANCE_KEYS)


def _input_mapping() -> dict:
    """value:, file: or shape: with init: (and that initialiser's parameters only), dtype:, requires_grad:."""
    suffixes = "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in suffix[1:]) for suffix in DATA_FILE_SUFFIXES)
    properties = {
        "value": {"$ref": "#/$defs/array"},
        "file": {"type": "string", "pattern": rf"\.(?:{suffixes})$"},
        "shape": {"anyOf": [{"type": "integer", "minimum": 0},
                            {"type": "array", "maxItems": 32, "items": {"type": "integer", "minimum": 0}}]},
        "init": {"enum": list(INITIALISERS)},
        "dtype": {"enum": list(INPUT_DTYPES)},
        "requires_grad": {"type": "boolean"},
        "mean": {"type": "number"}, "std": _non_negative(), "low": {"type": "number"}, "high": {"type": "number"},
    }

    def without(*keys) -> dict:
        return {"not": {"anyOf": [{"required": [key]} for key in keys]}}

    sources = [
        {"required": ["value"], "allOf": [without("file", "shape", *SHAPE_ONLY_KEYS)]},
        {"required": ["file"], "allOf": [without("value", "shape", *SHAPE_ONLY_KEYS)]},
        {"required": ["shape", "init"], "allOf": [without("file")]},
    ]
    per_init = []
    for init, defaults in INITIALISERS.items():
        parameters = cast("dict[str, object]", defaults)  # name -> default (None: required)
        allowed = [key for key in INPUT_KEYS if key not in SHAPE_ONLY_KEYS and key != "value"]
        allowed += ["init", *parameters]
        then: dict = {"propertyNames": {"enum": allowed}}
        required = [key for key, default in parameters.items() if default is None]
        if required:
            then["required"] = required
        if init == "constant":
            then["properties"] = {"value": {"type": "number"}}
        if init == "randint":
            then["properties"] = {"low": {"type": "integer"}, "high": {"type": "integer"}}
        per_init.append({"if": {"required": ["init"], "properties": {"init": {"const": init}}}, "then": then})
    return {**_keys({"properties": properties}, INPUT_KEYS), "anyOf": sources, "allOf": per_init}


def _node_entry() -> dict:
    expression = {"anyOf": [{"type": "string", "pattern": r"\S"}, {"type": "number"}]}
    mapping = _keys({"required": ["expr"],
                     "properties": {"expr": expression, "atol": _non_negative(), "rtol": _non_negative(),
                                    "check": {"type": "boolean"}}}, NODE_KEYS)
    return {"anyOf": [expression, mapping]}


def _expect() -> dict:
    pinned = _nullable({"type": "object", "additionalProperties": {"$ref": "#/$defs/array"}})
    return _keys({"properties": {"output": {"$ref": "#/$defs/array"}, "grad": pinned, "values": pinned,
                                 "atol": _non_negative(), "rtol": _non_negative()}}, EXPECT_KEYS)


# the conventions of gradcheck.ops.conventions (which the spec layer cannot import): required keys, every key
CONVENTION_SCHEMAS = (
    (("forward", "backward"), {"forward": "reference", "backward": "reference", "constants": "names"}),
    (("forward", "gradient"), {"forward": "reference", "gradient": "reference", "wrt": "name", "upstream": "upstream",
                               "constants": "names"}),
    (("layer",), {"layer": "reference", "init": "mapping", "params": "names", "store": "name", "inject": "reference",
                  "grads": "names", "forward": "name", "backward": "name", "constants": "names"}),
    (("torch",), {"torch": "reference", "constants": "names"}),
    (("jax",), {"jax": "reference", "constants": "names"}),
)


def _reference() -> dict:
    return {"type": "string", "pattern": f"^{DOTTED}:{DOTTED}$"}


def _module() -> dict:
    return {"type": "string", "pattern": f"^{DOTTED}$"}


def _conventions() -> list[dict]:
    """A custom op given as a convention's mapping (docs/custom-ops.md): one schema per convention."""
    names = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    field = {"reference": _reference(), "names": names, "name": {"type": "string"}, "mapping": {"type": "object"},
             "upstream": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["op"]}]}}
    return [{"type": "object", "additionalProperties": False, "required": list(required),
             "properties": {key: field[kind] for key, kind in keys.items()}} for required, keys in CONVENTION_SCHEMAS]


def spec_schema() -> dict:
    numeric = _keys({"properties": {"method": {"enum": list(METHODS), "default": "central"},
                                    "eps": {"anyOf": [{"const": "auto"}, {"type": "number", "exclusiveMinimum": 0}]}}},
                    NUMERIC_KEYS)
    text = {"type": ["string", "number"]}  # a number is read as its text (name: 42)
    properties = {
        "name": {**text, "description": "defaults to the file's stem"},
        "description": {**text, "description": "free text, shown in reports"},
        "dtype": {"enum": list(FLOAT_DTYPES), "default": "float64"},
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_INT64, "default": 0},
        "inputs": {"type": "object", "minProperties": 1, "propertyNames": _name(),
                   "additionalProperties": {"anyOf": [{"$ref": "#/$defs/array"}, _input_mapping()]}},
        "nodes": {"type": "object", "minProperties": 1, "propertyNames": _name(), "additionalProperties": _node_entry()},
        "output": {"type": "string", "description": "the node that is differentiated (default: the last)"},
        "tolerance": _nullable(_tolerance()),
        "numeric": _nullable(numeric),
        "ops": _nullable({"type": "object", "propertyNames": _name(),
                          "additionalProperties": {"anyOf": [_reference(), *_conventions()]}}),
        "expect": _nullable(_expect()),
        "requires": {"description": "modules the spec needs; where one is missing the spec is skipped",
                     "anyOf": [_module(), {"type": "array", "items": _module()}]},
    }
    assert tuple(properties) == TOP_LEVEL_KEYS
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SPEC_SCHEMA_ID,
        "title": "gradcheck spec (format version 1)",
        "description": "Read with the YAML 1.2 core schema: 1e-9 is a number, yes/no/on/off are text.",
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs", "nodes"],
        "properties": properties,
        "$defs": {"array": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"$ref": "#/$defs/array"}}]}},
    }


def report_schema() -> dict:
    """The JSON report (`gradcheck run --format json`), version 1."""
    number = {"type": ["number", "null"]}  # null: not finite, or not measured
    array = {"anyOf": [{"type": ["number", "null"]}, {"type": "array", "items": {"$ref": "#/$defs/array"}}]}
    status = {"enum": ["pass", "fail", "kink", "inconclusive", "skip", "error"]}
    index = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    line = {"type": ["integer", "null"], "minimum": 1}
    node = {"type": "object",
            "required": ["name", "op", "parent", "shape", "status", "max_abs_error", "max_rel_error", "worst_index"],
            "properties": {"name": {"type": "string"}, "op": {"type": "string"}, "parent": {"type": ["string", "null"]},
                           "shape": index, "status": status, "max_abs_error": number, "max_rel_error": number,
                           "worst_index": index, "worst_analytic": number, "worst_numeric": number,
                           "failing_elements": {"type": "integer", "minimum": 0},
                           "kink_elements": {"type": "integer", "minimum": 0},
                           "checked": {"enum": ["full", "probes", "none"]}, "atol": number, "rtol": number,
                           "message": {"type": ["string", "null"]}, "expr": {"type": "string"}, "line": line,
                           "analytic": {"$ref": "#/$defs/array"}, "numeric": {"$ref": "#/$defs/array"},
                           "numeric_error": {"$ref": "#/$defs/array"}}}
    suspect = {"type": "object", "required": ["node", "op", "argument"],
               "properties": {"node": {"type": "string"}, "op": {"type": "string"},
                              "argument": {"type": "integer", "minimum": 0}, "argument_node": {"type": "string"},
                              "message": {"type": ["string", "null"]}}}
    spec = {"type": "object", "required": ["path", "name", "status", "error", "output", "nodes", "suspects"],
            "properties": {
                "path": {"type": "string"}, "name": {"type": "string"}, "status": {"enum": ["pass", "fail", "error", "skip"]},
                "error": {"anyOf": [{"type": "null"},
                                    {"type": "object", "required": ["message", "line", "column"],
                                     "properties": {"message": {"type": "string"}, "line": line, "column": line}}]},
                "output": {"anyOf": [{"type": "null"},
                                     {"type": "object", "required": ["name", "value"],
                                      "properties": {"name": {"type": "string"}, "value": {"$ref": "#/$defs/array"}}}]},
                "nodes": {"type": "array", "items": node},
                "suspects": {"type": "array", "items": suspect},
                "jvp": {"type": "array", "items": {"type": "object", "required": ["node", "op", "argument", "status"],
                                                   "properties": {"status": status, "line": line}}},
                "expect": {"type": "array", "items": {"type": "object", "required": ["what", "ok"],
                                                      "properties": {"what": {"type": "string"}, "ok": {"type": "boolean"},
                                                                     "line": line}}},
                "seconds": {"type": "number", "minimum": 0}}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": REPORT_SCHEMA_ID,
        "title": "gradcheck JSON report (version 1)",
        "type": "object",
        "required": ["version", "ok", "specs"],
        "properties": {"version": {"const": 1}, "ok": {"type": "boolean"}, "specs": {"type": "array", "items": spec}},
        "$defs": {"array": array},
    }


SCHEMAS = {SPEC_SCHEMA_FILE: spec_schema, REPORT_SCHEMA_FILE: report_schema}


def schema_text(file_name: str) -> str:
    """The text of a shipped schema file, as `gradcheck schema` prints it and the repository holds it."""
    import json

    return json.dumps(SCHEMAS[file_name](), indent=2, ensure_ascii=False) + "\n"
