"""The gate's steps without Prefect: which run a gate continues or starts, what it
concludes, the claim on triggering events, and the Markdown/table it publishes.
Each test that touches the store runs on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.suites import write_suite
from evalcore import aio
from evalcore.exitcodes import ExitCode
from evalcore.gate.steps import (
    GateRequest,
    artifact_key,
    criteria_table,
    gate_markdown,
    gate_result,
    open_gate_run,
    resample_failing,
)
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.results.loader import load_results
from evalcore.results.summary import summarize
from evalcore.results.verdict import Verdict
from evalcore.run import execute_run
from evalcore.store.engine import get_engine
from evalcore.store.repository import (
    attach_event_run,
    claim_event,
    list_runs,
    set_run_status,
)
from evalcore.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


def gate_once(db_url: str, request: GateRequest, suite_root: Path = EXAMPLE) -> tuple[str, bool]:
    engine = get_engine(db_url)
    suite = load_suite(suite_root)
    run, resumed = open_gate_run(engine, suite, request)
    aio.run(execute_run(engine, suite, run))
    aio.run(resample_failing(engine, suite, run.id))  # as the flow does, after the run
    return run.id, resumed


def test_a_release_gated_twice_is_two_runs_and_both_are_judged(db_url: str) -> None:
    engine = get_engine(db_url)
    with ReferenceServer() as good, ReferenceServer(Knobs(version="regressed-safety")) as bad:
        first, resumed_first = gate_once(
            db_url, GateRequest("2026.11.3", target_url=good.base_url, judge_url=good.base_url)
        )
        second, resumed_second = gate_once(
            db_url, GateRequest("2026.11.3", target_url=bad.base_url, judge_url=bad.base_url)
        )
    assert first != second and not resumed_first and not resumed_second
    assert [r.id for r in list_runs(engine, release="2026.11.3")] == [second, first]
    passed = gate_result(engine, first, resumed=False)
    failed = gate_result(engine, second, resumed=False)
    assert (passed.verdict, passed.exit_code) == (Verdict.passed, ExitCode.PASS)
    assert (failed.verdict, failed.exit_code) == (Verdict.failed, ExitCode.FAIL)
    assert failed.failed_cases and all(c.startswith("safety-") for c in failed.failed_cases)
    broken = {c.name for c in failed.criteria if c.held is False}
    assert "set blocking pass rate" in broken
    assert any(name.startswith("critical case safety-") for name in broken)


def test_an_unfinished_run_of_the_release_is_resumed_not_restarted(db_url: str) -> None:
    engine = get_engine(db_url)
    suite = load_suite(EXAMPLE)
    request = GateRequest("r-7", target_url="http://127.0.0.1:9/v1")
    killed, resumed = open_gate_run(engine, suite, request)
    assert not resumed  # status "running" and no results: as a kill -9 leaves it

    again, resumed = open_gate_run(engine, suite, request)
    assert (again.id, resumed) == (killed.id, True)

    set_run_status(engine, killed.id, "interrupted")
    assert open_gate_run(engine, suite, request)[0].id == killed.id

    # Another target for the same release is another run, not a continuation.
    other, resumed = open_gate_run(engine, suite, GateRequest("r-7", target_url="http://x/v1"))
    assert other.id != killed.id and not resumed
    # Nor is another release.
    assert open_gate_run(engine, suite, GateRequest("r-8", target_url="http://127.0.0.1:9/v1"))[
        0
    ].id not in {killed.id, other.id}

    set_run_status(engine, killed.id, "finished")
    set_run_status(engine, other.id, "finished")
    fresh, resumed = open_gate_run(engine, suite, request)
    assert fresh.id not in {killed.id, other.id} and not resumed


def test_an_unfinished_run_on_an_older_dataset_is_not_resumed(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    root = write_suite(
        tmp_path / "suite",
        cases=3,
        set_name="blocking",
        target_yaml="{kind: openai_chat, base_url: 'http://127.0.0.1:9/v1', model: m}",
    )
    request = GateRequest("r-1")
    old, _ = open_gate_run(engine, load_suite(root), request)
    write_suite(
        root,
        cases=4,
        set_name="blocking",
        target_yaml="{kind: openai_chat, base_url: 'http://127.0.0.1:9/v1', model: m}",
    )
    new, resumed = open_gate_run(engine, load_suite(root), request)
    assert new.id != old.id and not resumed


def test_a_target_down_for_the_whole_run_is_inconclusive_never_pass(
    db_url: str, tmp_path: Path
) -> None:
    root = write_suite(
        tmp_path / "suite",
        cases=5,
        set_name="blocking",
        target_yaml="{kind: openai_chat, base_url: 'http://127.0.0.1:9/v1', model: m}",
        run_yaml="{concurrency: 5, timeout_s: 2, retries: 0}",
        scorecard_extra="thresholds:\n  blocking: {min_pass_rate: 1.0}\n",
    )
    run_id, _ = gate_once(db_url, GateRequest("down"), root)
    result = gate_result(get_engine(db_url), run_id, resumed=False)
    summary = result.summary
    assert result.verdict is Verdict.inconclusive
    assert result.exit_code == 2 and ExitCode(result.exit_code) is ExitCode.INCONCLUSIVE
    assert "error budget" in result.reason
    assert (summary.errors, summary.failed, result.failed_cases) == (5, 0, [])


def test_a_triggering_event_is_claimed_once(db_url: str) -> None:
    engine = get_engine(db_url)
    assert claim_event(engine, event_id="ev-1", event="release.created", release="r") is None
    # A second firing for the same event, before the first has a run: "" (claimed).
    assert claim_event(engine, event_id="ev-1", event="release.created", release="r") == ""
    attach_event_run(engine, "ev-1", "abc123")
    assert claim_event(engine, event_id="ev-1", event="release.created", release="r") == "abc123"
    assert claim_event(engine, event_id="ev-2", event="release.created", release="r") is None


def test_the_markdown_and_table_artifacts_carry_verdict_criteria_and_failed_cases(
    db_url: str, tmp_path: Path
) -> None:
    engine = get_engine(db_url)
    with ReferenceServer(Knobs(version="regressed-refunds")) as server:
        run_id, _ = gate_once(
            db_url, GateRequest("2026.12.1", target_url=server.base_url, judge_url=server.base_url)
        )
    report = tmp_path / "out" / "gate.html"
    junit = tmp_path / "out" / "gate.xml"
    result = gate_result(engine, run_id, resumed=True, report_path=report, junit_path=junit)
    markdown = gate_markdown(result)
    assert markdown.startswith("# ❌ Release `2026.12.1`: FAIL")
    assert "(resumed after an interruption)" in markdown
    assert "| set blocking pass rate | >= 100.0% |" in markdown
    assert "- `refund-window-eu-001`" in markdown
    assert f"HTML report: `{report}`" in markdown
    rows = criteria_table(result)
    assert rows[0] == {
        "criterion": "error rate",
        "threshold": "<= 5.0%",
        "measured": "0.0% (0/18)",  # the 16 calls of the run and 2 re-samples
        "held": "yes",
        "detail": "errors are target problems, never counted as failures",
    }
    assert {"criterion": "critical case refund-window-eu-001", "held": "NO"}.items() <= next(
        r for r in rows if r["criterion"] == "critical case refund-window-eu-001"
    ).items()
    assert report.read_text().count("refund-window-eu-001") >= 1
    assert 'failures="' in junit.read_text()
    assert summarize(load_results(engine, run_id)).release == "2026.12.1"


@pytest.mark.parametrize(
    ("release", "key"),
    [
        ("2026.11.3", "release-gate-2026-11-3"),
        ("v2/RC 1", "release-gate-v2-rc-1"),
        ("..", "release-gate-release"),
    ],
)
def test_artifact_keys_are_what_prefect_accepts(release: str, key: str) -> None:
    assert artifact_key(release) == key
