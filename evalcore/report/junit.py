"""JUnit XML for CI: one testcase per case (failures carry the scorer reasons), and each
verdict criterion as a testcase of its own, so a CI page shows why a release was stopped.

Errors are JUnit `<error>`s, never `<failure>`s: the target misbehaved, not the model.
A failing case a gate re-sampled is what the sequential test decided: cleared (no failure,
its samples told in `<system-out>`), broken (a failure) or undecided (an error).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from sqlalchemy.engine import Engine

from evalcore.results.sequential import CaseDecision, Decision
from evalcore.results.verdict import RunVerdict
from evalcore.store.repository import results_for_run
from evalcore.store.tables import CaseResultRow, RunRow


def _case_element(
    case_id: str,
    rows: list[CaseResultRow],
    suite_name: str,
    decision: CaseDecision | None = None,
) -> ET.Element:
    latency = sum(r.latency_ms or 0.0 for r in rows) / 1000.0
    element = ET.Element("testcase", classname=suite_name, name=case_id, time=f"{latency:.3f}")
    failed = [r for r in rows if r.passed is False]
    errored = [r for r in rows if r.passed is None]
    if decision is not None and decision.decision is not Decision.broken:
        if decision.decision is Decision.healthy:
            ET.SubElement(element, "system-out").text = f"re-sampled: {decision.summary}"
        else:
            ET.SubElement(
                element, "error", message=decision.summary, type="undecided"
            ).text = decision.summary
        return element
    if failed:
        reasons = [
            f"sample {r.sample}: {name}: {score.get('reason', '')}"
            for r in failed
            for name, score in (r.scores or {}).items()
            if not score.get("passed")
        ]
        failure = ET.SubElement(
            element, "failure", message=reasons[0] if reasons else "failed", type="quality"
        )
        failure.text = "\n".join(
            ([f"re-sampled: {decision.summary}"] if decision is not None else []) + reasons
        )
    elif errored:
        first = errored[0]
        error = ET.SubElement(
            element,
            "error",
            message=f"{first.error_class}: {first.error_message or ''}".strip(),
            type=first.error_class or "error",
        )
        error.text = "\n".join(
            f"sample {r.sample}: {r.error_class}: {r.error_message or ''}" for r in errored
        )
    return element


def junit_xml(
    run: RunRow, rows: list[CaseResultRow], verdict: RunVerdict
) -> ET.ElementTree[ET.Element]:
    """The XML tree: a `cases` suite and a `criteria` suite under one `testsuites`."""
    by_case: dict[str, list[CaseResultRow]] = defaultdict(list)
    for row in rows:
        by_case[row.case_id].append(row)
    name = f"evalcore.{run.route}"
    cases = ET.Element("testsuite", name=f"{name}.cases")
    decisions = {d.case_id: d for d in verdict.sequential}
    for case_id in sorted(by_case):
        cases.append(
            _case_element(case_id, by_case[case_id], f"{name}.cases", decisions.get(case_id))
        )
    criteria = ET.Element("testsuite", name=f"{name}.criteria")
    for criterion in verdict.criteria:
        element = ET.SubElement(
            criteria, "testcase", classname=f"{name}.criteria", name=criterion.name
        )
        message = f"threshold {criterion.threshold}, measured {criterion.measured}"
        if criterion.held is False:
            ET.SubElement(
                element, "failure", message=message, type="criterion"
            ).text = criterion.detail
        elif criterion.held is None:
            ET.SubElement(
                element, "error", message=message, type="unmeasured"
            ).text = criterion.detail
    for suite in (cases, criteria):
        tests = list(suite)
        suite.set("tests", str(len(tests)))
        suite.set("failures", str(sum(1 for t in tests if t.find("failure") is not None)))
        suite.set("errors", str(sum(1 for t in tests if t.find("error") is not None)))
    root = ET.Element(
        "testsuites",
        name=f"{name} run {run.id[:12]}: {verdict.verdict.value}",
        tests=str(len(cases) + len(criteria)),
    )
    root.extend([cases, criteria])
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(engine: Engine, run: RunRow, verdict: RunVerdict, path: Path) -> Path:
    """Write the run's JUnit XML to `path` (atomically: a reader never sees half a file)."""
    tree = junit_xml(run, results_for_run(engine, run.id), verdict)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    tree.write(partial, encoding="utf-8", xml_declaration=True)
    partial.replace(path)
    return path
