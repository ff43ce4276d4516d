"""The backward pass as a textbook walk-through, built as plain data (renderers live in report/).

Node by node in reverse order: the node's forward value, the upstream gradient it receives
(its adjoint: the sum over its consumers), and for each argument the gradient it passes on
and, where that is meaningful, the local derivative (passed = upstream x local).

    walk = walkthrough(pipeline.run("specs/neuron_gates.yaml", judge=False))
    walk.steps  # or, from the parts: explain(graph, forward_pass, backward_pass)

Scalars and small arrays (at most ``SMALL`` elements) are shown in full; larger arrays by their
shape and norm.  Formulas come from the op record only (gradcheck/ops/base.py): an elementwise
op's ``local_derivative``, or the ``vjp_formula`` of an op whose Jacobian is not diagonal (the rule
for the gradient passed on) -- a string for every argument or a tuple with one per argument,
declared alike by built-in and custom ops.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .engine import BackwardPass, ForwardPass
from .format import number
from .graph import Graph, Node
from .results import Diagnosis, RuleSource, Suspect

if TYPE_CHECKING:  # explain consumes a pipeline run; it never starts one
    from .pipeline import Checked

SMALL = 6  # arrays with at most this many elements are shown in full

CHAIN_RULE = ("chain rule: gradient passed to an argument = upstream gradient × local derivative "
              "(∂L/∂x = ∂L/∂z · ∂z/∂x); where a value feeds several nodes, the gradients they pass back add up")

@dataclass
class Quantity:
    """An array as the walk-through shows it: full values when small, else shape and norm."""

    shape: list[int]
    values: float | list | None      # the full value (a number, or nested lists) when size <= SMALL
    norm: float                      # Frobenius norm (|value| for a scalar)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def scalar(self) -> float | None:
        """The single number, for a scalar or a one-element array."""
        if self.size != 1 or self.values is None:
            return None
        value = self.values
        while isinstance(value, list):
            value = value[0]
        return value

    def text(self, digits: int = 4) -> str:
        if self.values is not None:
            return _values_text(self.values, digits)
        return f"{'×'.join(str(n) for n in self.shape)} array, norm {_number(self.norm, digits)}"


def quantity(value) -> Quantity:
    array = np.asarray(value)
    if array.dtype.kind == "c":
        array = array.real
    array = array.astype(np.float64) if array.dtype.kind in "biuf" else array
    with np.errstate(all="ignore"):
        norm = float(np.sqrt(np.sum(np.square(array)))) if array.size else 0.0
    values = None
    if array.size <= SMALL:
        values = float(array) if array.ndim == 0 else array.tolist()
    return Quantity(list(array.shape), values, norm)


@dataclass
class Contribution:
    """One consumer's share of a node's upstream gradient (shown when several add up)."""

    consumer: str
    argument: int
    passed: Quantity


@dataclass
class ArgumentStep:
    position: int
    name: str                        # the argument node's name
    kind: str                        # input | op | constant
    differentiable: bool             # false for constants and data: nothing is passed to them
    passed: Quantity | None          # the gradient this node passes to the argument (edge gradient)
    local: float | list | None       # passed / upstream for elementwise cases (None where not meaningful)
    formula: str | None              # "-1/x²" (a local derivative) or "g @ bᵀ" (a rule for the passed gradient)
    formula_kind: str | None         # "local" | "rule" | None
    wrong: str | None = None         # the op's vjp passes a wrong gradient here: what the check found
    diagnosis: Diagnosis | None = None
    source: RuleSource | None = None  # the line of the custom rule to fix


@dataclass
class Step:
    index: int
    name: str
    op: str                          # the op's name, or "input"
    kind: str                        # op | input
    parent: str | None
    text: str                        # the expression text
    value: Quantity                  # forward value
    upstream: Quantity | None        # the node's adjoint (d output / d node); None: nothing flows here
    contributions: list[Contribution] = field(default_factory=list)
    arguments: list[ArgumentStep] = field(default_factory=list)
    note: str | None = None


def explain(graph: Graph, fwd: ForwardPass, bwd: BackwardPass) -> list[Step]:
    """The walk-through: op nodes from the output back, then the inputs (last input first).

    Op nodes that no gradient reaches (they do not lead to the output, or they only combine
    constants and data) are left out; constants appear only as arguments.
    """
    steps = []
    for node in reversed(graph.nodes[: graph.output + 1]):
        if node.kind == "constant":
            continue
        if node.kind == "op" and (not node.requires_grad or bwd.adjoints[node.index] is None):
            continue
        steps.append(_step(graph, fwd, bwd, node))
    return steps


def _step(graph: Graph, fwd: ForwardPass, bwd: BackwardPass, node: Node) -> Step:
    adjoint = bwd.adjoints[node.index]
    step = Step(index=node.index, name=node.name, op=node.op_name, kind=node.kind, parent=node.parent,
                text=node.text, value=quantity(fwd.values[node.index]),
                upstream=None if adjoint is None or not node.requires_grad else quantity(adjoint))
    incoming = [(consumer, position) for consumer, position in graph.consumers[node.index]
                if (consumer, position) in bwd.edge_grads]
    if len(incoming) > 1:
        step.contributions = [Contribution(graph.nodes[c].name, p, quantity(bwd.edge_grads[(c, p)]))
                              for c, p in incoming]
    notes = []
    if node.index == graph.output:
        if fwd.projection is None:
            notes.append("the output: the backward pass starts here with upstream gradient 1")
        else:
            notes.append(f"the output has shape {tuple(np.shape(fwd.output_value))}: it is reduced to "
                         f"sum(v * {node.name}) with a fixed random v, so the upstream gradient here is v")
    if node.kind == "input" and not node.requires_grad:
        notes.append("data (no gradient)")
    if node.index in bwd.faults:
        notes.append(f"the op's vjp failed: {bwd.faults[node.index]}")
    step.note = "; ".join(notes) or None
    if node.kind == "op":
        formulas = _formulas(graph, node)
        for position, arg in enumerate(node.args):
            arg_node = graph.nodes[arg]
            differentiable = arg_node.requires_grad and arg_node.kind != "constant"
            passed = bwd.edge_grads.get((node.index, position)) if differentiable else None
            formula, kind = formulas[position] if position < len(formulas) else (None, None)
            step.arguments.append(ArgumentStep(
                position=position, name=arg_node.name, kind=arg_node.kind, differentiable=differentiable,
                passed=None if passed is None else quantity(passed),
                local=_local(node, adjoint, passed) if differentiable else None,
                formula=formula if differentiable else None, formula_kind=kind if differentiable else None))
    return step


def _local(node: Node, upstream, passed) -> float | list | None:
    """passed / upstream where that is the local derivative: scalars, and small elementwise cases."""
    if upstream is None or passed is None:
        return None
    upstream = np.asarray(upstream, dtype=np.float64) if np.asarray(upstream).dtype.kind != "c" else np.real(upstream)
    passed = np.asarray(passed)
    passed = np.real(passed).astype(np.float64) if passed.dtype.kind in "fc" else passed.astype(np.float64)
    if upstream.size == 1 and passed.size == 1:
        u, p = float(upstream.reshape(-1)[0]), float(passed.reshape(-1)[0])
        return p / u if u != 0 and math.isfinite(u) else None
    elementwise = node.op_info.local_derivative is not None
    if elementwise and upstream.shape == passed.shape and upstream.size <= SMALL and np.all(upstream != 0):
        with np.errstate(all="ignore"):
            return (passed / upstream).tolist()
    return None


# ------------------------------------------------------------------------------------------ formulas

def _formulas(graph: Graph, node: Node) -> list[tuple[str | None, str | None]]:
    """Per argument: (formula text, "local" | "rule"), placeholders filled in, from the op record."""
    if node.op_info.local_derivative is not None:
        declared, kind = node.op_info.local_derivative, "local"
    elif node.op_info.vjp_formula is not None:
        declared, kind = node.op_info.vjp_formula, "rule"
    else:
        return []
    templates = (declared,) * len(node.args) if isinstance(declared, str) else tuple(declared)
    symbols = _symbols(graph, node)
    return [(_fill(template, symbols), kind) if isinstance(template, str) else (None, None) for template in templates]


def _symbols(graph: Graph, node: Node) -> dict[str, str]:
    """What {x}, {a}, {b} (and the op's own argument names) stand for at this node."""
    args = [graph.nodes[a] for a in node.args]
    variable = [a for a in args if a.kind != "constant"]
    symbols: dict[str, str] = {}
    letters = ["a", "b", "c", "d"]
    names = [n.lstrip("*") for n in node.op_info.args]
    for position, arg in enumerate(args):
        if arg.kind == "constant":
            text = _constant_text(arg)
        elif len(variable) == 1:
            text = "x"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", arg.name) and len(arg.name) <= 16:
            text = arg.name
        else:
            text = names[position] if position < len(names) and names[position] else letters[position % 4]
        if position < len(letters):
            symbols[letters[position]] = text
        if position < len(names) and names[position]:
            symbols[names[position]] = text
    if len(args) == 1:
        symbols["x"] = symbols.get("x", symbols.get("a", "x"))
    return symbols


def _constant_text(node: Node) -> str:
    value = np.asarray(node.value)
    if value.size == 1:
        number = float(value.reshape(-1)[0])
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:g}"
    return node.text or "c"


def _fill(template: str, symbols: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        key = match.group(1)
        text = symbols.get(key, key)
        whole = match.group(0) == template
        if not whole and (text.startswith("-") or " " in text):
            return f"({text})"
        return text

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", replace, template)


# ------------------------------------------------------------------------------------------ numbers

def _number(value, digits: int = 4) -> str:
    return number(None if value is None else float(value), digits)


def _values_text(values, digits: int = 4) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_values_text(v, digits) for v in values) + "]"
    return _number(values, digits)


def number_text(value, digits: int = 4) -> str:
    """A number, or nested lists of numbers, with ``digits`` significant digits."""
    return _values_text(value, digits)


# ------------------------------------------------------------------------------------------ the whole walk-through

@dataclass
class Walkthrough:
    """The steps with their context: which spec, which output, in which precision."""

    name: str
    path: str
    description: str
    output: str
    output_value: Quantity
    objective: str                   # what is differentiated: the output's name, or "sum(v * out)"
    dtype: str
    chain_rule: str
    steps: list[Step]

    @property
    def input_steps(self) -> list[Step]:
        """The inputs in the order the spec declares them."""
        return sorted((s for s in self.steps if s.kind == "input"), key=lambda s: s.index)

    @property
    def op_steps(self) -> list[Step]:
        return [s for s in self.steps if s.kind != "input"]


def walkthrough(checked: Checked, suspects: list[Suspect] | None = None) -> Walkthrough:
    """The walk-through of one pipeline run (``pipeline.run(path, judge=False)``), in the spec's dtype; the
    suspects (the judged run's, unless given) mark the arguments their op passes a wrong gradient."""
    graph, fwd, bwd = checked.graph, checked.analytic, checked.backward
    spec = graph.spec
    output = graph.nodes[graph.output].name
    objective = output if fwd.projection is None else f"sum(v * {output})"
    steps = explain(graph, fwd, bwd)
    if suspects is None and checked.result is not None:
        suspects = checked.result.suspects
    wrong = {(suspect.node, suspect.argument): suspect for suspect in suspects or []}
    for step in steps:
        for argument in step.arguments:
            suspect = wrong.get((step.name, argument.position))
            if suspect is not None:
                argument.wrong, argument.diagnosis, argument.source = suspect.message, suspect.diagnosis, suspect.source
    return Walkthrough(name=spec.name, path=spec.path, description=spec.description or "", output=output,
                       output_value=quantity(fwd.output_value), objective=objective, dtype=spec.dtype,
                       chain_rule=CHAIN_RULE, steps=steps)
