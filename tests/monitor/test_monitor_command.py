"""`evalcore monitor`: the nightly-monitor flow in-process against a real Prefect server.
No baseline → says so and proposes the run; with a baseline and a regressed target →
findings stored, the flow still Completed, `--fail-on-drift` decides the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.local.stack import prefect_api as api_client
from evalcore.monitor.steps import stored_findings
from evalcore.store.engine import get_engine
from tests.cli_helpers import evalcore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


def monitor(*args: str, home: Path, api: str | None, base_url: str) -> tuple[int, str, str]:
    done = evalcore(
        *("monitor", "--suite", str(EXAMPLE), "--target-url", base_url),
        *("--judge-url", base_url, *args),
        cwd=ROOT,
        home=home,
        env={"PREFECT_API_URL": api} if api else {},
    )
    return done.returncode, done.stdout, done.stderr


def test_monitor_without_baseline_then_with_a_regression(tmp_path: Path, prefect_api: str) -> None:
    home = tmp_path / "home"
    engine = get_engine(f"sqlite:///{home / 'evalcore.db'}")
    with ReferenceServer() as good:
        code, out, err = monitor("--json", home=home, api=prefect_api, base_url=good.base_url)
    assert code == 0, out + err
    first = json.loads(out)
    assert first["baseline_run_id"] is None and first["findings"] == []
    assert "has no baseline for set 'monitoring' yet" in first["no_baseline"]
    assert f"evalcore baseline accept {first['run_id'][:12]}" in first["no_baseline"]
    assert stored_findings(engine, first["run_id"]) == []

    accepted = evalcore(
        *("baseline", "accept", first["run_id"], "--by", "maya.okafor"),
        *("--reason", "first nightly", "--suite", str(EXAMPLE)),
        cwd=ROOT,
        home=home,
    )
    assert accepted.returncode == 0, accepted.stderr

    with ReferenceServer(Knobs(version="regressed-refunds")) as bad:
        code, out, err = monitor(
            "--json", "--fail-on-drift", "medium", home=home, api=prefect_api, base_url=bad.base_url
        )
    assert code == 1, out + err  # drift at or above medium
    second = json.loads(out)
    assert second["baseline_run_id"] == first["run_id"]
    alarms = [f for f in second["findings"] if f["kind"] == "drift" and f["severity"] != "info"]
    assert any(f["scope"] == "tag:refunds" and f["effect"] < 0 for f in alarms), alarms
    rows = stored_findings(engine, second["run_id"])
    assert {(r.kind, r.scope) for r in rows} >= {("drift", "tag:refunds")}
    assert all(r.baseline_run_id == first["run_id"] for r in rows)

    # Drift is news, not a crash: the flow run itself completed.
    with api_client(prefect_api) as client:
        runs = client.post("flow_runs/filter", json={"limit": 200}).json()
    monitor_states = [r["state_type"] for r in runs if r["parameters"].get("trigger") == "monitor"]
    assert monitor_states and set(monitor_states) == {"COMPLETED"}

    # Without --fail-on-drift the same findings exit 0; a table is printed.
    with ReferenceServer(Knobs(version="regressed-refunds")) as bad:
        code, out, err = monitor(home=home, api=prefect_api, base_url=bad.base_url)
    assert code == 0, out + err
    assert "tag:refunds" in out and "alarm(s)" in out


def test_fail_on_drift_names_the_allowed_severities(tmp_path: Path) -> None:
    code, _, err = monitor(
        "--fail-on-drift", "severe", home=tmp_path / "home", api=None, base_url="http://x/v1"
    )
    assert code == 3
    assert "--fail-on-drift" in err and "info, low, medium, high, critical" in err


def test_trends_cli_prints_the_nights_and_writes_the_page(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_ids = []
    with ReferenceServer() as server:
        for _ in range(2):
            ran = evalcore(
                *("run", "--set", "monitoring", "--suite", str(EXAMPLE), "--json"),
                *("--target-url", server.base_url, "--judge-url", server.base_url),
                cwd=ROOT,
                home=home,
            )
            assert ran.returncode == 0, ran.stderr
            run_ids.append(json.loads(ran.stdout)["run_id"])
    page = tmp_path / "trends.html"
    done = evalcore(
        *("trends", "--days", "7", "--suite", str(EXAMPLE), "--html", str(page), "--json"),
        cwd=ROOT,
        home=home,
    )
    assert done.returncode == 0, done.stderr
    trend = json.loads(done.stdout)
    (night,) = trend["nights"]
    assert (trend["route"], night["run_id"], night["runs"]) == ("support-assistant", run_ids[-1], 2)
    assert night["pass_rate"] == 1.0
    assert page.read_text().count("<svg") == 5
    table = evalcore("trends", "--suite", str(EXAMPLE), cwd=ROOT, home=home)
    assert table.returncode == 0 and run_ids[-1][:12] in table.stdout
    bad = evalcore("trends", "--days", "0", "--suite", str(EXAMPLE), cwd=ROOT, home=home)
    assert bad.returncode == 3
