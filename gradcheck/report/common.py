"""Helpers shared by the renderers: ordering nodes for display, formatting numbers and indices.

Every sentence built here shows the user's text (names, messages, paths) through ``format.visible_line``:
control characters in a spec are printed as escapes, never sent to the terminal."""
from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from ..errors import Location
from ..format import number, visible_line
from ..results import Kind, NodeResult, SpecResult, Status

if TYPE_CHECKING:  # rich is imported only by the renderers that print through it
    from rich.console import Console

# the one colour per status, for every renderer that colours
STATUS_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.KINK: "yellow", Status.SKIP: "dim",
                Status.ERROR: "bold red", Status.INCONCLUSIVE: "bold magenta"}
JUDGED = (Status.FAIL, Status.KINK, Status.INCONCLUSIVE)  # node statuses whose worst element is shown


def precision_text(spec: SpecResult) -> str:
    """Which precision the verdicts are about (said by every format)."""
    if spec.dtype == "float64":
        return "checked in float64"
    return f"correctness checked in float64; {spec.dtype} precision checked against it"


def console_for(console: Console | None, color: bool, width: int) -> tuple[Console, io.StringIO | None]:
    """The console to print to: the caller's, or one writing into a buffer whose text is returned."""
    if console is not None:
        return console, None
    from rich.console import Console

    buffer = io.StringIO()
    return Console(file=buffer, highlight=False, emoji=False, no_color=not color, force_terminal=color, width=width), buffer


def display_order(spec: SpecResult) -> list[tuple[NodeResult, int]]:
    """Named nodes (inputs, then nodes as written) each followed by its automatic nodes: (node, depth)."""
    children: dict[str, list[NodeResult]] = {}
    for node in spec.nodes:
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node)
    ordered = []
    for node in spec.nodes:
        if node.parent is None:
            ordered.append((node, 0))
            ordered.extend((child, 1) for child in children.get(node.name, []))
    return ordered


def index_text(index) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def worst_text(node: NodeResult) -> str:
    if node.worst_analytic is None:
        return ""
    text = f"{index_text(node.worst_index)} a={number(node.worst_analytic, 6)} n={number(node.worst_numeric, 6)}"
    if node.worst_numeric_error:
        text += f" ±{number(node.worst_numeric_error, 2)}"
    return text


def shape_text(shape) -> str:
    return "scalar" if not shape else "×".join(str(n) for n in shape)


def failure_sentence(spec: SpecResult, node: NodeResult) -> str:
    """One line saying which element of which node is wrong and by how much."""
    where = visible_line(f"{node.name} ({node.op}{', in ' + node.parent if node.parent else ''})")
    if node.status == Status.KINK:
        slopes = next((f"lies within the one-sided slopes {number(e.right, 6)} and {number(e.left, 6)}"
                       for e in node.elements if e.status == Status.KINK and e.right is not None),
                      "is a valid choice there")
        text = f"{where}: kink at {index_text(node.worst_index)}: analytic {number(node.worst_analytic, 6)} {slopes}"
        return f"{text}; {node.message}" if node.message else text
    if node.status == Status.INCONCLUSIVE:
        return (f"{where}: inconclusive at {index_text(node.worst_index)}: analytic {number(node.worst_analytic, 6)}, "
                f"numeric {number(node.worst_numeric, 6)} ± {number(node.worst_numeric_error)}"
                f"; {node.message or ''}").rstrip("; ")
    if node.worst_analytic is None or node.worst_numeric is None or (
            node.message and not math.isfinite(node.worst_analytic)):  # the rule itself failed: say how, not "nan"
        return f"{where}: {node.message or 'gradient wrong'}"
    own_abs = node.worst_abs_error if node.worst_abs_error is not None else node.max_abs_error
    own_rel = node.worst_rel_error if node.worst_rel_error is not None else node.max_rel_error
    text = (f"{where}: gradient wrong at {index_text(node.worst_index)}: analytic {number(node.worst_analytic, 6)}, "
            f"numeric {number(node.worst_numeric, 6)} (abs error {number(own_abs)}, rel {number(own_rel)}"
            f"; {node.failing} of {max(1, _size(node.shape))} elements fail)")
    if node.message:
        text += f"; {visible_line(node.message)}"
    return text


def suspect_sentence(suspect) -> str:
    """Which op passes which argument a wrong gradient, what kind of wrong it is, and the rule's line."""
    text = (f"op '{suspect.op}' at node {suspect.node} passes a wrong gradient to its argument {suspect.argument} "
            f"({suspect.argument_node})")
    if suspect.diagnosis is not None:  # the op-local comparison of every element says more than one direction's
        text += f": {suspect.diagnosis.kind}: {suspect.diagnosis.detail}"
    elif suspect.message:
        text += f": {suspect.message}"
    return visible_line(text + source_text(suspect.source))


def source_text(source) -> str:
    """" (the vjp at layers.py:12)": where a custom op's rule is written."""
    return f" ({source.rule} at {source.file}:{source.line})" if source is not None else ""


def jvp_sentence(jvp) -> str:
    """One line on a forward-mode rule: where it is wrong, or how it misbehaved."""
    where = visible_line(f"jvp of op '{jvp.op}' at node {jvp.node} along argument {jvp.argument} ({jvp.argument_node})")
    source = source_text(jvp.source) if jvp.status in (Status.FAIL, Status.ERROR) else ""
    if jvp.status == Status.ERROR:
        return f"{where}: {visible_line(jvp.message)}{source}"
    if jvp.status == Status.KINK:
        return (f"{where}: kink at {index_text(jvp.worst_index)}: jvp {number(jvp.worst_analytic, 6)} is a "
                f"one-sided derivative")
    if jvp.status == Status.PASS:
        return f"{where}: ok (max abs error {number(jvp.max_abs_error)})"
    text = (f"{where}: wrong at {index_text(jvp.worst_index)}: jvp {number(jvp.worst_analytic, 6)}, finite "
            f"differences {number(jvp.worst_numeric, 6)} (abs error {number(jvp.max_abs_error)}, rel "
            f"{number(jvp.max_rel_error)}; {jvp.failing} of {max(1, _size(jvp.shape))} output elements fail)")
    diagnosis = getattr(jvp, "diagnosis", None)
    if diagnosis is not None and diagnosis.kind != Kind.UNKNOWN:
        text += f"; {diagnosis.kind}: {diagnosis.detail}"
    return text + source


def _size(shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size


def error_where(path: str, error) -> str:
    """path:line:col of a spec error (as far as it is known)."""
    return visible_line(Location(path, error.line, error.column))


def expect_values_text(expectation) -> str:
    actual = None if expectation.actual is None else expectation.actual.tolist()
    return f"expected {expectation.expected.tolist()}, got {actual}"


def summary_line(run) -> str:
    counts = {Status.PASS: 0, Status.FAIL: 0, Status.ERROR: 0, Status.SKIP: 0}
    for spec in run.specs:
        counts[spec.status] += 1
    nodes = sum(len(s.nodes) for s in run.specs)
    kinks = sum(s.counts[Status.KINK] for s in run.specs)
    inconclusive = sum(s.counts[Status.INCONCLUSIVE] for s in run.specs)
    errors = counts[Status.ERROR]
    parts = [f"{len(run.specs)} spec{'s' if len(run.specs) != 1 else ''}: {counts[Status.PASS]} passed",
             f"{counts[Status.FAIL]} failed", f"{errors} error{'s' if errors != 1 else ''}"]
    if counts[Status.SKIP]:
        parts.append(f"{counts[Status.SKIP]} skipped")
    text = ", ".join(parts) + f" · {nodes} nodes"
    if kinks:
        text += f" ({kinks} at kinks)"
    if inconclusive:
        text += f" ({inconclusive} inconclusive)"
    return text + f" · {run.seconds:.2f}s"


def failure_lines(spec: SpecResult) -> list[tuple[Status, str]]:
    """(status, sentence) lines for the failing and kinked nodes, concise.

    Where suspects explain the failures, only the nodes the suspects feed wrong gradients are
    described; the nodes further up the backward pass (which inherit the error) are named in one line.
    """
    origins = {suspect.argument_node for suspect in spec.suspects}
    lines: list[tuple[Status, str]] = []
    inherited: list[str] = []
    for node, _ in display_order(spec):
        if node.status in (Status.KINK, Status.INCONCLUSIVE):
            lines.append((node.status, failure_sentence(spec, node)))
        elif node.status == Status.FAIL:
            if origins and node.name not in origins and not node.message:
                inherited.append(node.name)
            else:
                lines.append((Status.FAIL, failure_sentence(spec, node)))
    if inherited:
        lines.append((Status.FAIL, "also wrong, as they lie further back along the same gradient path: "
                                   + visible_line(", ".join(inherited))))
    for jvp in spec.jvps:
        if jvp.status != Status.PASS:
            lines.append((Status.KINK if jvp.status == Status.KINK else Status.FAIL, jvp_sentence(jvp)))
    return lines


def fails(result, item, strict: bool) -> bool:
    """Whether a node or jvp rule fails its spec (a kink only when strict; inconclusive unless allowed)."""
    if item.status in ("fail", "error"):
        return True
    if item.status == "kink":
        return strict
    return item.status not in ("pass", "skip") and result.status == "fail"  # inconclusive, unless allowed


def failure_text(result, strict: bool = False, only: set[str] | None = None, expectations: bool = True) -> str:
    """The concise report of a failed spec: failing nodes, suspect ops, jvp rules, missed expectations.

    ``only``: just these nodes (and the suspects that feed them or sit in them); ``expectations``: the missed
    ``expect`` values too.
    """
    def chosen(name: str) -> bool:
        return only is None or name in only

    lines = [f"gradcheck: spec '{result.name}' failed ({result.path})"]
    for node, _ in display_order(result):
        if chosen(node.name) and fails(result, node, strict):
            location = f"line {node.line}: " if node.line else ""
            lines.append(f"  {location}{failure_sentence(result, node)}")
    for suspect in result.suspects:
        if chosen(suspect.node) or chosen(suspect.argument_node):
            lines.append(f"  suspect: {suspect_sentence(suspect)}")
    for jvp in result.jvps:
        if chosen(jvp.node) and fails(result, jvp, strict):
            location = f"line {jvp.line}: " if jvp.line else ""
            lines.append(f"  {location}{jvp_sentence(jvp)}")
    for expectation in result.expectations if expectations else []:
        if not expectation.ok:
            where = f"line {expectation.line}: " if expectation.line else ""
            actual = None if expectation.actual is None else _compact(expectation.actual)
            text = (f"  {where}expect {expectation.what}: expected {_compact(expectation.expected)}, got {actual} "
                    f"(abs error {number(expectation.max_abs_error)})")
            lines.append(text + (f": {expectation.message}" if expectation.message else ""))
    for note in result.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _compact(array) -> str:
    import numpy as np  # here: the command line prints error lines through this module before numpy is needed

    array = np.asarray(array, dtype=np.float64)
    if array.size > 6:
        return f"{'×'.join(map(str, array.shape))} array"
    return np.array2string(array, precision=6, separator=", ") if array.ndim else f"{float(array):.6g}"
