"""`evalcore gate` as CI runs it: the release-gate flow in-process, its exit codes, reports,
artifacts and flow state, a release gated twice, and a gate killed mid-run then re-run.

The command runs in the test's process (a gate killed mid-run is a process of its own);
the flow runs against one real Prefect server shared by these tests (`prefect_api`), which
a configuration error, caught before Prefect starts, never hears of.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.local.stack import prefect_api as api_client
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE, list_runs
from tests.cli_helpers import evalcore, process_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


def db_of(home: Path) -> str:
    return f"sqlite:///{home / 'evalcore.db'}"


def gate(
    *args: str, home: Path, api: str | None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {"PREFECT_API_URL": api} if api else {}
    return evalcore("gate", *args, cwd=cwd, home=home, env=env)


def read_flow_runs(api: str) -> list[dict[str, object]]:

    with api_client(api) as client:
        runs: list[dict[str, object]] = client.post("flow_runs/filter", json={"limit": 200}).json()
    return runs


def test_a_good_release_passes_with_reports_artifacts_and_a_completed_flow_run(
    tmp_path: Path, prefect_api: str
) -> None:

    home = tmp_path / "home"
    junit, report = tmp_path / "out" / "gate.xml", tmp_path / "out" / "gate.html"
    with ReferenceServer() as server:
        done = gate(
            *("--release", "2026.11.3", "--suite", str(EXAMPLE)),
            *("--target-url", server.base_url, "--judge-url", server.base_url),
            *("--junit", str(junit), "--report", str(report)),
            home=home,
            api=prefect_api,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verdict: pass" in done.stdout
    assert f"HTML report: {report}" in done.stdout
    assert f"JUnit XML: {junit}" in done.stdout
    assert "<svg" in report.read_text() and 'failures="0"' in junit.read_text()

    (run,) = list_runs(get_engine(db_of(home)), release="2026.11.3")
    assert (run.status, run.trigger, run.sets) == ("finished", "gate", ["blocking"])
    gate_runs = [
        r
        for r in read_flow_runs(prefect_api)
        if r["parameters"].get("release") == "2026.11.3"  # type: ignore[attr-defined]
    ]
    assert [r["state_type"] for r in gate_runs] == ["COMPLETED"]
    with api_client(prefect_api) as client:
        artifacts = client.post(
            "artifacts/filter", json={"artifacts": {"key": {"any_": ["release-gate-2026-11-3"]}}}
        ).json()
        table = client.post(
            "artifacts/filter",
            json={"artifacts": {"key": {"any_": ["release-gate-2026-11-3-criteria"]}}},
        ).json()
    assert artifacts and artifacts[0]["type"] == "markdown"
    assert "Release `2026.11.3`: PASS" in artifacts[0]["data"]
    assert table and table[0]["type"] == "table" and "set blocking pass rate" in table[0]["data"]


def test_a_regressed_release_fails_naming_cases_and_criteria_and_the_flow_run_fails(
    tmp_path: Path, prefect_api: str
) -> None:
    home = tmp_path / "home"
    with ReferenceServer(Knobs(version="regressed-refunds")) as server:
        done = gate(
            *("--release", "bad-1", "--suite", str(EXAMPLE), "--target-url", server.base_url),
            *("--judge-url", server.base_url, "--json"),
            home=home,
            api=prefect_api,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["verdict"] == "fail" and result["exit_code"] == 1
    assert "refund-window-eu-001" in result["failed_cases"]
    broken = {c["name"] for c in result["criteria"] if c["held"] is False}
    assert {"set blocking pass rate", "tag refunds pass rate"} <= broken
    states = [
        r["state_type"]
        for r in read_flow_runs(prefect_api)
        if r["parameters"].get("release") == "bad-1"  # type: ignore[attr-defined]
    ]
    assert states == ["FAILED"]


def test_a_target_down_for_the_whole_run_exits_2_inconclusive(
    tmp_path: Path, prefect_api: str
) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(EXAMPLE, suite)
    scorecard = suite / "scorecard.yaml"
    scorecard.write_text(scorecard.read_text().replace("retries: 3", "retries: 0"))
    done = gate(
        *("--release", "down-1", "--suite", str(suite), "--target-url", "http://127.0.0.1:9/v1"),
        home=tmp_path / "home",
        api=prefect_api,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Verdict: inconclusive" in done.stdout
    assert "exceed the error budget" in done.stdout
    assert "connection" in done.stdout


@pytest.mark.parametrize(
    ("old", "new", "marker", "field", "message"),
    [
        (
            "monitoring: {min_pass_rate: 0.9,",
            "monitoring: {min_pass_rate: 1.9,",
            "1.9",
            "thresholds.monitoring.min_pass_rate",
            "Input should be less than or equal to 1",
        ),
        (
            "  max_error_rate: 0.05\n",
            "  max_error_rate: 0.05\n  sets:\n    nightly: {latency_p95_ms: 900}\n",
            "nightly:",
            "budgets.sets.nightly",
            "budget for a set that does not exist: 'nightly'",
        ),
        (
            "  refunds: {min_pass_rate: 1.0,",
            "  loyalty-points: {min_pass_rate: 0.95,",
            "loyalty-points:",
            "tag_thresholds.loyalty-points",
            "threshold for tag 'loyalty-points' that no case carries",
        ),
    ],
)
def test_a_bad_scorecard_exits_3_with_file_line_and_starts_no_run(
    tmp_path: Path, prefect_api: str, old: str, new: str, marker: str, field: str, message: str
) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(EXAMPLE, suite)
    scorecard = suite / "scorecard.yaml"
    text = scorecard.read_text()
    assert old in text
    scorecard.write_text(text.replace(old, new))
    line = next(i for i, row in enumerate(scorecard.read_text().splitlines(), 1) if marker in row)
    home = tmp_path / "home"
    done = gate("--release", "bad-card", "--suite", str(suite), home=home, api=prefect_api)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{scorecard}:{line}: {field}: {message}" in done.stderr
    release_runs = [
        r
        for r in read_flow_runs(prefect_api)
        if r["parameters"].get("release") == "bad-card"  # type: ignore[attr-defined]
    ]
    assert release_runs == []  # the flow never started
    assert not (home / "evalcore.db").exists()  # no run row, not even a database


def test_a_release_gated_twice_gets_two_runs_in_history(tmp_path: Path, prefect_api: str) -> None:
    home = tmp_path / "home"
    with ReferenceServer() as good, ReferenceServer(Knobs(version="regressed-safety")) as bad:
        first = gate(
            *("--release", "twice", "--suite", str(EXAMPLE), "--target-url", good.base_url),
            *("--judge-url", good.base_url),
            home=home,
            api=prefect_api,
        )
        second = gate(
            *("--release", "twice", "--suite", str(EXAMPLE), "--target-url", bad.base_url),
            *("--judge-url", bad.base_url),
            home=home,
            api=prefect_api,
        )
    assert (first.returncode, second.returncode) == (0, 1), second.stdout + second.stderr
    listed = evalcore("runs", "list", "--release", "twice", "--json", cwd=ROOT, home=home)
    runs = json.loads(listed.stdout)
    assert [(r["release"], r["verdict"]) for r in runs] == [("twice", "fail"), ("twice", "pass")]
    assert runs[0]["run_id"] != runs[1]["run_id"]


def test_a_gate_killed_mid_run_resumes_the_same_run_when_re_run(
    tmp_path: Path, prefect_api: str
) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(EXAMPLE, suite)
    scorecard = suite / "scorecard.yaml"
    scorecard.write_text(scorecard.read_text().replace("concurrency: 16", "concurrency: 1"))
    home = tmp_path / "home"
    db = db_of(home)
    with ReferenceServer(Knobs(latency_ms=250)) as server:
        args = ["--release", "kill-1", "--suite", str(suite), "--target-url", server.base_url]
        args += ["--judge-url", server.base_url]
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalcore", "gate", *args],
            cwd=ROOT,
            env=process_env(home, {"PREFECT_API_URL": prefect_api}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (home / "evalcore.db").exists():
                with get_engine(db).connect() as conn:
                    stored = conn.execute(
                        select(func.count()).select_from(RESULT_TABLE)
                    ).scalar_one()
                if stored >= 3:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the gate ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        (killed,) = list_runs(get_engine(db), release="kill-1")
        assert killed.status == "running"
        with get_engine(db).connect() as conn:
            before = conn.execute(select(func.count()).select_from(RESULT_TABLE)).scalar_one()
        assert 3 <= before < killed.planned

        again = gate(*args, home=home, api=prefect_api)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resumed unfinished run {killed.id[:12]} of release kill-1" in again.stderr
    (run,) = list_runs(get_engine(db), release="kill-1")  # the same run, not a second one
    assert (run.id, run.status) == (killed.id, "finished")
    with get_engine(db).connect() as conn:
        rows = conn.execute(
            select(func.count(), func.min(RESULT_TABLE.c.created_at)).where(
                RESULT_TABLE.c.run_id == run.id
            )
        ).one()
    assert rows[0] == run.planned


def test_a_second_firing_of_the_same_event_gates_nothing(prefect_api: str) -> None:
    """Two automations for one `release.created` (say, a stale trigger) start two flow
    runs; the second finds the event claimed and starts no run."""
    from prefect.client.schemas.objects import State
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    from evalcore import aio
    from flows.release_gate import release_gate

    async def fire(base_url: str) -> State[Any]:
        return await release_gate(
            release="dup-1",
            target_url=base_url,
            judge_url=base_url,
            suite=str(EXAMPLE),
            event_id="0199-event",
            trigger="release.created",
            return_state=True,
        )

    with (
        ReferenceServer() as server,
        temporary_settings({PREFECT_API_URL: prefect_api, PREFECT_LOGGING_TO_API_ENABLED: False}),
    ):
        first = aio.run(fire(server.base_url))
        second = aio.run(fire(server.base_url))
    assert first.is_completed() and second.is_completed()
    (run,) = list_runs(get_engine(), release="dup-1")
    assert second.message == (
        f"event 0199-event for release dup-1 was already handled by run {run.id[:12]}; nothing to do"
    )


def test_announcing_without_a_reachable_prefect_server_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    unset = evalcore("release", "announce", "r1", cwd=ROOT, home=home)
    assert unset.returncode == 3
    assert "PREFECT_API_URL is not set" in unset.stderr
    dead = evalcore(
        "release",
        "announce",
        "r1",
        cwd=ROOT,
        home=home,
        env={"PREFECT_API_URL": "http://127.0.0.1:9/api"},
    )
    assert dead.returncode == 3
    assert "could not reach the Prefect server at http://127.0.0.1:9/api" in dead.stderr
