"""Release triggers on real parts: `evalcore up` starts `prefect server start`, the reference
target and deployments/serve.py; `release.created` starts exactly one gate run for the
release; a stale trigger is removed; the stack stops cleanly. Plus the static check that
prefect.yaml and deployments/serve.py declare the same trigger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from evalcore import aio
from evalcore.gate.steps import RELEASE_EVENT
from evalcore.local.stack import final_state, port_in_use, prefect_api, start_flow_run
from evalcore.results.history import run_verdict
from evalcore.results.verdict import Verdict
from evalcore.store.engine import get_engine
from evalcore.store.repository import list_runs
from evalcore.store.tables import TriggerEventRow
from tests.cli_helpers import evalcore
from tests.conftest import free_port
from tests.flows.workers_stack import wait_for_line

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_declares_the_trigger_deployments_serve_uses() -> None:
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from deployments.serve import GATE_DEPLOYMENT, release_trigger

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == GATE_DEPLOYMENT]
    path, _, attribute = deployment["entrypoint"].partition(":")
    assert (ROOT / path).is_file() and f"async def {attribute}(" in (ROOT / path).read_text()
    (declared,) = deployment["triggers"]
    assert declared.pop("type") == "event"
    from_yaml = DeploymentEventTrigger.model_validate(declared)
    served = release_trigger()
    for field in ("name", "enabled", "match", "expect", "parameters"):
        assert getattr(from_yaml, field) == getattr(served, field), field
    assert served.expect == {RELEASE_EVENT}


@contextmanager
def on_the_stack(api: str) -> Iterator[None]:
    """Prefect calls from this process go to the stack's server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    with temporary_settings({PREFECT_API_URL: api, PREFECT_LOGGING_TO_API_ENABLED: False}):
        yield


def _release_automations(api: str) -> list[dict[str, Any]]:
    with prefect_api(api) as client:
        automations = client.post("automations/filter", json={}).json()
    return [a for a in automations if RELEASE_EVENT in a["trigger"].get("expect", [])]


@pytest.fixture
def prefect_database(db_url: str) -> Iterator[str | None]:
    """With the PostgreSQL store, the Prefect server runs on PostgreSQL too (the scale-out
    path), in a database of its own that is dropped afterwards."""
    if not db_url.startswith("postgresql"):
        yield None
        return
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    name = f"evalcore_prefect_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        host = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
        yield f"postgresql+asyncpg://{host}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_release_created_starts_one_gate_run_and_the_stack_stops_cleanly(
    tmp_path: Path, db_url: str, prefect_database: str | None
) -> None:
    from deployments.serve import build_deployments, purge_stale_triggers

    home = tmp_path / "home"
    port, reference_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALCORE_", "PREFECT_"))}
    env.update(EVALCORE_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"  # served flows start within a second, not ten
    env["EVALCORE_DATABASE_URL"] = db_url
    if prefect_database is not None:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = prefect_database
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [
                *(sys.executable, "-m", "evalcore", "up", "--port", str(port), "--no-ui"),
                *("--reference-port", str(reference_port), "--suite", str(ROOT / "evals")),
            ],
            cwd=tmp_path,  # any folder: the stack finds flows/ and deployments/ itself
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_line(log, "up: Prefect API", up, 150)
        api = f"http://127.0.0.1:{port}/api"
        assert (home / "prefect").is_dir()  # the server's state is under EVALCORE_HOME
        assert len(_release_automations(api)) == 1

        # A trigger left behind by an earlier serve under another deployment name.
        with on_the_stack(api):
            build_deployments("old-gate")[0].apply()
        assert len(_release_automations(api)) == 2

        announced = evalcore(
            *("release", "announce", "rel-9", "--wait", "--timeout", "120"),
            cwd=tmp_path,
            home=home,
            env={"EVALCORE_DATABASE_URL": db_url, "PREFECT_API_URL": api},
        )
        assert announced.returncode == 0, announced.stdout + announced.stderr
        assert "announced release rel-9" in announced.stdout
        assert ": completed" in announced.stdout

        engine = get_engine(db_url)
        (run,) = list_runs(engine, release="rel-9")
        assert (run.status, run.trigger, run.sets) == ("finished", RELEASE_EVENT, ["blocking"])
        assert run_verdict(engine, run).verdict is Verdict.passed
        # The default target of the served deployment is the stack's reference target.
        assert run.settings["target_url"] == f"http://127.0.0.1:{reference_port}/v1"
        from sqlmodel import Session, select

        with Session(engine) as session:
            (claim,) = session.exec(select(TriggerEventRow)).all()
        assert (claim.release, claim.run_id) == ("rel-9", run.id)
        if prefect_database is not None:  # the flow run is in Prefect's PostgreSQL database
            import psycopg

            with psycopg.connect(prefect_database.replace("+asyncpg", "")) as conn:
                row = conn.execute("SELECT count(*) FROM flow_run").fetchone()
            assert row is not None and row[0] >= 1

        # The nightly monitor is served on its schedule, and runs when asked to.
        with prefect_api(api) as client:
            nightly = client.get("deployments/name/nightly-monitor/nightly-monitor").json()
        (schedule,) = nightly["schedules"]
        assert (schedule["schedule"]["cron"], schedule["schedule"]["timezone"]) == (
            "0 2 * * *",
            "UTC",
        )
        flow_run_id = start_flow_run(api, "nightly-monitor/nightly-monitor")
        state = final_state(api, flow_run_id, timeout_s=120)
        assert state == "COMPLETED"
        monitored = [r for r in list_runs(engine) if r.sets == ["monitoring"]]
        assert [(r.trigger, r.status) for r in monitored] == [("nightly", "finished")]

        # Serving again removes the stale trigger: one route per deployment.
        with on_the_stack(api):
            assert len(aio.run(purge_stale_triggers())) == 1
        (left,) = _release_automations(api)
        assert left["name"] == f"{RELEASE_EVENT} → release-gate"

        family = psutil.Process(up.pid).children(recursive=True)
        assert len(family) >= 3  # server, reference target, deployments
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    assert code == 0, log.read_text()
    assert "stopped" in log.read_text()
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", reference_port)


def test_prefect_yaml_schedules_the_nightly_monitor_like_deployments_serve() -> None:
    from deployments.serve import MONITOR_DEPLOYMENT, NIGHTLY_CRON
    from evalcore.suite import load_suite

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == MONITOR_DEPLOYMENT]
    path, _, attribute = deployment["entrypoint"].partition(":")
    assert f"async def {attribute}(" in (ROOT / path).read_text()
    (schedule,) = deployment["schedules"]
    timezone = load_suite(ROOT / "evals").scorecard.drift.timezone
    assert (schedule["cron"], schedule["timezone"]) == (NIGHTLY_CRON, timezone)


def test_prefect_yaml_reads_replies_as_often_as_deployments_serve() -> None:
    from deployments.serve import REPLIES_DEPLOYMENT, REPLIES_INTERVAL_S

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == REPLIES_DEPLOYMENT]
    path, _, attribute = deployment["entrypoint"].partition(":")
    assert f"def {attribute}(" in (ROOT / path).read_text()
    assert deployment["schedules"] == [{"interval": REPLIES_INTERVAL_S}]


def test_prefect_yaml_schedules_the_weekly_digest_like_deployments_serve() -> None:
    from deployments.serve import DIGEST_CRON, DIGEST_DEPLOYMENT

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == DIGEST_DEPLOYMENT]
    path, _, attribute = deployment["entrypoint"].partition(":")
    assert f"def {attribute}(" in (ROOT / path).read_text()
    assert deployment["schedules"] == [{"cron": DIGEST_CRON, "timezone": "UTC"}]
