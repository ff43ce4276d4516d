"""--format markdown: a job summary or a pull-request comment.

One table of every spec first; then each failing spec expanded (its error, or its failing nodes
with their worst elements, the suspect ops, the missed expectations and a Mermaid drawing of the
failing part of its graph); then the passing specs folded into ``<details>`` (left out under -q).
"""
from __future__ import annotations

from ..errors import Location
from ..format import number, visible
from ..results import NodeResult, RunResult, SpecResult, Status
from . import DEFAULT_OPTIONS, RenderOptions
from .common import (
    display_order,
    expect_values_text,
    failure_lines,
    jvp_sentence,
    precision_text,
    shape_text,
    summary_line,
    suspect_sentence,
    worst_text,
)
from .graph_view import STATUS_COLOURS, mermaid_text

ICON = {Status.PASS: "✅ pass", Status.FAIL: "❌ fail", Status.KINK: "⚠️ kink", Status.SKIP: "➖ skip",
        Status.ERROR: "💥 error", Status.INCONCLUSIVE: "❓ inconclusive"}
MAX_DRAWN_NODES = 40    # a Mermaid drawing beyond this is unreadable in a summary: the rest is counted


def icon(status: Status) -> str:
    return ICON.get(status, f"❔ {status}")


def cell(text: str) -> str:
    """Text safe in a table cell: pipes and backslashes escaped, control characters visible, one line."""
    return visible(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def code(text: str) -> str:
    """Inline code that survives backticks in the text."""
    text = cell(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    lines = ["# gradcheck report", "", f"**{cell(summary_line(run))}**", ""]
    lines += overview(run, options)
    failing = [spec for spec in run.specs if spec.status != Status.PASS]
    passing = [spec for spec in run.specs if spec.status == Status.PASS]
    for spec in failing:
        lines += failing_spec(spec, options)
    if passing and not options.quiet:
        lines += ["<details>", f"<summary>{len(passing)} passing spec{'s' if len(passing) != 1 else ''}</summary>", ""]
        for spec in passing:
            lines += [f"#### {cell(spec.name)} — {icon(spec.status)}", "", code(spec.path), ""]
            lines += node_table(spec, [node for node, _ in display_order(spec)], options)
        lines += ["</details>", ""]
    return "\n".join(lines)


def overview(run: RunResult, options: RenderOptions) -> list[str]:
    lines = ["| spec | status | nodes | failing | kinks | seconds |", "|---|---|---:|---:|---:|---:|"]
    for spec in run.specs:
        if options.quiet and spec.status == Status.PASS:
            continue
        counts = spec.counts
        lines.append(f"| {cell(spec.name)} ({code(spec.path)}) | {icon(spec.status)} | {len(spec.nodes)} | "
                     f"{counts[Status.FAIL]} | {counts[Status.KINK]} | {spec.seconds:.2f} |")
    return lines + [""]


def failing_spec(spec: SpecResult, options: RenderOptions) -> list[str]:
    precision = f" ({precision_text(spec)})" if spec.error is None else ""
    lines = [f"## {cell(spec.name)} — {icon(spec.status)}{precision}", "", code(spec.path), ""]
    if spec.error is not None:
        where = Location(spec.path, spec.error.line, spec.error.column)
        return lines + [f"> **error** {code(str(where))}: {cell(spec.error.message)}", ""]
    shown = [node for node, _ in display_order(spec) if node.status not in (Status.PASS, Status.SKIP)]
    if shown:
        lines += node_table(spec, shown, options)
    for suspect in spec.suspects:  # the cause first
        lines.append(f"- **suspect**: {cell(suspect_sentence(suspect))}")
    for status, sentence in failure_lines(spec):
        lines.append(f"- {'⚠️' if status == Status.KINK else '❌'} {cell(sentence)}")
    for jvp in spec.jvps:
        if jvp.status == Status.ERROR:
            lines.append(f"- ❌ {cell(jvp_sentence(jvp))}")
    for expectation in spec.expectations:
        if not expectation.ok:
            where = Location(spec.path, expectation.line, expectation.column)
            lines.append(f"- ❌ **expect {cell(expectation.what)}** ({code(str(where))}) failed: "
                         f"{cell(expect_values_text(expectation))} (abs error {number(expectation.max_abs_error)})")
    for note in spec.notes:
        lines.append(f"- note: {cell(note)}")
    lines.append("")
    if shown:
        lines += ["```mermaid", *failing_graph(spec), "```", ""]
    return lines


def node_table(spec: SpecResult, nodes: list[NodeResult], options: RenderOptions) -> list[str]:
    lines = ["| node | op | shape | max abs err | max rel err | worst element | status |",
             "|---|---|---:|---:|---:|---|---|"]
    for node in nodes:
        name = ("↳ " if node.parent else "") + code(node.name)
        errors = ("", "") if node.status == Status.SKIP else (number(node.max_abs_error), number(node.max_rel_error))
        worst = worst_text(node) if node.status not in (Status.PASS, Status.SKIP) else ""
        lines.append(f"| {name} | {cell(node.op)} | {shape_text(node.shape)} | {errors[0]} | {errors[1]} | "
                     f"{cell(worst)} | {icon(node.status)} |")
    return lines + [""]


def failing_graph(spec: SpecResult) -> list[str]:
    """A Mermaid flowchart of the nodes that did not pass, the suspects' nodes and their direct arguments."""
    by_name = {node.name: node for node in spec.nodes}
    ids = {node.name: f"n{index}" for index, node in enumerate(spec.nodes)}
    core = [node for node in spec.nodes if node.status not in (Status.PASS, Status.SKIP)]
    core += [by_name[s.node] for s in spec.suspects if s.node in by_name and by_name[s.node] not in core]
    drawn = core[:MAX_DRAWN_NODES]
    context: dict[str, NodeResult] = {}  # the arguments of drawn nodes, drawn for orientation
    for node in drawn:
        for arg in node.arguments:
            if arg in by_name and by_name[arg] not in drawn:
                context.setdefault(arg, by_name[arg])
    drawn_all = drawn + list(context.values())
    names = {node.name for node in drawn_all}
    lines = ["flowchart BT"]
    for node in drawn_all:
        label = "<br/>".join(mermaid_text(line) for line in (node.name, f"{node.op} · {node.status}"))
        lines.append(f'  {ids[node.name]}(["{label}"])' if node.op == "input" else f'  {ids[node.name]}["{label}"]')
    wrong = {(s.node, s.argument_node) for s in spec.suspects}
    for node in drawn:
        for arg in node.arguments:
            if arg in names:
                arrow = '-.->|"wrong gradient"|' if (node.name, arg) in wrong else "-->"
                lines.append(f"  {ids[arg]} {arrow} {ids[node.name]}")
    if len(core) > len(drawn):
        lines.append(f'  more["{len(core) - len(drawn)} more nodes that did not pass"]')
    for status, (fill, border) in STATUS_COLOURS.items():
        lines.append(f"  classDef {status} fill:{fill},stroke:{border},color:#000000")
    by_status: dict[str, list[str]] = {}
    for node in drawn_all:
        by_status.setdefault(str(node.status), []).append(ids[node.name])
    for status, members in by_status.items():
        if status in STATUS_COLOURS:
            lines.append(f"  class {','.join(members)} {status}")
    return lines
