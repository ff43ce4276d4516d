"""--format markdown: a table per spec, for a pull-request comment or a job summary."""
from __future__ import annotations

from ..results import RunResult, Status
from . import RenderOptions
from .common import (
    JUDGED,
    display_order,
    error_where,
    expect_values_text,
    failure_lines,
    number,
    precision_text,
    shape_text,
    summary_line,
    suspect_sentence,
    worst_text,
)

ICON = {Status.PASS: "✅ pass", Status.FAIL: "❌ fail", Status.KINK: "⚠️ kink", Status.SKIP: "➖ skip",
        Status.INCONCLUSIVE: "❓ inconclusive"}


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(run: RunResult, options: RenderOptions = RenderOptions()) -> str:
    lines = ["# gradcheck report", "", f"**{summary_line(run)}**", ""]
    for spec in run.specs:
        if options.quiet and spec.status == Status.PASS:
            continue
        lines.append(f"## {cell(spec.name)} — {spec.status}")
        lines.append(f"`{spec.path}`")
        lines.append("")
        if spec.error is not None:
            where = error_where(spec.path, spec.error)
            lines += [f"> **error** `{cell(where)}`: {cell(spec.error.message)}", ""]
            continue
        lines += [f"_{precision_text(spec)}_", ""]
        lines += ["| node | op | shape | max abs err | max rel err | worst element | status |",
                  "|---|---|---:|---:|---:|---|---|"]
        for node, depth in display_order(spec):
            if options.quiet and node.status in (Status.PASS, Status.SKIP):
                continue
            name = ("↳ " if depth else "") + f"`{cell(node.name)}`"
            errors = ("", "") if node.status == Status.SKIP else (number(node.max_abs_error), number(node.max_rel_error))
            lines.append(f"| {name} | {cell(node.op)} | {shape_text(node.shape)} | {errors[0]} | {errors[1]} | "
                         f"{cell(worst_text(node) if node.status in JUDGED else '')} | {ICON[node.status]} |")
        lines.append("")
        for suspect in spec.suspects:
            lines.append(f"- **suspect**: {cell(suspect_sentence(suspect))}")
        for status, sentence in failure_lines(spec):
            lines.append(f"- {'⚠️' if status == Status.KINK else '❌'} {cell(sentence)}")
        for expectation in spec.expectations:
            if not expectation.ok:
                lines.append(f"- **expect {cell(expectation.what)}** failed: {expect_values_text(expectation)}")
        lines.append("")
    return "\n".join(lines)
