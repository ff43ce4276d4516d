"""--format github: workflow commands that annotate the spec file in a pull request."""
from __future__ import annotations

from ..results import RunResult, Status
from . import RenderOptions
from .common import expect_values_text, failure_sentence, jvp_sentence, precision_text, summary_line, suspect_sentence


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, path: str, line, column, title: str, message: str) -> str:
    props = [f"file={escape_property(path)}"]
    if line:
        props.append(f"line={line}")
        if column:
            props.append(f"col={column}")
    props.append(f"title={escape_property(title)}")
    return f"::{level} {','.join(props)}::{escape_data(message)}"


def render(run: RunResult, options: RenderOptions = RenderOptions()) -> str:
    lines = []
    for spec in run.specs:
        if spec.error is not None:
            lines.append(annotation("error", spec.path, spec.error.line, spec.error.column,
                                    f"gradcheck: {spec.name}", spec.error.message))
            continue
        for suspect in spec.suspects:  # the cause first
            lines.append(annotation("error", spec.path, None, None, f"gradcheck suspect: {suspect.op}",
                                    suspect_sentence(suspect)))
        for node in spec.nodes:
            if node.status in (Status.FAIL, Status.INCONCLUSIVE) or (node.status == Status.KINK and not options.quiet):
                level = "warning" if node.status == Status.KINK else "error"
                lines.append(annotation(level, spec.path, node.line, node.column,
                                        f"gradcheck {node.status}: {spec.name} / {node.name}", failure_sentence(spec, node)))
        for jvp in spec.jvps:
            if jvp.status in (Status.FAIL, Status.ERROR) or (jvp.status == Status.KINK and not options.quiet):
                level = "warning" if jvp.status == Status.KINK else "error"
                lines.append(annotation(level, spec.path, jvp.line, jvp.column,
                                        f"gradcheck jvp {jvp.status}: {spec.name} / {jvp.node}", jvp_sentence(jvp)))
        for expectation in spec.expectations:
            if not expectation.ok:
                lines.append(annotation("error", spec.path, expectation.line, expectation.column,
                                        f"gradcheck expect: {spec.name}",
                                        f"expect {expectation.what}: {expect_values_text(expectation)}"))
    precisions = sorted({precision_text(spec) for spec in run.specs if spec.error is None})
    lines.append(summary_line(run) + (f" · {'; '.join(precisions)}" if precisions else ""))
    return "\n".join(lines) + "\n"
