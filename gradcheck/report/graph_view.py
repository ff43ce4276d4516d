"""``gradcheck graph``: the graph with every node's value, gradient and status.

Built as plain data first (:func:`graph_view`), then drawn three ways:

- ``tree``: a Rich tree from the output down to the inputs; a node shared by several consumers
  is drawn once, later references say "(see above)";
- ``dot``: Graphviz, data flowing bottom to top, nodes coloured by status, each edge labelled
  with the gradient passed back along it;
- ``mermaid``: a ``flowchart BT`` with the same content; node ids are ``n<index>`` because
  node names contain ``/`` and ``#``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ..engine import BackwardPass
from ..explain import Quantity, quantity
from ..graph import Graph
from ..results import SpecResult
from .common import STATUS_STYLE as RESULT_STYLE
from .common import console_for

FORMATS = ("tree", "dot", "mermaid")

STATUS_STYLE = {**RESULT_STYLE, "constant": "dim"}
# (fill, border) per status for dot and mermaid
STATUS_COLOURS = {"pass": ("#d9f2d9", "#2e7d32"), "fail": ("#f8d0d0", "#c62828"), "kink": ("#fff1c2", "#f9a825"),
                  "skip": ("#eeeeee", "#9e9e9e"), "constant": ("#ffffff", "#bdbdbd")}


@dataclass
class ViewNode:
    id: str                          # n<index>: safe in dot and mermaid
    index: int
    name: str
    op: str                          # op name, "input" or "constant"
    kind: str                        # input | constant | op
    parent: str | None
    text: str
    value: Quantity
    grad: Quantity | None            # d output / d node (None: nothing flows here)
    status: str                      # pass | fail | kink | skip | constant
    args: list[int] = field(default_factory=list)
    is_output: bool = False
    message: str | None = None
    suspect: str | None = None       # "passes a wrong gradient to x": the op's backward rule is suspect


@dataclass
class ViewEdge:
    source: str                      # the argument's id (data flows source -> target)
    target: str                      # the consumer's id
    position: int                    # argument position at the consumer
    grad: Quantity | None            # the gradient the consumer passes back along this edge


@dataclass
class GraphView:
    name: str
    path: str
    status: str                      # the spec's status: pass | fail
    output: str
    nodes: list[ViewNode]
    edges: list[ViewEdge]

    @property
    def by_index(self) -> dict[int, ViewNode]:
        return {node.index: node for node in self.nodes}


def graph_view(graph: Graph, result: SpecResult, bwd: BackwardPass | None = None) -> GraphView:
    """The graph with each node's forward value, gradient and status (from ``check_loaded``'s result)."""
    results = {node.name: node for node in result.nodes}
    suspects: dict[str, list[str]] = {}
    for suspect in result.suspects:
        suspects.setdefault(suspect.node, []).append(suspect.argument_node)
    nodes = []
    for node in graph.nodes:
        checked = results.get(node.name) if node.kind != "constant" else None
        value = checked.value if checked is not None and checked.value is not None else node.value
        grad = None
        if checked is not None and checked.analytic is not None and node.requires_grad:
            grad = quantity(checked.analytic)
        elif bwd is not None and node.kind != "constant" and node.requires_grad and bwd.adjoints[node.index] is not None:
            grad = quantity(bwd.adjoints[node.index])
        nodes.append(ViewNode(id=f"n{node.index}", index=node.index, name=node.name, op=node.op_name, kind=node.kind,
                              parent=node.parent, text=node.text, value=quantity(value), grad=grad,
                              status=checked.status if checked is not None else "constant", args=list(node.args),
                              is_output=node.index == graph.output,
                              message=checked.message if checked is not None else None,
                              suspect=(f"suspect: passes a wrong gradient to {', '.join(suspects[node.name])}"
                                       if node.name in suspects else None)))
    edges = []
    for node in graph.nodes:
        for position, arg in enumerate(node.args):
            passed = bwd.edge_grads.get((node.index, position)) if bwd is not None else None
            if passed is not None and not graph.nodes[arg].requires_grad:
                passed = None
            edges.append(ViewEdge(f"n{arg}", f"n{node.index}", position, None if passed is None else quantity(passed)))
    return GraphView(name=result.name, path=result.path, status=result.status, output=graph.nodes[graph.output].name,
                     nodes=nodes, edges=edges)


def view_spec(path, overrides=None, options=None) -> GraphView:
    """Load, check and view a spec; raises SpecError for a bad spec."""
    import numpy as np

    from ..check import check_loaded
    from ..engine import backward, forward
    from ..graph import build_graph
    from ..judge import CheckOptions
    from ..spec import Overrides, load_spec

    graph = build_graph(load_spec(path, overrides or Overrides()))
    result = check_loaded(graph, options or CheckOptions())
    with np.errstate(all="ignore"):
        bwd = backward(graph, forward(graph, graph.spec.dtype), graph.spec.dtype)
    return graph_view(graph, result, bwd)


def _facts(node: ViewNode) -> list[str]:
    facts = [f"value {node.value.text()}"]
    if node.grad is not None:
        facts.append(f"grad {node.grad.text()}")
    return facts


# ------------------------------------------------------------------------------------------ tree

def _tree_label(node: ViewNode, seen: bool) -> Text:
    label = Text()
    label.append(node.name, style="bold" if node.parent is None and node.kind != "constant" else "")
    label.append(f"  {node.op}", style="cyan")
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
        label.append(f"  {node.suspect}", style="bold red")
    if node.message:
        label.append(f"  {node.message}", style="red" if node.status == "fail" else "dim")
    return label


def build_tree(view: GraphView) -> Tree:
    by_index = view.by_index
    header = Text()
    header.append(view.name, style="bold")
    header.append(f"  {view.path}  ", style="dim")
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
    return lines


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_dot(view: GraphView) -> str:
    lines = [f"digraph {dot_string(view.name)} {{",
             "  rankdir=BT;",
             f"  label={dot_string(f'{view.name} ({view.path}): {view.status}')};",
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
    return "".join(replacements.get(ch, ch) for ch in " ".join(text.split()))


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
