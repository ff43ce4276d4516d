"""One spec, end to end: load -> graph -> forward/backward -> numeric -> compare -> SpecResult.

A fault in one spec becomes that spec's ``error`` result; it never stops the others.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .compare import CheckOptions, Comparator, within
from .engine import backward, forward
from .errors import Location, SpecError, clip, one_line
from .forward_mode import check_jvps
from .graph import Graph, build_graph
from .results import ErrorInfo, ExpectResult, RunResult, SpecResult
from .spec import Overrides, Tolerance, load_spec

SPEC_SUFFIXES = (".yaml", ".yml")
FLOAT32_EXPECT_FLOOR = Tolerance(atol=1e-7, rtol=1e-5)  # a few float32 ulps, accumulated


def collect_spec_paths(paths) -> list[Path]:
    """Expand folders into their *.yaml / *.yml files (sorted); raise SpecError for a missing path."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise SpecError(f"no such file or folder: {raw}", Location(str(raw)))
    return found


def check_paths(paths, overrides: Overrides = Overrides(), options: CheckOptions = CheckOptions()) -> RunResult:
    started = time.perf_counter()
    results = [check_spec(path, overrides, options) for path in collect_spec_paths(paths)]
    return RunResult(results, time.perf_counter() - started)


def check_spec(path, overrides: Overrides = Overrides(), options: CheckOptions = CheckOptions()) -> SpecResult:
    started = time.perf_counter()
    try:
        with np.errstate(all="ignore"):  # numpy's overflow warnings must not add lines to the one message
            spec = load_spec(path, overrides)
            graph = build_graph(spec)
        result = check_loaded(graph, options)
    except SpecError as error:
        location = error.location
        result = SpecResult(path=str(path), name=Path(path).stem, status="error",
                            error=ErrorInfo(error.message, location.line if location else None,
                                            location.column if location else None))
    except RecursionError:
        result = SpecResult(path=str(path), name=Path(path).stem, status="error",
                            error=ErrorInfo("the spec is nested too deeply to evaluate"))
    except MemoryError:
        result = SpecResult(path=str(path), name=Path(path).stem, status="error",
                            error=ErrorInfo("out of memory while checking this spec"))
    except SystemExit as error:  # a custom op's code called exit(): that must not end (or pass) the run
        result = SpecResult(path=str(path), name=Path(path).stem, status="error",
                            error=ErrorInfo(one_line(f"exit({clip(error.code)}) was called while checking this spec "
                                                     "(by a custom op?)")))
    except Exception as error:  # a bug: still one clean line for this spec, and the others keep running
        result = SpecResult(path=str(path), name=Path(path).stem, status="error",
                            error=ErrorInfo(one_line(f"internal error: {type(error).__name__}: {clip(error, 300)} "
                                                     "(please report)")))
    result.seconds = time.perf_counter() - started
    return result


def check_loaded(graph: Graph, options: CheckOptions = CheckOptions()) -> SpecResult:
    spec = graph.spec
    with np.errstate(all="ignore"):
        reference = forward(graph, "float64")
        analytic_fwd = reference if spec.dtype == "float64" else forward(graph, spec.dtype)
        grads = backward(graph, analytic_fwd, spec.dtype)
        comparator = Comparator(graph, analytic_fwd, grads, reference, spec.method, spec.eps, options)
        nodes = comparator.compare_all()
        suspects = comparator.suspects(nodes)
        jvps = check_jvps(graph, analytic_fwd, reference, grads, comparator.tolerance)
    result = SpecResult(path=spec.path, name=spec.name, status="pass", description=spec.description,
                        output_name=spec.output, output_value=analytic_fwd.output_value, nodes=nodes,
                        suspects=suspects, jvps=jvps, dtype=spec.dtype, method=spec.method, mode=options.mode, seed=spec.seed,
                        evaluations=comparator.evaluator.evaluations)
    if analytic_fwd.projection is not None and analytic_fwd.output_value.size > 1:
        result.notes.append(f"the output '{spec.output}' has shape {tuple(analytic_fwd.output_value.shape)}: "
                            f"it is reduced to the scalar sum(v * {spec.output}) with a fixed random v (seed {spec.seed})")
    result.notes.extend(comparator.notes)
    if spec.expect is not None:
        result.expectations = check_expectations(graph, analytic_fwd, grads)
    failed = (any(n.status == "fail" for n in nodes) or any(not e.ok for e in result.expectations)
              or any(j.status in ("fail", "error") for j in jvps))
    if options.strict and any(item.status == "kink" for item in [*nodes, *jvps]):
        failed = True
        result.notes.append("--strict: kinks count as failures")
    result.status = "fail" if failed else "pass"
    return result


def check_expectations(graph: Graph, fwd, grads) -> list[ExpectResult]:
    expect = graph.spec.expect
    tol = Tolerance(expect.atol, expect.rtol)
    if graph.spec.dtype == "float32":
        # numbers pinned for float64 cannot hold tighter than float32 resolves them
        tol = Tolerance(max(tol.atol, FLOAT32_EXPECT_FLOOR.atol), max(tol.rtol, FLOAT32_EXPECT_FLOOR.rtol))
    checks = []
    if expect.output is not None:
        checks.append(("output", expect.output, fwd.output_value, expect.output_location))
    for name, (expected, location) in expect.grads.items():
        adjoint = grads.adjoints[graph.by_name[name]]
        actual = np.zeros(np.shape(fwd.values[graph.by_name[name]])) if adjoint is None else adjoint
        checks.append((f"grad {name}", expected, actual, location))
    for name, (expected, location) in expect.values.items():
        checks.append((f"value {name}", expected, fwd.values[graph.by_name[name]], location))
    results = []
    for what, expected, actual, location in checks:
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        line, column = (location.line, location.column) if location else (None, None)
        if expected.shape != actual.shape and expected.size != actual.size:
            results.append(ExpectResult(what, expected, actual, False, float("inf"), line, column,
                                        f"expected shape {expected.shape}, got {actual.shape}"))
            continue
        expected = expected.reshape(actual.shape)
        error = np.abs(actual - expected)
        ok = bool(np.all(within(actual, expected, tol)))
        results.append(ExpectResult(what, expected, actual, ok, float(error.max()) if error.size else 0.0,
                                    line, column))
    return results
