"""--format junit: one testsuite per spec, one testcase per node (and per jvp rule checked, per expectation)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ..results import RunResult, Status
from . import RenderOptions
from .common import error_where, expect_values_text, failure_sentence, jvp_sentence, precision_text, suspect_sentence


def render(run: RunResult, options: RenderOptions = RenderOptions()) -> str:
    root = ET.Element("testsuites", name="gradcheck", time=f"{run.seconds:.3f}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for spec in run.specs:
        suite = ET.SubElement(root, "testsuite", name=spec.name, file=spec.path, time=f"{spec.seconds:.3f}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if spec.error is not None:
            case = ET.SubElement(suite, "testcase", classname=spec.name, name="spec", file=spec.path)
            location = error_where(spec.path, spec.error)
            ET.SubElement(case, "error", message=spec.error.message, type="SpecError").text = f"{location}: {spec.error.message}"
            counts["tests"] += 1
            counts["errors"] += 1
        if spec.error is None:
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property", name="precision", value=precision_text(spec))
        suspects = "\n".join("suspect: " + suspect_sentence(s) for s in spec.suspects)
        for suspect in spec.suspects:  # each op the checks blame is a failing test of its own
            case = ET.SubElement(suite, "testcase", classname=spec.name,
                                 name=f"op {suspect.op} at {suspect.node} argument {suspect.argument}", file=spec.path)
            counts["tests"] += 1
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=suspect_sentence(suspect), type="WrongBackwardRule").text = \
                suspect_sentence(suspect)
        for node in spec.nodes:
            case = ET.SubElement(suite, "testcase", classname=spec.name, name=node.name, file=spec.path)
            if node.line:
                case.set("line", str(node.line))
            counts["tests"] += 1
            if node.status in (Status.FAIL, Status.INCONCLUSIVE):
                counts["failures"] += 1
                text = failure_sentence(spec, node) + ("\n" + suspects if suspects else "")
                ET.SubElement(case, "failure", message=failure_sentence(spec, node), type="GradientMismatch").text = text
            elif node.status == Status.SKIP:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=node.message or "skipped")
            elif node.status == Status.KINK:
                ET.SubElement(case, "system-out").text = failure_sentence(spec, node)
        for jvp in spec.jvps:
            case = ET.SubElement(suite, "testcase", classname=spec.name, name=f"jvp {jvp.node} argument {jvp.argument}",
                                 file=spec.path)
            if jvp.line:
                case.set("line", str(jvp.line))
            counts["tests"] += 1
            if jvp.status == Status.FAIL:
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=jvp_sentence(jvp), type="JvpMismatch").text = jvp_sentence(jvp)
            elif jvp.status == Status.ERROR:
                counts["errors"] += 1
                ET.SubElement(case, "error", message=jvp_sentence(jvp), type="JvpError").text = jvp_sentence(jvp)
            elif jvp.status == Status.KINK:
                ET.SubElement(case, "system-out").text = jvp_sentence(jvp)
        for expectation in spec.expectations:
            case = ET.SubElement(suite, "testcase", classname=spec.name, name=f"expect {expectation.what}", file=spec.path)
            counts["tests"] += 1
            if not expectation.ok:
                counts["failures"] += 1
                ET.SubElement(case, "failure", type="ExpectMismatch",
                              message=expect_values_text(expectation))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
