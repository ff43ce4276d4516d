"""The Python API: check an op or a spec from a test, as ``torch.autograd.gradcheck`` and JAX's ``check_grads`` do.

    import gradcheck
    gradcheck.assert_gradients(Swish(), x)                        # a pytest test in one line
    result = gradcheck.check_op({"forward": affine_forward, "backward": affine_backward}, x, w, b)
    result = gradcheck.check("specs/mlp.yaml")                    # a path, a YAML string or a dict
    result.ok, result.status, result.nodes, result.to_dict()     # to_dict() is the JSON report

``check_op`` builds a one-op spec (an input per argument, one node applying the op) and runs the pipeline
the command line runs, with the one judge: every argument's gradient against float64 finite differences
(a non-scalar result is reduced with a random cotangent), the op's jvp when it has one, kinks, the worst
element.  Checks run in this process (a debugger can follow the op); spec faults raise :class:`SpecError`.
"""
from __future__ import annotations

import json
import keyword
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Location, SpecError
from .judge import CheckOptions
from .ops import BUILTIN_OPS
from .ops.custom import load_custom_op
from .pipeline import files_read, run_loaded, skipped_result
from .report import RenderOptions, json_report
from .report.common import failure_text
from .results import NodeResult, RunResult, SpecResult, Status
from .spec import Overrides, Spec, load_spec, parse_spec
from .yamlsource import load_yaml

MODES = ("auto", "full", "fast")


@dataclass
class CheckResult(SpecResult):
    """What one check found: the :class:`SpecResult` the command line renders, with a test's conveniences.

    ``status`` is ``Status.PASS``, ``FAIL`` or ``SKIP``; ``nodes`` holds a :class:`NodeResult` per input and node
    (``status``, ``max_abs_error``, ``max_rel_error``, ``worst_index``, ``analytic``, ``numeric``); ``suspects``
    the ops whose backward passes a wrong gradient; ``jvps`` the forward-mode rules checked.
    """

    strict: bool = False
    op: str | None = None  # check_op: the op checked (the result's name is then "check_op(<op>)")

    @property
    def ok(self) -> bool:
        """True when the check passed (kinks are warnings unless ``strict``) or was skipped."""
        return self.status in (Status.PASS, Status.SKIP)

    def node(self, name: str) -> NodeResult:
        """The result of the input or node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r}; the nodes are {', '.join(n.name for n in self.nodes)}")

    def message(self) -> str:
        """The concise report the table prints under a failing spec (what AssertionError says); for a passing
        check, one line."""
        if self.ok:
            kinks = sum(1 for n in self.nodes if n.status == Status.KINK)
            extra = f" ({kinks} node(s) at kinks)" if kinks else ""
            return f"gradcheck: {self._subject()} {self.status}{extra}"
        details = failure_text(self, strict=self.strict).split("\n", 1)[1:]  # its first line names a spec file
        return "\n".join([f"gradcheck: {self._subject()} failed", *details])

    def _subject(self) -> str:
        return f"op '{self.op}'" if self.op is not None else f"spec '{self.name}' ({self.path})"

    def to_dict(self, values: bool = False) -> dict:
        """The JSON report of this check, exactly as ``gradcheck run --format json`` writes it
        (``values=True``: as with ``--values``, the gradient arrays included)."""
        run = RunResult([self], self.seconds)
        return json.loads(json_report.render(run, RenderOptions(values=values)))

    @classmethod
    def of(cls, result: SpecResult, strict: bool, op: str | None = None) -> CheckResult:
        return cls(**{f.name: getattr(result, f.name) for f in fields(SpecResult)}, strict=strict, op=op)


def _overrides_and_options(atol, rtol, method, eps, dtype, seed, mode, strict) -> tuple[Overrides, CheckOptions]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return (Overrides(dtype=dtype, seed=seed, atol=atol, rtol=rtol, method=method, eps=eps),
            CheckOptions(mode=mode, strict=strict))


def _run(spec: Spec, options: CheckOptions, started: float, op: str | None = None) -> CheckResult:
    skipped = skipped_result(spec)
    if skipped is not None:
        result = skipped
    else:
        checked = run_loaded(spec, options)
        assert checked.result is not None
        result = checked.result
        result.files_read = files_read(checked.graph)
    result.seconds = time.perf_counter() - started
    return CheckResult.of(result, options.strict, op)


def _is_yaml_text(text: str) -> bool:
    """YAML text rather than a path: it spans lines, or is one flow mapping ("{inputs: ..., nodes: ...}")."""
    return "\n" in text or text.lstrip().startswith("{")


def check(spec: str | Path | dict, *, atol: float | None = None, rtol: float | None = None, method: str | None = None,
          eps: float | None = None, dtype: str | None = None, seed: int | None = None, mode: str = "auto",
          strict: bool = False) -> CheckResult:
    """Check one spec: a path to a YAML file, YAML text, or a dict in the spec format (values may be numpy
    arrays, and ``ops:`` may hold op objects or conventions with functions in place of "module:attribute").

    The options are the command line's (``gradcheck run --atol ... --strict``) and override the spec's.
    Raises SpecError for a spec that cannot be checked (with its file:line:column where it has one).
    """
    started = time.perf_counter()
    overrides, options = _overrides_and_options(atol, rtol, method, eps, dtype, seed, mode, strict)
    with np.errstate(all="ignore"):
        if isinstance(spec, dict):
            loaded = parse_spec(spec, "<dict>", Path.cwd(), str(spec.get("name", "spec")), overrides)
        elif isinstance(spec, str) and _is_yaml_text(spec):
            loaded = parse_spec(load_yaml(spec, "<string>"), "<string>", Path.cwd(), "spec", overrides)
        elif isinstance(spec, (str, Path)):
            loaded = load_spec(spec, overrides)
        else:
            raise TypeError(f"check() takes a path, YAML text or a dict, got {type(spec).__name__}")
    return _run(loaded, options, started)


def check_op(op: Any, *arrays, atol: float | None = None, rtol: float | None = None, method: str | None = None,
             eps: float | None = None, dtype: str | None = None, seed: int | None = None, mode: str = "auto",
             strict: bool = False, wrt: Iterable[int] | None = None, params: dict | None = None,
             **op_params) -> CheckResult:
    """Check one op at the given arrays: every argument's vjp against finite differences, its jvp when present,
    kinks and the worst element, with the verdicts, messages and result data of ``gradcheck run``.

    ``op`` is a built-in op's name ("softmax"), "module:attribute", an op object (forward / vjp, a class is
    instantiated), a convention's mapping (``{"forward": f, "backward": b}``, ``{"layer": Dense, "params":
    ["W", "b"]}``, ``{"forward": loss, "gradient": grad, "upstream": "softmax"}``, ``{"torch": fn}``,
    ``{"jax": f}``), a ``torch.autograd.Function`` subclass or a ``jax.custom_vjp`` function.
    ``arrays`` are its positional inputs (integer arrays are data: labels, ids); ``op_params`` its keyword
    constants -- one named like an option of this function (``eps``, ``mode``...) goes in ``params``.
    ``wrt``: the positions whose gradients are checked (default: every floating-point input).
    """
    started = time.perf_counter()
    overrides, options = _overrides_and_options(atol, rtol, method, eps, dtype, seed, mode, strict)
    keywords = {**(params or {}), **op_params}
    where = Location("<check_op>")
    with np.errstate(all="ignore"):
        name, info, entry = _op_record(op, where)
        display = f"<check_op {name}>"
        input_names = _input_names(info.args, len(arrays), name)
        checked = set(range(len(arrays))) if wrt is None else {int(i) for i in wrt}
        inputs = {}
        for position, (input_name, array) in enumerate(zip(input_names, arrays, strict=True)):
            inputs[input_name] = _input(array, position in checked)
        node = "result" if "out" in input_names else "out"
        call = ", ".join([*input_names, *(f"{key}={_literal(key, value)}" for key, value in keywords.items())])
        document: dict[str, Any] = {"name": f"check_op({name})", "inputs": inputs, "nodes": {node: f"{name}({call})"}}
        if entry is not None:
            document["ops"] = {name: entry}
        spec = parse_spec(document, display, Path.cwd(), name, overrides)
    return _run(spec, options, started, op=name)


def assert_gradients(target: Any, *arrays, **options) -> CheckResult:
    """``check_op(target, *arrays, ...)`` -- or ``check(target, ...)`` when ``target`` is a spec (a path, YAML
    text or a dict with 'inputs') and no arrays are given -- raising AssertionError with the concise report
    of what is wrong (the element, analytic vs numeric, the suspect op) unless it passes.  Returns the result."""
    is_spec = not arrays and (isinstance(target, (str, Path)) or isinstance(target, dict) and "inputs" in target)
    result = check(target, **options) if is_spec else check_op(target, *arrays, **options)
    if not result.ok:
        raise AssertionError(result.message())
    return result


# ------------------------------------------------------------------------------------------ building the one-op spec


def _op_record(op: Any, where: Location):
    """(name, op record, the spec's ops: entry or None for a built-in op) of what check_op was given."""
    if isinstance(op, str) and ":" not in op:
        if op not in BUILTIN_OPS:
            from .errors import did_you_mean

            raise SpecError(f"no built-in op '{op}'{did_you_mean(op, BUILTIN_OPS)}; `gradcheck ops` lists them "
                            "(pass an op object, a convention's mapping or \"module:attribute\" for your own)", where)
        return op, BUILTIN_OPS[op], None
    name = _name_of(op)
    info = load_custom_op(name, op, Path.cwd(), where)
    return name, info, info.impl  # the loaded object: the spec's graph uses it as it is


def _name_of(op: Any) -> str:
    """An identifier for the op in messages, as the user spelled it (a pair's "affine_forward" is "affine")."""
    if isinstance(op, str):
        raw = op.split(":")[1].split(".")[-1]
    elif isinstance(op, dict):
        first = next((op[key] for key in ("torch", "jax", "layer", "forward") if key in op), None)
        raw = first.split(":")[-1].split(".")[-1] if isinstance(first, str) else getattr(first, "__name__", "op")
    else:
        raw = getattr(op, "__name__", None) or type(op).__name__
    name = re.sub(r"\W", "_", str(raw)).removesuffix("_forward").strip("_") or "op"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"op_{name}"
    return name


def _input_names(args: tuple[str, ...], count: int, op_name: str) -> list[str]:
    fixed = [a for a in args if not a.startswith("*")]
    names = fixed[:count] + [f"a{i}" for i in range(len(fixed), count)]
    unique = []
    for i, candidate in enumerate(names):
        if not candidate.isidentifier() or keyword.iskeyword(candidate) or candidate in unique or candidate == op_name:
            candidate = f"a{i}"
        unique.append(candidate)
    return unique


def _input(array, differentiable: bool) -> dict:
    """A spec input for one argument: numpy integer and bool arrays are data (labels, ids, masks), Python numbers
    are floats."""
    value = np.asarray(array, dtype=np.float64) if isinstance(array, (int, float, list, tuple)) else np.asarray(array)
    if value.dtype.kind == "b":
        return {"value": value, "dtype": "bool"}  # a mask
    if value.dtype.kind in "iu":
        return {"value": value.astype(np.int64), "dtype": "int64"}
    if value.dtype.kind != "f":
        raise TypeError(f"check_op takes arrays of real numbers, got a {value.dtype} array")
    entry: dict[str, Any] = {"value": value}
    if value.dtype == np.float32:
        entry["dtype"] = "float32"
    if not differentiable:
        entry["requires_grad"] = False
    return entry


def _literal(key: str, value) -> str:
    """A keyword constant as expression text (parsed back by gradcheck.expr, never evaluated)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"keyword '{key}' must be finite, got {value!r}")
        return repr(value)
    if isinstance(value, tuple):
        return "(" + "".join(f"{_literal(key, v)}, " for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(key, v) for v in value) + "]"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return "{" + ", ".join(f"{k!r}: {_literal(key, v)}" for k, v in value.items()) + "}"
    raise TypeError(f"keyword '{key}' must be a constant (a number, string, bool, None, or a list, tuple or dict of "
                    f"them), got {type(value).__name__}; arrays are positional inputs")
