"""--format table: a Rich table per spec, named nodes first with their automatic nodes under them."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import RunResult, SpecResult
from . import RenderOptions
from .common import (
    console_for,
    display_order,
    error_where,
    expect_values_text,
    failure_lines,
    index_text,
    number,
    shape_text,
    summary_line,
    suspect_sentence,
    worst_text,
)

STATUS_STYLE = {"pass": "green", "fail": "bold red", "kink": "yellow", "skip": "dim", "error": "bold red"}
MAX_VERBOSE_ROWS = 20


def render(run: RunResult, options: RenderOptions = RenderOptions(), console: Console | None = None) -> str:
    console, buffer = console_for(console, options.color, width=140)
    for spec in run.specs:
        if options.quiet and spec.status == "pass":
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
        if options.quiet and node.status in ("pass", "skip"):
            continue
        name = ("  └ " if depth else "") + node.name
        status = Text(node.status, style=STATUS_STYLE[node.status])
        if node.checked == "probes" and node.status == "pass":
            status.append(" (probes)", style="dim")
        errors = ("", "") if node.status == "skip" else (number(node.max_abs_error), number(node.max_rel_error))
        worst = worst_text(node) if node.status in ("fail", "kink") else ""
        table.add_row(Text(name, style="dim" if depth else ""), Text(node.op), Text(shape_text(node.shape)),
                      errors[0], errors[1], Text(worst), status)
        if options.verbose and node.status == "fail" and node.analytic is not None and node.numeric is not None:
            add_element_rows(table, node)
    console.print(table)
    for status, sentence in failure_lines(spec):
        console.print(Text("  " + sentence, style=STATUS_STYLE[status]))
    for suspect in spec.suspects:
        console.print(Text("  suspect: " + suspect_sentence(suspect), style="bold red"))
    for expectation in spec.expectations:
        if not expectation.ok:
            console.print(Text(f"  expect {expectation.what} (line {expectation.line}): "
                               f"{expect_values_text(expectation)} (abs error {number(expectation.max_abs_error)})"
                               + (f": {expectation.message}" if expectation.message else ""), style="bold red"))
        elif options.verbose:
            console.print(Text(f"  expect {expectation.what}: ok (abs error {number(expectation.max_abs_error)})",
                               style="green"))
    console.print()


def add_element_rows(table: Table, node) -> None:
    import numpy as np

    analytic, numeric = node.analytic.reshape(-1), node.numeric.reshape(-1)
    error = np.abs(analytic - numeric)
    bound = node.atol + node.rtol * np.abs(numeric)
    failing = np.flatnonzero(~(error <= bound))
    order = failing[np.argsort(-(error[failing] - bound[failing]))][:MAX_VERBOSE_ROWS]
    for flat in order:
        index = np.unravel_index(flat, node.shape) if node.shape else ()
        table.add_row(Text(f"      {index_text(index)}", style="red"), "", "", number(float(error[flat])), "",
                      Text(f"a={number(float(analytic[flat]), 6)} n={number(float(numeric[flat]), 6)}"), "")
    if len(failing) > MAX_VERBOSE_ROWS:
        table.add_row(Text(f"      … {len(failing) - MAX_VERBOSE_ROWS} more failing elements", style="dim"),
                      "", "", "", "", "", "")
