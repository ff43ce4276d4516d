"""``gradcheck graph``: the graph with every node's value, gradient and status.

Drawn from the plain-data view :class:`gradcheck.views.GraphView` (built by
:func:`gradcheck.views.graph_view` from a pipeline run), three ways:

- ``tree``: a Rich tree from the output down to the inputs; a node shared by several consumers
  is drawn once, later references say "(see above)";
- ``dot``: Graphviz, data flowing bottom to top, nodes coloured by status, each edge labelled
  with the gradient passed back along it;
- ``mermaid``: a ``flowchart BT`` with the same content; node ids are ``n<index>`` because
  node names contain ``/`` and ``#``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..format import visible_line
from ..views import GraphView, ViewNode
from .common import STATUS_STYLE as RESULT_STYLE
from .common import console_for

if TYPE_CHECKING:  # rich loads where the tree is drawn: dot, mermaid and the Markdown report's graph need none of it
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

FORMATS = ("tree", "dot", "mermaid")

STATUS_STYLE: dict[str, str] = {**{str(status): style for status, style in RESULT_STYLE.items()}, "constant": "dim"}
# (fill, border) per status for dot and mermaid
STATUS_COLOURS = {"pass": ("#d9f2d9", "#2e7d32"), "fail": ("#f8d0d0", "#c62828"), "kink": ("#fff1c2", "#f9a825"),
                  "skip": ("#eeeeee", "#9e9e9e"), "constant": ("#ffffff", "#bdbdbd")}


def _facts(node: ViewNode) -> list[str]:
    facts = [f"value {node.value.text()}"]
    if node.grad is not None:
        facts.append(f"grad {node.grad.text()}")
    return facts


# ------------------------------------------------------------------------------------------ tree

def _tree_label(node: ViewNode, seen: bool) -> Text:
    from rich.text import Text

    label = Text()
    label.append(visible_line(node.name), style="bold" if node.parent is None and node.kind != "constant" else "")
    label.append(f"  {visible_line(node.op)}", style="cyan")
    if node.kind == "constant":
        label.append(f"  {node.value.text()}", style="dim")
        return label
    if seen:
        label.append("  (see above)", style="dim")
        return label
    label.append("  " + " · ".join(_facts(node)))
    label.append("  ")
    label.append(node.status, style=STATUS_STYLE.get(node.status, ""))
    if node.is_output:
        label.append("  (output)", style="dim")
    if node.suspect:
        label.append(f"  {visible_line(node.suspect)}", style="bold red")
    if node.message:
        label.append(f"  {visible_line(node.message)}", style="red" if node.status == "fail" else "dim")
    return label


def build_tree(view: GraphView) -> Tree:
    from rich.text import Text
    from rich.tree import Tree

    by_index = view.by_index
    header = Text()
    header.append(visible_line(view.name), style="bold")
    header.append(f"  {visible_line(view.path)}  ", style="dim")
    header.append(view.status.upper(), style="green" if view.status == "pass" else "bold red")
    root = Tree(header)
    shown: set[int] = set()

    def add(branch: Tree, index: int) -> None:
        node = by_index[index]
        seen = index in shown and node.kind != "constant"
        child = branch.add(_tree_label(node, seen))
        if seen:
            return
        shown.add(index)
        for arg in node.args:
            add(child, arg)

    output = next(node.index for node in view.nodes if node.is_output)
    add(root, output)
    # nodes off the path to the output: each remaining sink with what it uses
    for node in reversed(view.nodes):
        if node.index not in shown and node.kind != "constant":
            branch = root.add(Text("not on a path to the output:", style="dim"))
            add(branch, node.index)
    return root


def render_tree(view: GraphView, color: bool = False, console: Console | None = None) -> str:
    console, buffer = console_for(console, color, width=200)
    tree = build_tree(view)
    if not console.is_terminal:  # a file or a pipe: one line per node, however long
        from rich.measure import Measurement

        needed = Measurement.get(console, console.options.update_width(100_000), tree).maximum
        console.width = max(console.width, needed)
    console.print(tree)
    return buffer.getvalue() if buffer is not None else ""


# ------------------------------------------------------------------------------------------ dot

def dot_string(text: str) -> str:
    """A double-quoted DOT string; backslashes and quotes escaped, newlines as \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n") + '"'


def _label_lines(node: ViewNode) -> list[str]:
    if node.kind == "constant":
        return [node.value.text()]
    lines = [node.name, node.op if node.kind != "op" or node.text == node.name else f"{node.op}: {_short(node.text)}"]
    lines += _facts(node)
    lines.append(node.status + (" (output)" if node.is_output else ""))
    if node.suspect:
        lines.append(node.suspect)
    return [visible_line(line) for line in lines]


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_dot(view: GraphView) -> str:
    lines = [f"digraph {dot_string(visible_line(view.name))} {{",
             "  rankdir=BT;",
             f"  label={dot_string(visible_line(f'{view.name} ({view.path}): {view.status}'))};",
             '  labelloc="t";',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    for node in view.nodes:
        fill, border = STATUS_COLOURS.get(node.status, STATUS_COLOURS["constant"])
        if node.suspect:
            border = STATUS_COLOURS["fail"][1]
        extra = ", penwidth=2" if node.is_output or node.status == "fail" or node.suspect else ""
        shape = ", shape=ellipse" if node.kind == "input" else ", shape=plaintext" if node.kind == "constant" else ""
        label = "\n".join(_label_lines(node))
        lines.append(f"  {node.id} [label={dot_string(label)}, fillcolor={dot_string(fill)}, "
                     f"color={dot_string(border)}{shape}{extra}];")
    for edge in view.edges:
        label = "" if edge.grad is None else f" [label={dot_string('∂ ' + edge.grad.text())}]"
        lines.append(f"  {edge.source} -> {edge.target}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ mermaid

def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: entity codes for # " < > and the like."""
    replacements = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;",
                    "|": "#124;", "[": "#91;", "]": "#93;", "{": "#123;", "}": "#125;"}
    return "".join(replacements.get(ch, ch) for ch in visible_line(" ".join(text.split())))


def render_mermaid(view: GraphView) -> str:
    lines = ["flowchart BT"]
    for node in view.nodes:
        label = "<br/>".join(mermaid_text(line) for line in _label_lines(node))
        if node.kind == "input":
            lines.append(f'  {node.id}(["{label}"])')
        else:
            lines.append(f'  {node.id}["{label}"]')
    for edge in view.edges:
        if edge.grad is None:
            lines.append(f"  {edge.source} --> {edge.target}")
        else:
            lines.append(f'  {edge.source} -->|"{mermaid_text("∂ " + edge.grad.text())}"| {edge.target}')
    for status, (fill, border) in STATUS_COLOURS.items():
        lines.append(f"  classDef {status} fill:{fill},stroke:{border},color:#000000")
    by_status: dict[str, list[str]] = {}
    for node in view.nodes:
        by_status.setdefault(node.status, []).append(node.id)
    for status, ids in by_status.items():
        lines.append(f"  class {','.join(ids)} {status}")
    return "\n".join(lines) + "\n"


def renderer(name: str):
    return {"tree": render_tree, "dot": render_dot, "mermaid": render_mermaid}[name]
