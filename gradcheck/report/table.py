"""--format table: a Rich table per spec, named nodes first with their automatic nodes under them.

The report is first put together as lines and a grid of cells (what each says, in which style); Rich draws
them.  Where nothing is coloured or styled (a pipe, a file, a CI log) and every line and the grid fit the width
as they are, the text Rich would print is laid out here instead (``plain_text``): the same characters, without
importing Rich (about 90 M instructions) or running its layout (about 40 M for a small report) - a sixth of
a one-spec run.  Anything else (a character that may not be one cell wide, a word longer than the width, a grid
Rich would have to shrink) is drawn by Rich.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


class Line:
    """Text in styled pieces over a base style (Rich's Text), indented by ``indent`` columns (wrapped lines
    keep the indent)."""

    __slots__ = ("pieces", "style", "indent")

    def __init__(self, text: str = "", style: str = "", indent: int = 0):
        self.pieces: list[tuple[str, str]] = [(text, "")] if text else []
        self.style = style
        self.indent = indent

    def append(self, text: str, style: str) -> Line:
        self.pieces.append((text, style))
        return self

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.pieces)


class Column:
    __slots__ = ("header", "justify", "overflow", "no_wrap", "min_width")

    def __init__(self, header: str, justify: str = "left", overflow: str | None = None, no_wrap: bool = False,
                 min_width: int | None = None):
        self.header, self.justify, self.overflow, self.no_wrap, self.min_width = \
            header, justify, overflow, no_wrap, min_width


class Grid:
    """The node table: its columns and rows of cells (a Line, or a plain string as Rich reads one)."""

    __slots__ = ("columns", "rows")

    def __init__(self, columns: list[Column]):
        self.columns = columns
        self.rows: list[list[Line | str]] = []


BLANK = None  # an empty line
Block = Line | Grid | None


def render(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS, console: Console | None = None) -> str:
    if console is None and not options.color:  # a file, a test: text without styles
        text = plain_text(run, options, options.width)
        if text is not None:
            return text
    console, buffer = console_for(console, options.color, width=options.width)
    draw(console, report_blocks(run, options))
    if buffer is None:
        return ""
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())  # no table padding at line ends


def report_blocks(run: RunResult, options: RenderOptions) -> list[Block]:
    blocks: list[Block] = []
    for spec in run.specs:
        if options.quiet and spec.status == Status.PASS:
            continue
        blocks.extend(spec_blocks(spec, options))
    blocks.append(Line(summary_line(run), style="green" if run.ok else "bold red"))
    return blocks


def spec_blocks(spec: SpecResult, options: RenderOptions) -> list[Block]:
    header = Line()
    header.append(spec.status.upper(), STATUS_STYLE[spec.status])
    header.append(f"  {visible_line(spec.name)}", "bold")
    header.append(f"  {visible_line(spec.path)}", "dim")
    if spec.error is None and spec.dtype != "float64":  # float64 is the default: said where it is not
        header.append(f"  ({precision_text(spec)})", "dim")
    blocks: list[Block] = [header]
    if spec.error is not None:
        where = error_where(spec.path, spec.error)
        if options.errors_inline:
            blocks.append(indented(f"{where}: {spec.error.message}", "red"))
        blocks.append(BLANK)
        return blocks
    if spec.description and not options.quiet:
        blocks.append(indented(" ".join(spec.description.split()), "italic"))
    output = spec.output_value
    if output is not None and getattr(output, "ndim", 0) == 0:
        blocks.append(indented(f"output {spec.output_name} = {number(float(output), 8)}"))
    for note in spec.notes:
        blocks.append(indented(f"note: {note}", "dim"))
    if spec.status == Status.SKIP:  # nothing was checked: no table
        blocks.append(BLANK)
        return blocks

    shown = [(node, depth) for node, depth in display_order(spec)
             if not (options.quiet and node.status in (Status.PASS, Status.SKIP))]
    worst_shown = any(_worst(node) for node, _ in shown) or (options.verbose and any(n.elements for n, _ in shown))
    # narrow terminals: names fold onto a second line, headers wrap at their spaces; no column is dropped
    grid = Grid([Column("node", overflow="fold"), Column("op", overflow="fold"),
                 Column("shape", justify="right", overflow="fold"), Column("max abs err", justify="right"),
                 Column("max rel err", justify="right"),
                 *([Column("worst element", min_width=12)] if worst_shown else []), Column("status", no_wrap=True)])
    for node, depth in shown:
        name = ("  └ " if depth else "") + visible_line(node.name)
        status_text = Line(node.status, style=STATUS_STYLE.get(node.status, ""))
        if node.checked == "probes" and node.status == Status.PASS:
            status_text.append(" (probes)", "dim")
        errors = ("", "") if node.status == Status.SKIP else (number(node.max_abs_error), number(node.max_rel_error))
        cells: list[Line | str] = [Line(name, style="dim" if depth else ""), Line(visible_line(node.op)),
                                   Line(shape_text(node.shape)), errors[0], errors[1]]
        grid.rows.append([*cells, *([Line(_worst(node))] if worst_shown else []), status_text])
        if options.verbose:
            add_element_rows(grid, node, worst_shown)
    blocks.append(grid)
    for suspect in spec.suspects:  # the cause first, then what it caused
        blocks.append(indented("suspect: " + suspect_sentence(suspect), "bold red"))
    for status, sentence in failure_lines(spec):
        blocks.append(indented(sentence, STATUS_STYLE.get(status, "")))
    for expectation in spec.expectations:
        if not expectation.ok:
            blocks.append(indented(f"expect {expectation.what} (line {expectation.line}): "
                                   f"{expect_values_text(expectation)} (abs error {number(expectation.max_abs_error)})"
                                   + (f": {expectation.message}" if expectation.message else ""), "bold red"))
        elif options.verbose:
            blocks.append(indented(f"expect {expectation.what}: ok (abs error {number(expectation.max_abs_error)})",
                                   "green"))
    blocks.append(BLANK)
    return blocks


def indented(text: str, style: str = "") -> Line:
    """A line of user text, indented under its spec's header; wrapped lines keep the indent."""
    return Line(visible_line(text), style=style, indent=2)


# ------------------------------------------------------------------------------------------ drawn by Rich
def draw(console: Console, blocks: list[Block]) -> None:
    for block in blocks:
        if block is BLANK:
            console.print()
        elif isinstance(block, Grid):
            console.print(rich_table(block))
        else:
            console.print(rich_text(block))


def rich_text(line: Line):
    from rich.padding import Padding
    from rich.text import Text

    text = Text(style=line.style)
    for piece, style in line.pieces:
        text.append(piece, style=style or None)
    return Padding(text, (0, 0, 0, line.indent)) if line.indent else text


def rich_table(grid: Grid) -> Table:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in grid.columns:
        settings: dict[str, Any] = {"justify": column.justify, "overflow": column.overflow,
                                    "no_wrap": column.no_wrap, "min_width": column.min_width}
        table.add_column(column.header, **{name: value for name, value in settings.items() if value})  # else Rich's
    for row in grid.rows:
        table.add_row(*(cell if isinstance(cell, str) else rich_text(cell) for cell in row))
    return table


# ------------------------------------------------------------------------------------------ laid out here
# characters one cell wide in every terminal (and in Rich's measure): printable ASCII and the marks the report
# itself draws; any other character leaves the layout to Rich
_ONE_CELL = re.compile(r"[\x20-\x7e└…±·×]*")
_WORD = re.compile(r"\s*\S+\s*")  # a word and the spaces after it, as Rich's wrap reads words


def plain_text(run: RunResult, options: RenderOptions, width: int) -> str | None:
    """The text Rich prints for the report on a console of ``width`` columns that draws no styles, without the
    spaces it leaves at line ends; None where the layout is Rich's to do."""
    lines: list[str] = []
    for block in report_blocks(run, options):
        laid_out = [""] if block is BLANK else grid_lines(block, width) if isinstance(block, Grid) \
            else text_lines(block, width)
        if laid_out is None:
            return None
        lines.extend(laid_out)
    return "".join(line + "\n" for line in lines)


def text_lines(line: Line, width: int) -> list[str] | None:
    """Rich's word wrap of one line of text at ``width`` (a word is broken only before it, where it would
    pass the edge); None for a character not known to be one cell wide or a word longer than a line."""
    text, room = line.plain, width - line.indent
    if not _ONE_CELL.fullmatch(text):
        return None
    starts, used = [0], 0
    for word in _WORD.finditer(text):
        length = len(word.group().rstrip())
        if length > room:
            return None
        if used and room - used < length:
            starts.append(word.start())
            used = 0
        used += len(word.group())
    ends = starts[1:] + [len(text)]
    return [(" " * line.indent + text[start:end]).rstrip(" ") for start, end in zip(starts, ends, strict=True)]


def grid_lines(grid: Grid, width: int) -> list[str] | None:
    """The grid as Rich's borderless table draws it when every cell fits on its line: each column as wide as
    its widest cell (or its minimum), cells one space apart from the column edge on either side inside the
    table, numbers and shapes to the right; None where the table would not fit ``width`` that way."""
    rows = [[column.header for column in grid.columns],
            *([cell if isinstance(cell, str) else cell.plain for cell in row] for row in grid.rows)]
    if not all(_ONE_CELL.fullmatch(cell) for row in rows for cell in row):
        return None
    last = len(grid.columns) - 1
    pads = [(0 if index == 0 else 1, 0 if index == last else 1) for index in range(len(grid.columns))]
    widths = [max(len(row[index]) for row in rows) for index in range(len(grid.columns))]
    widths = [max(content, column.min_width or 0) for content, column in zip(widths, grid.columns, strict=True)]
    if sum(content + left + right for content, (left, right) in zip(widths, pads, strict=True)) > width:
        return None
    laid_out = []
    for row in rows:
        cells = []
        for cell, content, (left, right), column in zip(row, widths, pads, grid.columns, strict=True):
            aligned = cell.rstrip(" ").rjust(content) if column.justify == "right" else cell.ljust(content)
            cells.append(" " * left + aligned + " " * right)
        laid_out.append("".join(cells).rstrip(" "))
    return laid_out


def _worst(node: NodeResult) -> str:
    return worst_text(node) if node.status not in (Status.PASS, Status.SKIP) else ""


def add_element_rows(grid: Grid, node: NodeResult, worst_column: bool = True) -> None:
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
            grid.rows.append([Line(f"      {index_text(element.index)}", style=STATUS_STYLE[status]), "", "",
                              number(element.abs_error), "", *([Line(shown)] if worst_column else []),
                              Line(status, style=STATUS_STYLE[status])])
        if total > len(listed) and listed:
            noun = {Status.FAIL: "failing elements", Status.KINK: "elements at kinks",
                    Status.INCONCLUSIVE: "inconclusive elements"}[status]
            grid.rows.append([Line(f"      … {total - len(listed)} more {noun}", style="dim"), "", "", "", "",
                              *([""] if worst_column else []), ""])
