"""Proof on real data: a promptfoo config written the way promptfoo's own examples are, and
an OTLP export written the way an OpenTelemetry GenAI instrumentation writes it, taken
into a copy of the example suite as a user would, then run against the reference target.

The promptfoo tests become backlog cases and run as they are. A failed trace becomes a
backlog item; with a suggested expectation and an owner's decision it becomes a
monitoring case (`decisions apply`), and runs too. The healthy route (`v1`) passes them;
`regressed-refunds` fails the ones about the refund window.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalcore.local.reference import ReferenceServer
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
PROMPTFOO = ROOT / "tests" / "data" / "promptfoo" / "promptfooconfig.yaml"
OTLP = ROOT / "tests" / "data" / "otlp" / "genai_traces.json"
# The trace whose evaluation says the 30-day window was quoted to a customer in Munich.
MUNICH_TRACE = "45802f38266558e95adfd946609351d8"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ref() -> Iterator[ReferenceServer]:
    with ReferenceServer() as server:
        yield server


def cli(work: Path, *args: str) -> str:
    done = evalcore(*args, cwd=work, home=work / ".home")
    assert done.returncode == 0, f"evalcore {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def outcomes(work: Path, run_id: str) -> dict[str, bool]:
    """Per case: passed when every sample passed with no error."""
    with contextlib.closing(sqlite3.connect(work / ".home" / "evalcore.db")) as conn:
        rows = conn.execute(
            "SELECT case_id, passed, error_class FROM case_result WHERE run_id = ?", (run_id,)
        ).fetchall()
    result: dict[str, bool] = {}
    for case_id, passed, error_class in rows:
        result[case_id] = result.get(case_id, True) and bool(passed) and error_class is None
    return result


def run_set(work: Path, ref: ReferenceServer, set_name: str, version: str) -> dict[str, bool]:
    summary = json.loads(
        cli(
            work,
            *("run", "--set", set_name, "--json"),
            *("--target-url", ref.base_url, "--judge-url", ref.base_url),
            *("--model", f"support-assistant@{version}"),
        )
    )
    assert summary["status"] == "finished"
    return outcomes(work, summary["run_id"])


def test_a_promptfoo_config_and_an_otlp_export_become_cases_that_run(
    ref: ReferenceServer, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "evals", tmp_path / "evals")

    imported = json.loads(cli(tmp_path, "import", "promptfoo", str(PROMPTFOO), "--json"))
    assert imported["written"] == imported["converted"] == 26  # 2 prompts x 13 tests
    listed = {item["what"] for item in imported["not_converted"]}
    assert "assertion javascript" in listed  # listed with file:line, never dropped quietly
    assert {b["kind"] for b in imported["budgets"]} == {"cost", "latency"}
    promptfoo_ids = set(imported["ids"])

    taken = json.loads(
        cli(
            tmp_path,
            *("intake", "--format", "otlp", str(OTLP), "--trace-id", MUNICH_TRACE, "--json"),
            *("--expect", json.dumps({"outcome": "answer", "contains": ["14 days"]})),
        )
    )
    (item,) = taken["items"]
    provenance = item["provenance"]
    assert provenance["trace_id"] == MUNICH_TRACE
    assert provenance["span_id"] and provenance["model"] and provenance["timestamp"]
    cli(tmp_path, "decisions", "record", item["id"], "monitor", "--by", "daniel.brandt")
    cli(tmp_path, "decisions", "apply")
    assert cli(tmp_path, "validate", "--json")

    healthy = run_set(tmp_path, ref, "backlog", "v1")
    from_promptfoo = {case: ok for case, ok in healthy.items() if case in promptfoo_ids}
    assert set(from_promptfoo) == promptfoo_ids
    assert all(from_promptfoo.values()), sorted(c for c, ok in from_promptfoo.items() if not ok)

    monitoring = run_set(tmp_path, ref, "monitoring", "v1")
    production = (tmp_path / "evals" / "cases" / "production.yaml").read_text()
    from_trace = [case for case in monitoring if case in production]
    assert len(from_trace) == 1 and monitoring[from_trace[0]], from_trace

    regressed = run_set(tmp_path, ref, "backlog", "regressed-refunds")
    failed = sorted(c for c in promptfoo_ids if not regressed[c])
    assert failed, "regressed-refunds passed every imported promptfoo case"
    assert not run_set(tmp_path, ref, "monitoring", "regressed-refunds")[from_trace[0]]
