"""`gradcheck graph`: tree, Graphviz dot and Mermaid views of a checked graph."""
from __future__ import annotations

import re
import textwrap

import pytest
from click.testing import CliRunner

from gradcheck.cli import main
from gradcheck.graph import build_graph
from gradcheck.pipeline import check_graph, run
from gradcheck.report.graph_view import dot_string, mermaid_text, render_dot, render_mermaid, render_tree
from gradcheck.spec import load_spec
from gradcheck.views import graph_view


def view_spec(path):
    return graph_view(run(path))


NEURON = """
    name: neuron "gates" <1/x>
    inputs: {w0: 2.0, x0: -1.0, w1: -3.0, x1: -2.0, w2: -3.0}
    nodes:
      dot: w0*x0 + w1*x1 + w2
      f: 1 / (1 + exp(-dot))
"""

# x is used by two nodes (fan-out) and a diamond joins them again; the custom op's vjp is wrong
BROKEN = """
    name: broken cube
    inputs: {x: [0.5, -1.0, 2.0]}
    ops: {cube: "layers:Cube"}
    nodes:
      a: cube(x)
      b: sin(x)
      loss: sum(a * b)
"""
LAYERS = '''
class Cube:
    def forward(self, x):
        return x ** 3
    def vjp(self, g, out, x):
        return (g * x ** 2,)      # wrong: forgets the factor 3
'''


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def neuron(tmp_path):
    return write(tmp_path, NEURON)


@pytest.fixture
def broken(tmp_path):
    (tmp_path / "layers.py").write_text(LAYERS)
    return write(tmp_path, BROKEN, name="broken.yaml")


def edge_count(path) -> int:
    graph = build_graph(load_spec(path))
    return sum(len(node.args) for node in graph.nodes)


# ------------------------------------------------------------------------------------------ a small DOT parser

TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(->)|([{}\[\];=,])|([A-Za-z_][A-Za-z0-9_]*|-?[0-9.]+))', re.S)


def tokens(text: str) -> list[str]:
    out, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        assert match and match.end() > position, f"cannot tokenize DOT at {text[position:position + 40]!r}"
        out.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return out


def parse_dot(text: str):
    """digraph ID { statements } -> (declared node ids, edges, node attributes); asserts the structure."""
    toks = tokens(text)
    assert toks[0] == "digraph" and toks[2] == "{" and toks[-1] == "}"
    depth = 0
    for tok in toks:
        depth += {"{": 1, "}": -1}.get(tok, 0)
        assert depth >= 0
    assert depth == 0, "unbalanced braces"
    body, declared, edges, attributes = toks[3:-1], set(), [], {}
    i = 0

    def attrs(i):
        found = {}
        if i < len(body) and body[i] == "[":
            i += 1
            while body[i] != "]":
                key, equals, value = body[i], body[i + 1], body[i + 2]
                assert equals == "=", body[i:i + 3]
                found[key] = value
                i += 3
                if body[i] == ",":
                    i += 1
            i += 1
        return found, i

    while i < len(body):
        first = body[i]
        if body[i + 1] == "=":                       # graph attribute: key = value ;
            i += 3
        elif body[i + 1] == "->":                    # edge: a -> b [attrs] ;
            edges.append((first, body[i + 2]))
            _, i = attrs(i + 3)
        else:                                        # node statement: id [attrs] ;
            found, i = attrs(i + 1)
            if first not in ("node", "edge", "graph"):
                declared.add(first)
                attributes[first] = found
        assert body[i] == ";", f"statement not terminated near {body[i - 3:i + 1]}"
        i += 1
    return declared, edges, attributes


def unquote(token: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), token[1:-1])


# ------------------------------------------------------------------------------------------ dot

def test_dot_parses_and_declares_every_edge_endpoint(neuron):
    view = view_spec(neuron)
    text = render_dot(view)
    declared, edges, attributes = parse_dot(text)
    assert len(edges) == edge_count(neuron) == 14
    assert all(a in declared and b in declared for a, b in edges)
    assert declared == {node.id for node in view.nodes}
    labels = {unquote(a["label"]).split("\n")[0] for a in attributes.values()}
    assert {"w0", "x0", "w1", "x1", "w2", "dot", "dot/mul#1", "f/exp#1", "f"} <= labels
    # the spec's name has quotes and angle brackets: escaped, and the parse above still holds
    assert r'digraph "neuron \"gates\" <1/x>" {' in text
    f = next(a for a in attributes.values() if unquote(a["label"]).startswith("f\n"))
    assert "value 0.7311" in unquote(f["label"]) and "pass (output)" in unquote(f["label"])
    # the edge into 1/x carries the gradient passed back along it: -1/1.37^2 = -0.53
    assert '[label="∂ -0.5344"]' in text


def test_dot_string_escapes_quotes_and_backslashes():
    assert dot_string('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'
    declared, _, _ = parse_dot(f'digraph {dot_string("x")} {{ n0 [label={dot_string(chr(34) * 3 + chr(92))}]; }}')
    assert declared == {"n0"}


def test_dot_colours_a_failing_node_red(broken):
    view = view_spec(broken)
    statuses = {node.name: node.status for node in view.nodes}
    assert statuses["x"] == "fail" and statuses["a"] == "pass"
    _, _, attributes = parse_dot(render_dot(view))
    x = next(a for a in attributes.values() if unquote(a["label"]).startswith("x\n"))
    assert x["fillcolor"] == '"#f8d0d0"' and unquote(x["label"]).endswith("fail")
    # the op whose backward rule is wrong is named on its node
    a = next(a for a in attributes.values() if unquote(a["label"]).startswith("a\n"))
    assert unquote(a["label"]).endswith("suspect: passes a wrong gradient to x")
    assert "suspect: passes a wrong gradient to x" in render_tree(view)


# ------------------------------------------------------------------------------------------ mermaid

def test_mermaid_has_one_line_per_edge_and_safe_ids(neuron):
    view = view_spec(neuron)
    lines = render_mermaid(view).splitlines()
    assert lines[0] == "flowchart BT"
    edge_lines = [line for line in lines if "-->" in line]
    assert len(edge_lines) == edge_count(neuron)
    ids = {node.id for node in view.nodes}
    for line in edge_lines:
        match = re.fullmatch(r'\s*(n\d+) -->(?:\|"[^"]*"\|)? (n\d+)', line)
        assert match, line
        assert match.group(1) in ids and match.group(2) in ids
    declarations = [line for line in lines if re.match(r"\s*n\d+[\[(]", line)]
    assert len(declarations) == len(view.nodes)
    for line in declarations:  # labels: one quoted string without raw quotes, # or brackets inside
        label = re.fullmatch(r'\s*n\d+(?:\["(.*)"\]|\(\["(.*)"\]\))', line)
        assert label, line
        inner = label.group(1) or label.group(2)
        assert '"' not in inner and not re.search(r"#(?!\w+;)", inner) and "[" not in inner
    assert any("dot/mul#35;1" in line for line in declarations)  # '#' in names as an entity code
    assert any(line.strip().startswith("class ") and line.endswith(" pass") for line in lines)


def test_mermaid_text_escapes_special_characters():
    assert mermaid_text('a "b" <c> #1 [d]') == "a #quot;b#quot; #lt;c#gt; #35;1 #91;d#93;"


# ------------------------------------------------------------------------------------------ tree

def test_tree_mentions_every_node_and_shows_shared_nodes_once(broken):
    view = view_spec(broken)
    text = render_tree(view)
    for node in view.nodes:
        assert node.name in text, node.name
    # x feeds a = cube(x) and b = sin(x): drawn in full once, then "(see above)"
    x_lines = [line for line in text.splitlines() if re.search(r"[─ ]x  input", line)]
    assert len(x_lines) == 2
    assert "(see above)" not in x_lines[0] and "fail" in x_lines[0] and "(see above)" in x_lines[1]
    lines = text.splitlines()
    assert "loss" in lines[1] and "(output)" in lines[1]  # the root is the output
    assert "FAIL" in text.splitlines()[0]


def test_tree_lists_nodes_off_the_path_to_the_output(tmp_path):
    path = write(tmp_path, """
        inputs: {x: 2.0}
        nodes:
          unused: exp(x)
          f: x * x
        output: f
    """)
    text = render_tree(view_spec(path))
    assert "unused" in text and "not on a path to the output" in text


# ------------------------------------------------------------------------------------------ the command

def test_cli_graph_formats(neuron, broken, tmp_path):
    runner = CliRunner()
    tree = runner.invoke(main, ["graph", str(neuron)])
    assert tree.exit_code == 0 and "dot/mul#1" in tree.output and "\x1b[" not in tree.output
    dot = runner.invoke(main, ["graph", str(neuron), "--format", "dot"])
    assert dot.exit_code == 0 and parse_dot(dot.stdout)[1]
    out = tmp_path / "g.mmd"
    assert runner.invoke(main, ["graph", str(neuron), "--format", "mermaid", "-o", str(out)]).exit_code == 0
    assert out.read_text().startswith("flowchart BT")
    failing = runner.invoke(main, ["graph", str(broken)])
    assert failing.exit_code == 0 and "fail" in failing.output  # graph draws; `run` gates


def test_cli_graph_spec_error_exits_2(tmp_path):
    bad = write(tmp_path, "inputs: {x: 1.0}\nnodes:\n  y: x +* 2\n", name="bad.yaml")
    result = CliRunner().invoke(main, ["graph", str(bad), "--format", "dot"])
    assert result.exit_code == 2 and result.stdout == ""
    assert re.match(rf"{re.escape(str(bad))}:3:\d+: error: ", result.stderr)
    assert "Traceback" not in result.stderr


def test_graph_view_uses_the_check_statuses(neuron):
    graph = build_graph(load_spec(neuron))
    result = check_graph(graph).result
    view = view_spec(neuron)
    assert {n.name: n.status for n in view.nodes if n.kind != "constant"} == {n.name: n.status for n in result.nodes}


def test_cli_graph_help_documents_the_exit_status():
    result = CliRunner().invoke(main, ["graph", "--help"])
    assert result.exit_code == 0 and "Exit status: 0" in result.output and "tree|dot|mermaid" in result.output
