"""Renderers for ``gradcheck explain``: the walk-through as text (the textbook style), JSON or Markdown.

    1. div  f = 1 / (1 + exp(-dot)) = 0.7311 · upstream 1 → passes -0.5344 to f/add#1 (local derivative -1/x² = -0.5344)

Each takes a :class:`gradcheck.explain.Walkthrough` and returns a string; ``render_text`` can
also print straight to a Rich console (colour where the console has it).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict

from rich.console import Console
from rich.text import Text

from ..explain import ArgumentStep, Step, Walkthrough, number_text
from ..format import visible_line
from .common import console_for

FORMATS = ("text", "json", "markdown")


# ------------------------------------------------------------------------------------------ sentences

def local_text(argument: ArgumentStep) -> str:
    """'local derivative -1/x² = -0.5344', 'rule: g @ bᵀ', or '' when nothing useful is known."""
    value = None if argument.local is None else number_text(argument.local)
    if argument.formula_kind == "rule" and argument.formula:
        return f"rule: {argument.formula}"
    if argument.formula and value is not None:
        if argument.formula == value:
            return f"local derivative {value}"
        return f"local derivative {argument.formula} = {value}"
    if argument.formula:
        return f"local derivative {argument.formula}"
    if value is not None:
        return f"local derivative {value}"
    return ""


def passes_text(argument: ArgumentStep) -> str:
    passed = "nothing" if argument.passed is None else argument.passed.text()
    text = f"passes {passed} to {argument.name}"
    local = local_text(argument)
    return text + (f" ({local})" if local else "")


def contributions_text(step: Step) -> str:
    """'= 0.1 from a + 0.1 from b' where several consumers' gradients add up, else ''."""
    if not step.contributions:
        return ""
    if all(c.passed.values is not None for c in step.contributions):
        return "= " + " + ".join(f"{c.passed.text()} from {c.consumer}" for c in step.contributions)
    return (f"the sum of {len(step.contributions)} contributions, from "
            f"{', '.join(c.consumer for c in step.contributions)}")


def upstream_text(step: Step, prefix: str = "upstream ") -> str:
    if step.upstream is None:
        return "no upstream gradient"
    text = prefix + step.upstream.text()
    added = contributions_text(step)
    return text + (f" ({added})" if added else "")


def shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def node_text(step: Step) -> str:
    """'f = 1 / (1 + exp(-dot)) = 0.7311' (the expression is left out where it is just the name)."""
    expression = shorten(step.text)
    if not expression or expression == step.name:
        return f"{step.name} = {step.value.text()}"
    return f"{step.name} = {expression} = {step.value.text()}"


def gradient_name(walk: Walkthrough, step: Step) -> str:
    top = walk.output if walk.objective == walk.output else "L"
    return f"∂{top}/∂{step.name}"


# ------------------------------------------------------------------------------------------ text

def text_lines(walk: Walkthrough) -> list[tuple[int, Text]]:
    """The walk-through, line by line, each with the indent its wrapped continuation lines take."""
    lines: list[tuple[int, Text]] = []
    header = Text()
    header.append(f"backward pass of {visible_line(walk.name)}", style="bold")
    header.append(f"  {visible_line(walk.path)}", style="dim")
    lines.append((0, header))
    if walk.description.strip():
        lines.append((0, Text(visible_line(" ".join(walk.description.split())), style="italic")))
    summary = f"output {walk.output} = {walk.output_value.text()} ({walk.dtype})"
    if walk.objective != walk.output:
        summary += f"; differentiated: L = {walk.objective} with a fixed random v"
    lines.append((0, Text(visible_line(summary))))
    lines.append((0, Text(walk.chain_rule, style="dim")))
    lines.append((0, Text()))
    op_steps = walk.op_steps
    width = len(str(len(op_steps)))
    op_width = max((len(visible_line(s.op)) for s in op_steps), default=0)
    for number, step in enumerate(op_steps, 1):
        line = Text(f"{number:>{width}}. ")
        line.append(f"{visible_line(step.op):<{op_width}}", style="cyan")
        line.append("  ")
        line.append(visible_line(node_text(step)), style="bold")
        line.append(" · ")
        line.append(visible_line(upstream_text(step)))
        passing = [a for a in step.arguments if a.differentiable]
        indent = " " * (width + 2 + op_width + 2)
        if len(passing) == 1:
            line.append(" → " + visible_line(passes_text(passing[0])))
            lines.append((len(indent), line))
        else:
            lines.append((len(indent), line))
            for argument in passing:
                lines.append((len(indent) + 2, Text(f"{indent}→ {visible_line(passes_text(argument))}")))
        if step.note:
            style = "red" if "failed" in step.note else "dim"
            lines.append((len(indent), Text(f"{indent}{visible_line(step.note)}", style=style)))
    lines.append((0, Text()))
    lines.append((0, Text("gradients of the inputs:", style="bold")))
    for step in walk.input_steps:
        if step.upstream is None:
            lines.append((4, Text(f"  {visible_line(step.name)} = {step.value.text()}: data, no gradient", style="dim")))
            continue
        line = Text(f"  {visible_line(gradient_name(walk, step))} = ")
        line.append(step.upstream.text(), style="bold green")
        if step.contributions:
            line.append(f"  ({visible_line(contributions_text(step))})", style="dim")
        lines.append((4, line))
    return lines


def render_text(walk: Walkthrough, color: bool = False, console: Console | None = None) -> str:
    """The walk-through wrapped at the console's width, at word boundaries, continuation lines indented."""
    console, buffer = console_for(console, color, width=200)
    for indent, line in text_lines(walk):
        for wrapped in hanging(console, line, indent):
            console.print(wrapped, soft_wrap=True, highlight=False)
    return buffer.getvalue() if buffer is not None else ""


def hanging(console: Console, line: Text, indent: int) -> list[Text]:
    """``line`` wrapped to the console's width; the lines after the first start ``indent`` columns in."""
    indent = min(indent, console.width // 2)
    head, body = line[:indent], line[indent:]
    pieces = body.wrap(console, max(console.width - indent, 20)) if body.plain else [body]
    wrapped = []
    for number, piece in enumerate(pieces):
        piece.rstrip()
        wrapped.append(Text.assemble(head if number == 0 else " " * indent, piece))
    return wrapped


# ------------------------------------------------------------------------------------------ json

def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_dict(walk: Walkthrough) -> dict:
    data = asdict(walk)
    data["input_gradients"] = {s.name: None if s.upstream is None else s.upstream.values
                               for s in walk.input_steps}
    return {"version": 1, **data}


def render_json(walk: Walkthrough) -> str:
    return json.dumps(_clean(to_dict(walk)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------------------ markdown

def cell(text: str) -> str:
    return visible_line(text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " "))


def code(text: str) -> str:
    return f"`{cell(text)}`" if text else ""


def render_markdown(walk: Walkthrough) -> str:
    lines = [f"# Backward pass of {cell(walk.name)}", "", f"{code(walk.path)} · output {code(walk.output)} = "
             f"{walk.output_value.text()} ({walk.dtype})", ""]
    if walk.objective != walk.output:
        lines += [f"Differentiated: L = {code(walk.objective)} with a fixed random v.", ""]
    lines += [f"> {cell(walk.chain_rule)}", "",
              "| # | op | node | expression | value | upstream | passes on |", "|---:|---|---|---|---:|---|---|"]
    for number, step in enumerate(walk.op_steps, 1):
        passes = "<br>".join(cell(passes_text(a)) for a in step.arguments if a.differentiable)
        if step.note:
            passes += f"<br>*{cell(step.note)}*"
        lines.append(f"| {number} | {cell(step.op)} | {code(step.name)} | {code(shorten(step.text))} | "
                     f"{step.value.text()} | {cell(upstream_text(step, prefix=''))} | {passes} |")
    lines += ["", "## Gradients of the inputs", "", "| input | value | gradient |", "|---|---:|---:|"]
    for step in walk.input_steps:
        gradient = "data, no gradient" if step.upstream is None else step.upstream.text()
        lines.append(f"| {code(step.name)} | {step.value.text()} | {gradient} |")
    return "\n".join(lines) + "\n"


def renderer(name: str):
    return {"text": render_text, "json": render_json, "markdown": render_markdown}[name]
