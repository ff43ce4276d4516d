"""The JSON Schema of the spec format (version 1), printed by `gradcheck schema`."""
from __future__ import annotations

from .spec import FLOAT_DTYPES, INITIALISERS, INPUT_DTYPES, METHODS, TOP_LEVEL_KEYS

IDENTIFIER = "^[A-Za-z_][A-Za-z0-9_]*$"

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


def spec_schema() -> dict:
    number = {"type": "number"}
    nested = {"oneOf": [number, {"type": "array", "items": {"$ref": "#/$defs/nested"}}]}
    tolerance = {"type": "object", "additionalProperties": False,
                 "properties": {"atol": {"type": "number", "minimum": 0}, "rtol": {"type": "number", "minimum": 0}}}
    input_mapping = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "value": {"$ref": "#/$defs/nested"},
            "file": {"type": "string", "pattern": r"\.(npy|csv)$"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "init": {"enum": list(INITIALISERS)},
            "mean": number, "std": {"type": "number", "minimum": 0}, "low": number, "high": number,
            "dtype": {"enum": list(INPUT_DTYPES)},
            "requires_grad": {"type": "boolean"},
        },
        "oneOf": [{"required": ["value"], "not": {"required": ["shape"]}}, {"required": ["file"]},
                  {"required": ["shape", "init"]}],
    }
    node_mapping = {"type": "object", "additionalProperties": False, "required": ["expr"],
                    "properties": {"expr": {"type": "string"}, "atol": {"type": "number", "minimum": 0},
                                   "rtol": {"type": "number", "minimum": 0}, "check": {"type": "boolean"}}}
    reference = {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"}
    module = {"type": "string", "pattern": r"^[A-Za-z_][\w.]*$"}
    names = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    field = {"reference": reference, "names": names, "name": {"type": "string"}, "mapping": {"type": "object"},
             "upstream": {"oneOf": [{"type": "string"}, {"type": "object", "required": ["op"]}]}}
    conventions = [{"type": "object", "additionalProperties": False, "required": list(required),
                    "properties": {key: field[kind] for key, kind in keys.items()}}
                   for required, keys in CONVENTION_SCHEMAS]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gradcheck.dev/schema/spec-v1.json",
        "title": "gradcheck spec (format version 1)",
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs", "nodes"],
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "dtype": {"enum": list(FLOAT_DTYPES), "default": "float64"},
            "seed": {"type": "integer", "minimum": 0, "default": 0},
            "inputs": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": IDENTIFIER},
                       "additionalProperties": {"oneOf": [{"$ref": "#/$defs/nested"}, input_mapping]}},
            "nodes": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": IDENTIFIER},
                      "additionalProperties": {"oneOf": [{"type": "string"}, number, node_mapping]}},
            "output": {"type": "string", "pattern": IDENTIFIER},
            "tolerance": tolerance,
            "numeric": {"type": "object", "additionalProperties": False,
                        "properties": {"method": {"enum": list(METHODS), "default": "central"},
                                       "eps": {"oneOf": [{"const": "auto"}, {"type": "number", "exclusiveMinimum": 0}]}}},
            "ops": {"type": "object", "propertyNames": {"pattern": IDENTIFIER},
                    "additionalProperties": {"oneOf": [reference, *conventions]}},
            "requires": {"oneOf": [module, {"type": "array", "items": module}]},
            "expect": {"type": "object", "additionalProperties": False,
                       "properties": {"output": {"$ref": "#/$defs/nested"},
                                      "grad": {"type": "object", "additionalProperties": {"$ref": "#/$defs/nested"}},
                                      "values": {"type": "object", "additionalProperties": {"$ref": "#/$defs/nested"}},
                                      "atol": {"type": "number", "minimum": 0},
                                      "rtol": {"type": "number", "minimum": 0}}},
        },
        "$defs": {"nested": nested},
    }


assert set(spec_schema()["properties"]) == set(TOP_LEVEL_KEYS)
