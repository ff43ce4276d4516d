"""--format junit: one testsuite per spec, one testcase per node (and per jvp rule checked, per expectation).

Written for the readers CI uses (Jenkins' junit-10.xsd, GitLab, dorny/test-reporter, GitHub's
JUnit actions):

- every testcase has a ``time`` and a ``classname`` derived from the spec's path
  (``specs/nn/mlp.yaml`` -> ``specs.nn.mlp``), so two specs with the same ``name`` never collide;
- every failure and error has a body whose first line starts with ``path:line:col:``;
- characters XML cannot hold are made visible (control characters) or replaced (U+FFFE, lone surrogates);
- flavor ``default`` adds ``file`` and ``line`` to each testcase (read by GitHub's JUnit actions; the only
  attributes junit-10.xsd does not declare); flavor ``strict`` leaves them out and validates exactly.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import PurePath

from ..errors import Location
from ..format import visible
from ..results import NodeResult, RunResult, SpecResult, Status
from . import DEFAULT_OPTIONS, RenderOptions
from .common import expect_values_text, failure_sentence, jvp_sentence, precision_text, suspect_sentence

_NOT_XML = re.compile("[\ufffe\uffff\ud800-\udfff]")
COUNTS = ("tests", "failures", "errors", "skipped")


def xml_text(text: str) -> str:
    """Text every XML 1.0 parser accepts: control characters made visible, non-characters replaced."""
    return _NOT_XML.sub("\ufffd", visible(text))


def classname(path: str) -> str:
    """'specs/nn/mlp.yaml' -> 'specs.nn.mlp' (what GitLab and Jenkins group testcases by)."""
    pure = PurePath(path.replace("\\", "/"))
    parts = [part for part in pure.with_suffix("").parts if part not in ("/", ".", "..")]
    return ".".join(parts) or pure.stem


def seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


class _Suite:
    def __init__(self, root: ET.Element, spec: SpecResult, options: RenderOptions):
        self.spec = spec
        self.options = options
        self.classname = xml_text(classname(spec.path))
        self.element = ET.SubElement(root, "testsuite", name=xml_text(spec.name), time=seconds(spec.seconds))
        self.element.set("file", xml_text(spec.path))
        if spec.error is None:  # which precision the verdicts are about
            properties = ET.SubElement(self.element, "properties")
            ET.SubElement(properties, "property", name="precision", value=xml_text(precision_text(spec)))
        self.counts = dict.fromkeys(COUNTS, 0)

    def case(self, name: str, line: int | None, time: float = 0.0) -> ET.Element:
        case = ET.SubElement(self.element, "testcase", name=xml_text(name), classname=self.classname, time=seconds(time))
        if self.options.junit_flavor != "strict":
            case.set("file", xml_text(self.spec.path))
            if line:
                case.set("line", str(line))
        self.counts["tests"] += 1
        return case

    def fault(self, case: ET.Element, kind: str, type_: str, where: Location, message: str, details: str = "") -> None:
        self.counts["failures" if kind == "failure" else "errors"] += 1
        body = f"{where}: {message}" + (f"\n{details}" if details else "")
        ET.SubElement(case, kind, message=xml_text(message), type=type_).text = xml_text(body)

    def finish(self, totals: dict) -> None:
        for key in COUNTS:
            self.element.set(key, str(self.counts[key]))
            totals[key] += self.counts[key]


def _node_fails(spec: SpecResult, node: NodeResult, options: RenderOptions) -> bool:
    if node.status == Status.FAIL:
        return True
    if node.status == Status.KINK:
        return options.strict
    # inconclusive (and any further undecided verdict) fails the spec unless the run allows it
    return node.status not in (Status.PASS, Status.SKIP) and spec.status == Status.FAIL


def render(run: RunResult, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    root = ET.Element("testsuites", name="gradcheck", time=seconds(run.seconds))
    totals = dict.fromkeys(COUNTS, 0)
    for spec in run.specs:
        suite = _Suite(root, spec, options)
        _spec_cases(suite, spec, options)
        suite.finish(totals)
    for key in COUNTS[:-1]:  # junit-10 declares no 'skipped' on <testsuites>
        root.set(key, str(totals[key]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _spec_cases(suite: _Suite, spec: SpecResult, options: RenderOptions) -> None:
    if spec.error is not None:
        where = Location(spec.path, spec.error.line, spec.error.column)
        suite.fault(suite.case("spec", spec.error.line, spec.seconds), "error", "SpecError", where, spec.error.message)
        return
    if spec.status == Status.SKIP:  # a module its `requires:` names is not installed: one skipped testcase
        suite.counts["skipped"] += 1
        ET.SubElement(suite.case("spec", None, spec.seconds), "skipped",
                      message=xml_text(spec.notes[0] if spec.notes else "skipped"))
        return
    suspects = "\n".join("suspect: " + suspect_sentence(s) for s in spec.suspects)
    by_name = {node.name: node for node in spec.nodes}
    for suspect in spec.suspects:  # each op the local checks blame is a failing test of its own, named first
        at = by_name.get(suspect.node)
        where = Location(spec.path, at.line if at else None, at.column if at else None)
        suite.fault(suite.case(f"op {suspect.op} at {suspect.node} argument {suspect.argument}", where.line),
                    "failure", "WrongBackwardRule", where, suspect_sentence(suspect))
    for node in spec.nodes:
        case = suite.case(node.name, node.line, node.seconds)
        where = Location(spec.path, node.line, node.column)
        if _node_fails(spec, node, options):
            details = "\n".join(part for part in (suspects, f"expression: {node.text}" if node.text else "",
                                                  f"tolerance: atol {node.atol:g}, rtol {node.rtol:g}") if part)
            suite.fault(case, "failure", _failure_type(node), where, failure_sentence(spec, node), details)
        elif node.status == Status.SKIP:
            suite.counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=xml_text(node.message or "skipped"))
        elif node.status != Status.PASS:
            ET.SubElement(case, "system-out").text = xml_text(f"{where}: {failure_sentence(spec, node)}")
    for jvp in spec.jvps:
        case = suite.case(f"jvp {jvp.node} argument {jvp.argument}", jvp.line)
        where = Location(spec.path, jvp.line, jvp.column)
        if jvp.status == Status.FAIL or (jvp.status == Status.KINK and options.strict):
            suite.fault(case, "failure", "JvpMismatch", where, jvp_sentence(jvp))
        elif jvp.status == Status.ERROR:
            suite.fault(case, "error", "JvpError", where, jvp_sentence(jvp))
        elif jvp.status != Status.PASS:
            ET.SubElement(case, "system-out").text = xml_text(f"{where}: {jvp_sentence(jvp)}")
    for expectation in spec.expectations:
        case = suite.case(f"expect {expectation.what}", expectation.line)
        if not expectation.ok:
            where = Location(spec.path, expectation.line, expectation.column)
            message = f"expect {expectation.what}: {expect_values_text(expectation)}"
            suite.fault(case, "failure", "ExpectMismatch", where, message, expectation.message)


def _failure_type(node: NodeResult) -> str:
    return {Status.FAIL: "GradientMismatch", Status.KINK: "Kink"}.get(node.status, str(node.status).capitalize())
