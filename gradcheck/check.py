"""One spec, end to end: load -> graph -> forward/backward -> numeric -> compare -> SpecResult.

A fault in one spec becomes that spec's ``error`` result; it never stops the others.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .engine import backward, forward
from .errors import Location, SpecError, clip, one_line
from .graph import Graph, build_graph
from .judge import CheckOptions
from .judge.expect import check_expectations
from .judge.jvp import check_jvps
from .judge.nodes import Comparator
from .judge.suspects import find_suspects
from .results import ErrorInfo, RunResult, SpecResult, Status
from .spec import Overrides, load_spec

SPEC_SUFFIXES = (".yaml", ".yml")


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
        result = SpecResult(path=str(path), name=Path(path).stem, status=Status.ERROR,
                            error=ErrorInfo(error.message, error.location))
    except RecursionError:
        result = SpecResult(path=str(path), name=Path(path).stem, status=Status.ERROR,
                            error=ErrorInfo("the spec is nested too deeply to evaluate"))
    except MemoryError:
        result = SpecResult(path=str(path), name=Path(path).stem, status=Status.ERROR,
                            error=ErrorInfo("out of memory while checking this spec"))
    except SystemExit as error:  # a custom op's code called exit(): that must not end (or pass) the run
        result = SpecResult(path=str(path), name=Path(path).stem, status=Status.ERROR,
                            error=ErrorInfo(one_line(f"exit({clip(error.code)}) was called while checking this spec "
                                                     "(by a custom op?)")))
    except Exception as error:  # a bug: still one clean line for this spec, and the others keep running
        result = SpecResult(path=str(path), name=Path(path).stem, status=Status.ERROR,
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
        suspects = find_suspects(graph, grads, reference.values, nodes, comparator.tolerance)
        jvps = check_jvps(graph, analytic_fwd, reference, grads, comparator.tolerance)
    result = SpecResult(path=spec.path, name=spec.name, status=Status.PASS, description=spec.description,
                        output_name=spec.output, output_value=analytic_fwd.output_value, nodes=nodes,
                        suspects=suspects, jvps=jvps, dtype=spec.dtype, method=spec.method, mode=options.mode, seed=spec.seed,
                        evaluations=comparator.evaluator.evaluations)
    if analytic_fwd.projection is not None and analytic_fwd.output_value.size > 1:
        result.notes.append(f"the output '{spec.output}' has shape {tuple(analytic_fwd.output_value.shape)}: "
                            f"it is reduced to the scalar sum(v * {spec.output}) with a fixed random v (seed {spec.seed})")
    result.notes.extend(comparator.notes)
    if spec.expect is not None:
        result.expectations = check_expectations(graph, analytic_fwd, grads)
    failed = (any(n.status == Status.FAIL for n in nodes) or any(not e.ok for e in result.expectations)
              or any(j.status in (Status.FAIL, Status.ERROR) for j in jvps))
    if options.strict and any(item.status == Status.KINK for item in [*nodes, *jvps]):
        failed = True
        result.notes.append("--strict: kinks count as failures")
    result.status = Status.FAIL if failed else Status.PASS
    return result

