"""One spec end to end: load -> graph -> forward/backward -> judge -> SpecResult.

:func:`run` is the one pipeline: ``run``, ``explain``, ``graph``, the pytest plugin and the Python
API all get their graph, forward passes, adjoints and result from it.  :func:`check_spec` wraps it
for a run over many specs: a fault in one spec becomes that spec's ``error`` result (worded once,
by :func:`describe_fault`); it never stops the others.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from .batching import gap_text
from .blas import blas_threads, wanted_threads
from .discovery import discover
from .engine import BackwardPass, ForwardPass, backward, forward
from .errors import INTERRUPTS, SpecError, clip, one_line
from .graph import Graph, build_graph
from .isolation import Contained, Limits, contain, describe_fault, in_a_child, memory_cap
from .judge import CheckOptions
from .judge.jvp import check_jvps
from .judge.local import check_ops_locally, needs_gradient
from .judge.nodes import Comparator
from .judge.suspects import find_suspects
from .plaindata import PlainData
from .results import RunResult, SpecResult, Status
from .sizing import node_shapes, refuse_over_budget
from .spec import DEFAULT_TOLERANCE, Overrides, Spec, Tolerance, load_spec

DEFAULT_OVERRIDES = Overrides()
DEFAULT_OPTIONS = CheckOptions()
T = TypeVar("T")


@dataclass(eq=False, repr=False)
class Checked(PlainData):
    """Everything one run of the pipeline produced, for the stages after it (renderers, explain, graph)."""

    graph: Graph
    analytic: ForwardPass            # the forward pass in the spec's dtype
    backward: BackwardPass           # adjoints of that pass
    reference: ForwardPass | None    # the float64 pass the numeric reference perturbs (None when not judged)
    result: SpecResult | None        # the verdicts (None when not judged: explain)


def collect_spec_paths(paths) -> list[Path]:
    """Expand folders into their spec files (sorted; other YAML left out, see gradcheck.discovery);
    raise SpecError for a missing path."""
    return discover(paths).specs


def run(path, overrides: Overrides = DEFAULT_OVERRIDES, options: CheckOptions = DEFAULT_OPTIONS, *,
        judge: bool = True) -> Checked:
    """Load, build, differentiate and (unless ``judge`` is false) check one spec, in this process.

    Raises SpecError (and whatever else goes wrong: see :func:`describe_fault`) instead of returning an error result.
    """
    return run_loaded(load(path, overrides), options, judge=judge)


def load(path, overrides: Overrides = DEFAULT_OVERRIDES) -> Spec:
    with np.errstate(all="ignore"):  # numpy's overflow warnings must not add lines to the one message
        return load_spec(path, overrides)


def run_loaded(spec: Spec, options: CheckOptions = DEFAULT_OPTIONS, *, judge: bool = True) -> Checked:
    """Build, differentiate and (unless ``judge`` is false) check a loaded spec: the stages after the YAML."""
    with np.errstate(all="ignore"):
        graph = build_graph(spec)
        shapes = node_shapes(graph)
        refuse_over_budget(graph, shapes, spec.dtype, options.memory_budget)  # before any pass
        graph.sized = shapes
        if judge:
            return check_graph(graph, options)
        analytic = forward(graph, spec.dtype, sized=graph.sized)
        _resize(graph, analytic, options)
        return Checked(graph, analytic, backward(graph, analytic, spec.dtype), None, None)


def contained(path, overrides: Overrides, limits: Limits, view: Callable[[Spec], T]) -> Contained[T]:
    """``view(spec)`` for the spec at ``path`` within ``limits``: in a child process when the spec names custom ops
    (their code can then neither end, pass, hang nor print over the run), else here under a timer."""
    try:
        with memory_cap(limits.max_memory):  # the inputs are materialised here, within the budget too
            spec = load(path, overrides)
    except INTERRUPTS:
        raise
    except BaseException as error:  # reading YAML runs no user code: its faults are worded here, in this process
        return Contained(None, describe_fault(error))
    return contain(lambda: view(spec), limits, runs_user_code=bool(spec.ops))


def check_paths(paths, overrides: Overrides = DEFAULT_OVERRIDES, options: CheckOptions = DEFAULT_OPTIONS,
                limits: Limits | None = None) -> RunResult:
    started = time.perf_counter()
    files = collect_spec_paths(paths)
    results = []
    for number, path in enumerate(files, 1):
        if options.progress is not None:
            options.progress.spec_started(str(path), number, len(files))
        results.append(check_spec(path, overrides, options, limits))
        if options.progress is not None:
            options.progress.spec_finished(str(path))
    return RunResult(results, time.perf_counter() - started)


def check_spec(path, overrides: Overrides = DEFAULT_OVERRIDES, options: CheckOptions = DEFAULT_OPTIONS,
               limits: Limits | None = None) -> SpecResult:
    """One spec's result; a fault in it is its ``error`` result, never an exception.

    With ``limits`` (the command line, the pytest plugin) the check is contained (see gradcheck.isolation);
    without, it runs here, where a debugger can follow a custom op.
    """
    started = time.perf_counter()

    def judged(spec: Spec) -> SpecResult:
        skipped = skipped_result(spec)
        if skipped is not None:
            return skipped
        run_options = options
        if limits is not None and in_a_child(bool(spec.ops)):
            # the parent shows this spec's progress; the child's copy of the display must stay untouched, since
            # the display's redraw thread may have held its lock at the fork, held for ever in the child
            run_options = replace(options, progress=None)
        result = run_loaded(spec, run_options).result
        assert result is not None
        return result

    if limits is None:
        try:
            outcome = Contained(judged(load(path, overrides)), None)
        except INTERRUPTS:
            raise
        except BaseException as error:  # a bug too: still one clean line for this spec, and the others keep running
            outcome = Contained(None, describe_fault(error))
    else:
        if options.memory_budget is None:  # the check is sized against the budget its process is held to
            options = replace(options, memory_budget=limits.max_memory)
        outcome = contained(path, overrides, limits, judged)
    result = outcome.value
    if result is None:
        result = SpecResult(path=str(path), name=Path(path).stem, status=Status.ERROR, error=outcome.error,
                            files_read=[str(path)])
    if outcome.printed:
        result.notes.append(f"the spec's code printed to stdout (captured, not shown as gradcheck's output): "
                            f"{clip(one_line(outcome.printed), 300)}")
    result.seconds = time.perf_counter() - started
    return result


def files_named(path, overrides: Overrides = DEFAULT_OVERRIDES) -> list[str]:
    """The files checking the spec at ``path`` would read, found without running any of its code: the spec, its
    data files and the op modules beside it (what --output must never replace).  Just the spec where it does not load."""
    try:
        spec = load(path, overrides)
    except INTERRUPTS:
        raise
    except BaseException:  # the check itself reports why, located
        return [str(path)]
    files = [str(path)] + [str(entry.data_file) for entry in spec.inputs.values() if entry.data_file is not None]
    if spec.ops:
        from .ops.custom import local_module_file  # here: a spec of built-in ops never loads the custom-op loader
    for reference, _ in spec.ops.values():
        for module_reference in _module_references(reference):
            module_file = local_module_file(module_reference.split(":")[0], spec.base_dir)
            if module_file is not None:
                files.append(str(module_file))
    return files


def _module_references(reference) -> list[str]:
    """The "module:attribute" strings an ops: entry names: itself, or the values of a convention's mapping."""
    if isinstance(reference, str):
        return [reference]
    if isinstance(reference, Mapping):
        return [value for value in reference.values() if isinstance(value, str) and ":" in value]
    return []  # an op object given in a dict spec: no file of the spec's


def skipped_result(spec: Spec) -> SpecResult | None:
    """The SKIP result of a spec whose ``requires:`` names a module that is not installed here, else None."""
    if not spec.requires:
        return None
    from .ops import frameworks

    missing = [module for module in spec.requires if not frameworks.is_installed(module)]
    if not missing:
        return None
    extras = [f'"gradcheck[{m}]"' for m in missing if m in frameworks.FRAMEWORKS]
    hint = f" (pip install {' '.join(extras)})" if extras else ""
    return SpecResult(path=spec.path, name=spec.name, status=Status.SKIP, description=spec.description,
                      notes=[f"skipped: it requires {', '.join(missing)}, which is not installed here{hint}"],
                      dtype=spec.dtype, method=spec.method, seed=spec.seed, files_read=[spec.path])


def files_read(graph: Graph) -> list[str]:
    """The files a check of this graph read: the spec, its data files, the modules of its custom ops."""
    spec = graph.spec
    files = [spec.path] + [str(entry.data_file) for entry in spec.inputs.values() if entry.data_file is not None]
    for info in graph.ops.custom.values():
        if info.source != "builtin":  # an adapter of a convention (ops.conventions) names the user's objects
            for target in getattr(info.impl, "wraps", (type(info.impl),)):
                module = sys.modules.get(getattr(target, "__module__", None) or type(target).__module__)
                module_file = getattr(module, "__file__", None)
                if module_file and module_file not in files:
                    files.append(module_file)
    return files


def check_graph(graph: Graph, options: CheckOptions = DEFAULT_OPTIONS) -> Checked:
    """The forward passes, the backward pass and the verdicts of a built graph.

    Correctness is judged in float64 always; for a float32 spec the float32 pass's gradients are then judged
    against the float64 ones, for precision, under the spec's (float32) tolerance.  Limits already checked at
    the shapes the pass keeps (graph.sized) are not checked again.
    """
    with blas_threads(wanted_threads()):  # see gradcheck/blas.py: measured, one thread is never slower here
        return _checked_graph(graph, options)


def _resize(graph: Graph, fwd: ForwardPass, options: CheckOptions) -> None:
    """The shapes custom ops left unknown before the pass are known now: size the rest of the check again
    (a pass that gave every node the shape it was sized by changes nothing)."""
    shapes: list[tuple[int, ...] | None] = [np.shape(v) for v in fwd.values]
    if shapes != graph.sized:
        refuse_over_budget(graph, shapes, graph.spec.dtype, options.memory_budget)
        graph.sized = shapes


def _checked_graph(graph: Graph, options: CheckOptions) -> Checked:
    spec = graph.spec
    with np.errstate(all="ignore"):
        reference = forward(graph, "float64", sized=graph.sized)
        _resize(graph, reference, options)
        _require_something_to_differentiate(graph, reference)
        grads64 = backward(graph, reference, "float64")
        if spec.dtype == "float64":
            analytic_fwd, grads = reference, grads64
        else:
            analytic_fwd = forward(graph, spec.dtype, sized=graph.sized)
            grads = backward(graph, analytic_fwd, spec.dtype)
    result = judge_passes(graph, reference, grads64, reference, options, precision=None if grads is grads64 else grads)
    result.dtype = spec.dtype
    result.output_value = analytic_fwd.output_value
    result.files_read = files_read(graph)
    by_name = {node.name: node for node in graph.nodes}
    for judged in result.nodes:
        node = by_name.get(judged.name)
        if node is not None:
            judged.arguments = [graph.nodes[arg].name for arg in node.args if graph.nodes[arg].kind != "constant"]
    return Checked(graph, analytic_fwd, grads, reference, result)


def _require_something_to_differentiate(graph: Graph, reference: ForwardPass) -> None:
    needs = needs_gradient(graph, reference.values)
    if not any(needs[node.index] and graph.reaches_output[node.index] for node in graph.nodes if node.kind == "input"):
        raise SpecError(f"nothing to differentiate: no input that reaches the output '{graph.spec.output}' requires "
                        "grad (every input is integer data or has requires_grad: false)", graph.spec.output_location)


FLOAT64_TOLERANCE = Tolerance(*DEFAULT_TOLERANCE["float64"])


def declarations_set_aside(graph: Graph) -> list[str]:
    """A note for each custom op batching or propagate declaration the check found wrong at a node and did
    without (gradcheck/batching.py declaration_holds)."""
    notes = []
    for node in graph.nodes:
        for (hook, *_), found in node.declarations.items():
            if not found or hook == "complex_safe":  # the comparator's note on complex-step's blocker says it
                continue
            gap = gap_text(found)
            if hook == "batching":
                what = (f"declares batching {node.op_info.batching!r}, but its batched results differ from "
                        f"one copy at a time {gap}")
                instead = "each copy is evaluated on its own"
            else:
                what = f"declares a propagate rule whose changes differ from forward recomputed {gap}"
                instead = "forward is recomputed"
            notes.append(f"node '{node.name}': custom op '{node.op_name}' {what}: the declaration is set aside "
                         f"at this node ({instead}), which costs time, not a verdict")
    return notes


def judge_passes(graph: Graph, analytic_fwd: ForwardPass, grads: BackwardPass, reference: ForwardPass,
                 options: CheckOptions, precision: BackwardPass | None = None) -> SpecResult:
    """Every node, local op check, suspect, jvp rule and expectation of one spec, judged."""
    spec = graph.spec

    def tolerance_of(node):
        tol = node.tolerance if node.tolerance is not None else spec.tolerance
        if precision is None:
            return tol
        # correctness of a float32 spec is judged in float64, with float64 tolerances (or tighter ones given)
        return Tolerance(min(tol.atol, FLOAT64_TOLERANCE.atol), min(tol.rtol, FLOAT64_TOLERANCE.rtol))

    def precision_tolerance(node):
        return node.tolerance if node.tolerance is not None else spec.tolerance

    with np.errstate(all="ignore"):
        local = check_ops_locally(graph, grads, reference.values, tolerance_of)
        comparator = Comparator(graph, analytic_fwd, grads, reference, spec.method, spec.eps, options,
                                forgotten=local.forgotten, precision=precision, precision_tolerance=precision_tolerance,
                                tolerance_of=tolerance_of, local_checks=local)
        nodes = comparator.compare_all()
        suspects = find_suspects(graph, grads, reference.values, nodes, local.suspects, tolerance_of)
        if suspects:  # a diagnosis (and its module) only for a wrong gradient
            from .judge.diagnosis import diagnose_suspects

            suspects = diagnose_suspects(graph, grads, reference.values, suspects, tolerance_of)
        jvps = check_jvps(graph, analytic_fwd, reference, grads, tolerance_of, local.tangents)
        taylor = []
        if options.taylor:
            from .judge.taylor import taylor_tests

            statuses = {r.name: r.status for r in nodes}
            inputs = [n.index for n in graph.nodes if n.kind == "input" and statuses[n.name] != Status.SKIP]
            taylor = taylor_tests(graph, comparator.evaluator, grads.adjoints, inputs)
    result = SpecResult(path=spec.path, name=spec.name, status=Status.PASS, description=spec.description,
                        output_name=spec.output, output_value=analytic_fwd.output_value, nodes=nodes,
                        suspects=suspects, jvps=jvps, dtype=spec.dtype, method=spec.method, mode=options.mode, seed=spec.seed,
                        evaluations=comparator.evaluator.evaluations, taylor=taylor)
    if analytic_fwd.projection is not None and analytic_fwd.output_value.size > 1:
        result.notes.append(f"the output '{spec.output}' has shape {tuple(analytic_fwd.output_value.shape)}: "
                            f"it is reduced to the scalar sum(v * {spec.output}) with a fixed random v (seed {spec.seed})")
    if precision is not None:
        result.notes.append(f"precision checked: correctness in float64 (float64 tolerances), then the {spec.dtype} "
                            f"gradients against the float64 ones under the {spec.dtype} tolerance "
                            f"(atol {spec.tolerance.atol:g}, rtol {spec.tolerance.rtol:g})")
    result.notes.extend(comparator.notes)
    result.notes.extend(declarations_set_aside(graph))
    failing_jvps = {(j.node, j.argument) for j in jvps if j.status in (Status.FAIL, Status.ERROR)}
    transposes = [(name, position, message) for name, position, message in local.transposes
                  if (name, position) not in failing_jvps]
    for name, _, message in transposes:
        result.notes.append(f"node '{name}': {message}")
    if spec.expect is not None:
        from .judge.expect import check_expectations

        result.expectations = check_expectations(graph, spec.expect, analytic_fwd, grads)
    failed = (any(n.status == Status.FAIL for n in nodes) or any(not e.ok for e in result.expectations)
              or any(j.status in (Status.FAIL, Status.ERROR) for j in jvps) or bool(local.suspects)
              or any(t.status == Status.FAIL for t in taylor) or bool(transposes))
    inconclusive = [n.name for n in nodes if n.status == Status.INCONCLUSIVE]
    if inconclusive:
        if options.allow_inconclusive:
            result.notes.append(f"--allow-inconclusive: {len(inconclusive)} inconclusive node(s) "
                                f"({', '.join(inconclusive[:5])}) do not fail the spec")
        else:
            failed = True
    if options.strict and any(item.status == Status.KINK for item in [*nodes, *jvps]):
        failed = True
        result.notes.append("--strict: kinks count as failures")
    result.status = Status.FAIL if failed else Status.PASS
    return result
