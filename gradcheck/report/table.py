"""--format table: a Rich table per spec, named nodes first with their automatic nodes under them."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import NodeResult, RunResult, SpecResult, Status
from . import RenderOptions
from .common import (
    JUDGED,
    STATUS_STYLE,
    console_for,
    display_order,
    error_where,
    expect_values_text,
    failure_lines,
    index_text,
    number,
    precision_text,
    shape_text,
    summary_line,
    suspect_sentence,
    worst_text,
)


def render(run: RunResult, options: RenderOptions = RenderOptions(), console: Console | None = None) -> str:
    console, buffer = console_for(console, options.color, width=140)
    for spec in run.specs:
        if options.quiet and spec.status == Status.PASS:
            continue
        print_spec(console, spec, options)
    style = "green" if run.ok else "bold red"
    console.print(Text(summary_line(run), style=style))
    return buffer.getvalue() if buffer is not None else ""


def print_spec(console: Console, spec: SpecResult, options: RenderOptions) -> None:
    header = Text()
    header.append(spec.status.upper(), style=STATUS_STYLE[spec.status])
    header.append(f"  {spec.name}", style="bold")
    header.append(f"  {spec.path}", style="dim")
    if spec.error is None and spec.dtype != "float64":  # float64 is the default: said where it is not
        header.append(f"  ({precision_text(spec)})", style="dim")
    console.print(header)
    if spec.error is not None:
        where = error_where(spec.path, spec.error)
        if options.errors_inline:
            console.print(Text(f"  {where}: {spec.error.message}", style="red"))
        console.print()
        return
    if spec.description and not options.quiet:
        console.print(Text(f"  {spec.description.strip()}", style="italic"))
    output = spec.output_value
    if output is not None and getattr(output, "ndim", 0) == 0:
        console.print(Text(f"  output {spec.output_name} = {number(float(output), 8)}"))
    for note in spec.notes:
        console.print(Text(f"  note: {note}", style="dim"))

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column, justify, wrap in (("node", "left", False), ("op", "left", False), ("shape", "right", False),
                                  ("max abs err", "right", False), ("max rel err", "right", False),
                                  ("worst element", "left", True), ("status", "left", False)):
        table.add_column(column, justify=justify, no_wrap=not wrap)
    for node, depth in display_order(spec):
        if options.quiet and node.status in (Status.PASS, Status.SKIP):
            continue
        name = ("  └ " if depth else "") + node.name
        status_text = Text(node.status, style=STATUS_STYLE[node.status])
        if node.checked == "probes" and node.status == Status.PASS:
            status_text.append(" (probes)", style="dim")
        errors = ("", "") if node.status == Status.SKIP else (number(node.max_abs_error), number(node.max_rel_error))
        worst = worst_text(node) if node.status in JUDGED else ""
        table.add_row(Text(name, style="dim" if depth else ""), Text(node.op), Text(shape_text(node.shape)),
                      errors[0], errors[1], Text(worst), status_text)
        if options.verbose:
            add_element_rows(table, node)
    console.print(table)
    for suspect in spec.suspects:  # the cause first, then what it caused
        console.print(Text("  suspect: " + suspect_sentence(suspect), style="bold red"))
    for status, sentence in failure_lines(spec):
        console.print(Text("  " + sentence, style=STATUS_STYLE[status]))
    for test in spec.taylor:
        console.print(Text(f"  taylor {test.input}: {test.status}: {test.message}",
                           style=STATUS_STYLE[test.status]))
    for expectation in spec.expectations:
        if not expectation.ok:
            console.print(Text(f"  expect {expectation.what} (line {expectation.line}): "
                               f"{expect_values_text(expectation)} (abs error {number(expectation.max_abs_error)})"
                               + (f": {expectation.message}" if expectation.message else ""), style="bold red"))
        elif options.verbose:
            console.print(Text(f"  expect {expectation.what}: ok (abs error {number(expectation.max_abs_error)})",
                               style="green"))
    console.print()


def add_element_rows(table: Table, node: NodeResult) -> None:
    """A row per element the judge did not pass (the worst of each kind), with its status, then how many more."""
    for status, total in ((Status.FAIL, node.failing), (Status.INCONCLUSIVE, node.inconclusive),
                          (Status.KINK, node.kinks)):
        listed = node.elements_of(status)
        for element in listed:
            values = f"a={number(element.analytic, 6)} n={number(element.numeric, 6)}"
            if element.numeric_error:
                values += f" ±{number(element.numeric_error, 2)}"
            if element.right is not None:
                values += f" slopes {number(element.right, 6)}/{number(element.left, 6)}"
            table.add_row(Text(f"      {index_text(element.index)}", style=STATUS_STYLE[status]), "", "",
                          number(element.abs_error), "", Text(values), Text(status, style=STATUS_STYLE[status]))
        if total > len(listed) and listed:
            noun = {Status.FAIL: "failing elements", Status.KINK: "elements at kinks",
                    Status.INCONCLUSIVE: "inconclusive elements"}[status]
            table.add_row(Text(f"      … {total - len(listed)} more {noun}", style="dim"), "", "", "", "", "", "")
