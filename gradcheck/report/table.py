"""--format table: a Rich table per spec, named nodes first with their automatic nodes under them."""
from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..format import visible_line
from ..results import NodeResult, RunResult, SpecResult, Status
from . import DEFAULT_OPTIONS, RenderOptions
from .common import (
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


def render(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS, console: Console | None = None) -> str:
    console, buffer = console_for(console, options.color, width=options.width)
    for spec in run.specs:
        if options.quiet and spec.status == Status.PASS:
            continue
        print_spec(console, spec, options)
    style = "green" if run.ok else "bold red"
    console.print(Text(summary_line(run), style=style))
    if buffer is None:
        return ""
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())  # no table padding at line ends


def print_spec(console: Console, spec: SpecResult, options: RenderOptions) -> None:
    header = Text()
    header.append(spec.status.upper(), style=STATUS_STYLE[spec.status])
    header.append(f"  {visible_line(spec.name)}", style="bold")
    header.append(f"  {visible_line(spec.path)}", style="dim")
    if spec.error is None and spec.dtype != "float64":  # float64 is the default: said where it is not
        header.append(f"  ({precision_text(spec)})", style="dim")
    console.print(header)
    if spec.error is not None:
        where = error_where(spec.path, spec.error)
        if options.errors_inline:
            console.print(indented(f"{where}: {spec.error.message}", "red"))
        console.print()
        return
    if spec.description and not options.quiet:
        console.print(indented(" ".join(spec.description.split()), "italic"))
    output = spec.output_value
    if output is not None and getattr(output, "ndim", 0) == 0:
        console.print(indented(f"output {spec.output_name} = {number(float(output), 8)}"))
    for note in spec.notes:
        console.print(indented(f"note: {note}", "dim"))
    if spec.status == Status.SKIP:  # nothing was checked: no table
        console.print()
        return

    shown = [(node, depth) for node, depth in display_order(spec)
             if not (options.quiet and node.status in (Status.PASS, Status.SKIP))]
    worst_shown = any(_worst(node) for node, _ in shown) or (options.verbose and any(n.elements for n, _ in shown))
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    # narrow terminals: names fold onto a second line, headers wrap at their spaces; no column is dropped
    table.add_column("node", overflow="fold")
    table.add_column("op", overflow="fold")
    table.add_column("shape", justify="right", overflow="fold")
    table.add_column("max abs err", justify="right")
    table.add_column("max rel err", justify="right")
    if worst_shown:
        table.add_column("worst element", min_width=12)
    table.add_column("status", no_wrap=True)
    for node, depth in shown:
        name = ("  └ " if depth else "") + visible_line(node.name)
        status_text = Text(node.status, style=STATUS_STYLE.get(node.status, ""))
        if node.checked == "probes" and node.status == Status.PASS:
            status_text.append(" (probes)", style="dim")
        errors = ("", "") if node.status == Status.SKIP else (number(node.max_abs_error), number(node.max_rel_error))
        cells: list[Text | str] = [Text(name, style="dim" if depth else ""), Text(visible_line(node.op)),
                                   Text(shape_text(node.shape)),
                                   errors[0], errors[1]]
        table.add_row(*cells, *([Text(_worst(node))] if worst_shown else []), status_text)
        if options.verbose:
            add_element_rows(table, node, worst_shown)
    console.print(table)
    for suspect in spec.suspects:  # the cause first, then what it caused
        console.print(indented("suspect: " + suspect_sentence(suspect), "bold red"))
    for status, sentence in failure_lines(spec):
        console.print(indented(sentence, STATUS_STYLE.get(status, "")))
    for expectation in spec.expectations:
        if not expectation.ok:
            console.print(indented(f"expect {expectation.what} (line {expectation.line}): "
                               f"{expect_values_text(expectation)} (abs error {number(expectation.max_abs_error)})"
                               + (f": {expectation.message}" if expectation.message else ""), "bold red"))
        elif options.verbose:
            console.print(indented(f"expect {expectation.what}: ok (abs error {number(expectation.max_abs_error)})", "green"))
    console.print()


def indented(text: str, style: str = "") -> Padding:
    """A line of user text, indented under its spec's header; wrapped lines keep the indent."""
    return Padding(Text(visible_line(text), style=style), (0, 0, 0, 2))


def _worst(node: NodeResult) -> str:
    return worst_text(node) if node.status not in (Status.PASS, Status.SKIP) else ""


def add_element_rows(table: Table, node: NodeResult, worst_column: bool = True) -> None:
    """A row per element the judge did not pass (the worst of each kind), with its status, then how many more."""
    for status, total in ((Status.FAIL, node.failing), (Status.INCONCLUSIVE, node.inconclusive),
                          (Status.KINK, node.kinks)):
        listed = node.elements_of(status)
        for element in listed:
            shown = f"a={number(element.analytic, 6)} n={number(element.numeric, 6)}"
            if element.numeric_error:
                shown += f" ±{number(element.numeric_error, 2)}"
            if element.right is not None:
                shown += f" slopes {number(element.right, 6)}/{number(element.left, 6)}"
            values = Text(shown)
            table.add_row(Text(f"      {index_text(element.index)}", style=STATUS_STYLE[status]), "", "",
                          number(element.abs_error), "", *([values] if worst_column else []),
                          Text(status, style=STATUS_STYLE[status]))
        if total > len(listed) and listed:
            noun = {Status.FAIL: "failing elements", Status.KINK: "elements at kinks",
                    Status.INCONCLUSIVE: "inconclusive elements"}[status]
            table.add_row(Text(f"      … {total - len(listed)} more {noun}", style="dim"), "", "", "", "",
                          *([""] if worst_column else []), "")
