"""--format json: the contract's report (section 3), plus extra fields a CI script can use."""
from __future__ import annotations

import json
import math

import numpy as np

from ..results import RunResult, SpecResult
from . import DEFAULT_OPTIONS, RenderOptions
from .common import precision_text


def finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def array_to_json(value):
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return finite_or_none(array)
    return _clean(array.tolist())


def _clean(value):
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def diagnosis_to_dict(diagnosis) -> dict | None:
    """{"kind", "detail", and the kind's numbers}: non-finite numbers become null."""
    if diagnosis is None:
        return None
    numbers = {key: finite_or_none(value) if isinstance(value, float) else value
               for key, value in diagnosis.numbers.items()}
    return {"kind": str(diagnosis.kind), "detail": diagnosis.detail, **numbers}


def source_to_dict(source) -> dict | None:
    if source is None:
        return None
    return {"file": source.file, "line": source.line, "rule": source.rule, "function": source.function}


def spec_to_dict(spec: SpecResult, options: RenderOptions) -> dict:
    nodes = []
    for node in spec.nodes:
        entry = {"name": node.name, "op": node.op, "parent": node.parent, "shape": list(node.shape),
                 "status": node.status, "max_abs_error": finite_or_none(node.max_abs_error),
                 "max_rel_error": finite_or_none(node.max_rel_error), "worst_index": list(node.worst_index),
                 "worst_analytic": finite_or_none(node.worst_analytic),
                 "worst_numeric": finite_or_none(node.worst_numeric),
                 "worst_numeric_error": finite_or_none(node.worst_numeric_error),
                 "failing_elements": node.failing, "kink_elements": node.kinks,
                 "inconclusive_elements": node.inconclusive, "checked": node.checked,
                 "elements": [{"index": list(e.index), "status": e.status, "analytic": finite_or_none(e.analytic),
                               "numeric": finite_or_none(e.numeric), "numeric_error": finite_or_none(e.numeric_error),
                               "right_slope": finite_or_none(e.right), "left_slope": finite_or_none(e.left)}
                              for e in node.elements],
                 "precision": node.precision,
                 "atol": node.atol, "rtol": node.rtol, "message": node.message, "expr": node.text,
                 "line": node.line}
        if options.values:
            entry["analytic"] = (array_to_json(node.analytic))
            entry["numeric"] = (array_to_json(node.numeric))
            entry["numeric_error"] = (array_to_json(node.numeric_error))
        nodes.append(entry)
    error = None
    if spec.error is not None:
        error = {"message": spec.error.message, "line": spec.error.line, "column": spec.error.column}
    output = None
    if spec.output_name is not None:
        output = {"name": spec.output_name, "value": (array_to_json(spec.output_value))}
    return {
        "path": spec.path, "name": spec.name, "status": spec.status, "error": error, "output": output,
        "nodes": nodes,
        "suspects": [{"node": s.node, "op": s.op, "argument": s.argument, "argument_node": s.argument_node,
                      "message": s.message, "diagnosis": diagnosis_to_dict(s.diagnosis),
                      "source": source_to_dict(s.source)} for s in spec.suspects],
        "jvp": [{"node": j.node, "op": j.op, "argument": j.argument, "argument_node": j.argument_node,
                 "status": j.status, "max_abs_error": finite_or_none(j.max_abs_error),
                 "max_rel_error": finite_or_none(j.max_rel_error), "worst_index": list(j.worst_index),
                 "worst_jvp": finite_or_none(j.worst_analytic), "worst_numeric": finite_or_none(j.worst_numeric),
                 "failing_elements": j.failing, "kink_elements": j.kinks, "message": j.message or None,
                 "line": j.line, "source": source_to_dict(j.source), "diagnosis": diagnosis_to_dict(j.diagnosis)}
                for j in spec.jvps],
        "taylor": [{"input": t.input, "status": t.status, "order": finite_or_none(t.order), "message": t.message,
                    "steps": t.steps, "remainders": [finite_or_none(r) for r in t.remainders]} for t in spec.taylor],
        "expect": [{"what": e.what, "ok": e.ok, "expected": (array_to_json(e.expected)),
                    "actual": (array_to_json(e.actual)), "max_abs_error": finite_or_none(e.max_abs_error),
                    "line": e.line} for e in spec.expectations],
        "description": spec.description, "notes": spec.notes, "dtype": spec.dtype, "method": spec.method,
        "precision_checked": None if spec.error is not None else precision_text(spec),
        "mode": spec.mode, "seed": spec.seed, "seconds": round(spec.seconds, 6),
    }


def render(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    document = {"version": 1, "ok": run.ok, "specs": [spec_to_dict(spec, options) for spec in run.specs]}
    return json.dumps(document, indent=2, allow_nan=False) + "\n"
