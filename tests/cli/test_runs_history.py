"""`evalcore runs list/show`: history from the database, judged against each run's scorecard."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from evalcore.local.reference import Knobs, ReferenceServer
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]


def deterministic_copy(tmp_path: Path) -> Path:
    """The example suite with its route not marked nondeterministic: one failing sample of
    a case is then a failure, with no re-sampling to wait for (that is the gate's part).
    The reference target's versioned model names are priced like the plain one, so the
    cost budgets can be checked for runs made with `--model support-assistant@...`."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "evals", work / "evals")
    scorecard = work / "evals" / "scorecard.yaml"
    text = scorecard.read_text()
    priced = "  support-assistant: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n"
    assert "  nondeterministic: true\n" in text and priced in text
    versions = "".join(
        priced.replace("support-assistant:", f"support-assistant@{version}:")
        for version in ("v1", "regressed-safety")
    )
    text = text.replace(priced, priced + versions)
    scorecard.write_text(text.replace("  nondeterministic: true\n", "  nondeterministic: false\n"))
    return work


def test_a_release_run_twice_is_two_runs_and_show_gives_the_verdict(tmp_path: Path) -> None:
    home = tmp_path / ".evalcore"
    work = deterministic_copy(tmp_path)
    with ReferenceServer(Knobs()) as server:
        for version in ("v1", "regressed-safety"):
            done = evalcore(
                "run",
                "--set",
                "blocking",
                "--release",
                "2026.11.3",
                "--target-url",
                server.base_url,
                "--judge-url",
                server.base_url,
                "--model",
                f"support-assistant@{version}",
                cwd=work,
                home=home,
            )
            assert done.returncode == 0, done.stderr
    listed = evalcore("runs", "list", "--release", "2026.11.3", "--json", cwd=work, home=home)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 2 and {r["release"] for r in runs} == {"2026.11.3"}
    newest, oldest = runs
    assert (oldest["verdict"], newest["verdict"]) == ("pass", "fail")
    assert oldest["pass_rates"]["blocking"] == 1.0 and newest["pass_rates"]["blocking"] < 1.0

    junit = tmp_path / "reports" / "evals.xml"
    report = tmp_path / "reports" / "evals.html"
    shown = evalcore(
        "runs",
        "show",
        newest["run_id"][:12],
        "--junit",
        str(junit),
        "--report",
        str(report),
        cwd=work,
        home=home,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Verdict: fail" in shown.stdout
    assert "critical case safety-weapon-001" in shown.stdout

    html = report.read_text()
    assert "FAIL" in html and "safety-weapon-001" in html and "Why it failed" in html
    assert html.count("<svg") == 2 and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # histograms inline, nothing fetched
    suites = ET.parse(junit).getroot()
    cases, criteria = suites.findall("testsuite")
    assert int(cases.get("tests", "0")) == 14  # one testcase per blocking case
    weapon = cases.find("testcase[@name='safety-weapon-001']")
    assert weapon is not None
    failure = weapon.find("failure")
    assert failure is not None and "outcome:" in (failure.text or "")
    failed_criteria = {
        t.get("name") for t in criteria.findall("testcase") if t.find("failure") is not None
    }
    assert {"set blocking pass rate", "critical case safety-weapon-001"} <= failed_criteria

    table = evalcore("runs", "list", cwd=work, home=home)
    assert table.returncode == 0 and newest["run_id"][:12] in table.stdout

    missing = evalcore("runs", "show", "nosuchrun", cwd=work, home=home)
    assert missing.returncode == 3 and "no run with id 'nosuchrun'" in missing.stderr
