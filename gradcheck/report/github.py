"""--format github: workflow commands that annotate the spec file in a pull request.

GitHub shows at most ten error and ten warning annotations per step, so each spec leads with its
cause and collapses the rest: the suspect ops first (the backward rules that are wrong, at the
line and column of their node, and for a custom op again at the Python line of its rule), then
the first failing node (the one a suspect feeds a wrong gradient, else the first in the spec),
then one "and N more" annotation listing the others.
Kinks and inconclusive elements are warnings, grouped the same way.  The summary line is not
part of this output: the CLI prints it once, on stderr.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..format import visible
from ..results import NodeResult, RuleSource, RunResult, SpecResult, Status
from . import DEFAULT_OPTIONS, RenderOptions
from .common import expect_values_text, failure_sentence, jvp_sentence, suspect_sentence

MAX_SUSPECTS_SHOWN = 3                  # suspects annotated one by one per spec; more go into "and N more"
WARNING_STATUSES = frozenset(status for status in Status if status.value in ("kink", "inconclusive"))


@dataclass(frozen=True)
class Annotation:
    level: str                 # error | warning
    path: str
    line: int | None
    column: int | None
    end_column: int | None
    title: str
    message: str


def escape_data(text: str) -> str:
    return visible(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(note: Annotation) -> str:
    props = [f"file={escape_property(note.path)}"]
    if note.line:
        props.append(f"line={note.line}")
        if note.column:
            props.append(f"col={note.column}")
            if note.end_column:
                props += [f"endLine={note.line}", f"endColumn={note.end_column}"]
    props.append(f"title={escape_property(note.title)}")
    return f"::{note.level} {','.join(props)}::{escape_data(note.message)}"


def _end_column(column: int | None, text: str) -> int | None:
    """The column just past a one-line expression that starts at ``column``."""
    if not column or not text or "\n" in text:
        return None
    return column + len(text)


def _at_node(level: str, spec: SpecResult, node: NodeResult | None, title: str, message: str) -> Annotation:
    if node is None:
        return Annotation(level, spec.path, None, None, None, title, message)
    return Annotation(level, spec.path, node.line, node.column, _end_column(node.column, node.text), title, message)


def _at_rule(source: RuleSource, title: str, message: str) -> Annotation:
    """On the Python line of a custom op's rule, so the pull request shows it where the fix goes."""
    return Annotation("error", source.file, source.line, None, None, title, message)


def _place(line: int | None) -> str:
    return f"line {line}: " if line else ""


def spec_annotations(spec: SpecResult, options: RenderOptions) -> list[Annotation]:
    """The annotations of one spec, most useful first."""
    if spec.error is not None:
        return [Annotation("error", spec.path, spec.error.line, spec.error.column, None, f"gradcheck: {spec.name}",
                           spec.error.message)]
    by_name = {node.name: node for node in spec.nodes}
    failing = [node for node in spec.nodes if node.status == Status.FAIL or (options.strict and node.status == Status.KINK)
               or (node.status == Status.INCONCLUSIVE and spec.status == Status.FAIL)]
    origins = [node for node in failing if node.name in {suspect.argument_node for suspect in spec.suspects}]
    candidates = origins or failing
    first: NodeResult | None = candidates[0] if candidates else None

    leading: list[Annotation] = []
    rest: list[tuple[int | None, str]] = []         # (line, sentence) for the collapsed annotation
    for number, suspect in enumerate(spec.suspects):
        if number < MAX_SUSPECTS_SHOWN:
            leading.append(_at_node("error", spec, by_name.get(suspect.node),
                                    f"gradcheck: wrong backward rule in op '{suspect.op}' ({spec.name})",
                                    suspect_sentence(suspect)))
            if suspect.source is not None:  # the same message on the line of the rule to fix
                leading.append(_at_rule(suspect.source, f"gradcheck: wrong gradient from {suspect.op}'s "
                                        f"{suspect.source.rule} ({spec.name})", suspect_sentence(suspect)))
        else:
            node = by_name.get(suspect.node)
            rest.append((node.line if node else None, "suspect: " + suspect_sentence(suspect)))
    if first is not None:
        leading.append(_at_node("error", spec, first, f"gradcheck fail: {spec.name} / {first.name}",
                                failure_sentence(spec, first)))
    rest += [(node.line, failure_sentence(spec, node)) for node in failing if node is not first]
    # rules and pins checked besides the gradients: a spec that fails only there leads with the first of them
    others = [_at_node("error", spec, by_name.get(jvp.node), f"gradcheck jvp {jvp.status}: {spec.name} / {jvp.node}",
                       jvp_sentence(jvp)) for jvp in spec.jvps if jvp.status in (Status.FAIL, Status.ERROR)]
    others += [Annotation("error", spec.path, e.line, e.column, None, f"gradcheck expect: {spec.name}",
                          f"expect {e.what}: {expect_values_text(e)}") for e in spec.expectations if not e.ok]
    if not leading and others:
        leading.append(others.pop(0))
    leading += [_at_rule(jvp.source, f"gradcheck: wrong jvp of {jvp.op} ({spec.name})", jvp_sentence(jvp))
                for jvp in spec.jvps if jvp.status in (Status.FAIL, Status.ERROR) and jvp.source is not None]
    rest += [(note.line, note.message) for note in others]
    notes = leading + _collapsed("error", spec, rest)

    if not options.quiet:
        warned: list[tuple[NodeResult | None, Status, int | None, str]]
        warned = [(node, node.status, node.line, failure_sentence(spec, node))
                  for node in spec.nodes if node.status in WARNING_STATUSES and node not in failing]
        warned += [(by_name.get(jvp.node), jvp.status, jvp.line, jvp_sentence(jvp))
                   for jvp in spec.jvps if jvp.status in WARNING_STATUSES]
        if warned:
            node, status, _, sentence = warned[0]
            notes.append(_at_node("warning", spec, node, f"gradcheck {status}: {spec.name} / {node.name if node else ''}",
                                  sentence))
            notes += _collapsed("warning", spec, [(line, sentence) for _, _, line, sentence in warned[1:]])
    return notes


def _collapsed(level: str, spec: SpecResult, rest: list[tuple[int | None, str]]) -> list[Annotation]:
    if not rest:
        return []
    kind = "failures" if level == "error" else "warnings"
    message = "\n".join(_place(line) + sentence for line, sentence in rest)
    return [Annotation(level, spec.path, rest[0][0], None, None,
                       f"gradcheck: and {len(rest)} more {kind} in {spec.name}", message)]


def run_annotations(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS) -> list[Annotation]:
    return [note for spec in run.specs for note in spec_annotations(spec, options)]


def render(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    lines = [command(note) for note in run_annotations(run, options)]
    return "".join(line + "\n" for line in lines)
