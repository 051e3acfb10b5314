"""Baselines: accepted by an owner of the route or set, kept in history, refused otherwise
with nothing changed. Library and CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalcore import aio
from evalcore.local.reference import ReferenceServer
from evalcore.monitor.baseline import (
    BaselineError,
    accept_baseline,
    current_baseline,
    list_baselines,
)
from evalcore.run import RunRequest, execute_run, prepare_run
from evalcore.store.engine import get_engine
from evalcore.store.tables import RunRow
from evalcore.suite import EvalSet, load_suite
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


@pytest.fixture(scope="module")
def reference() -> object:
    with ReferenceServer() as server:
        yield server


def monitoring_run(db_url: str, base_url: str, *, finish: bool = True) -> RunRow:
    engine = get_engine(db_url)
    suite = load_suite(EXAMPLE)
    request = RunRequest(sets=(EvalSet.monitoring,), target_url=base_url, judge_url=base_url)
    run = prepare_run(engine, suite, request)
    if finish:
        aio.run(execute_run(engine, suite, run))
    return run


def test_an_owner_accepts_and_the_previous_baseline_stays_in_history(
    db_url: str, reference: ReferenceServer
) -> None:
    engine = get_engine(db_url)
    owners = load_suite(EXAMPLE).owners
    first = monitoring_run(db_url, reference.base_url)
    second = monitoring_run(db_url, reference.base_url)
    assert current_baseline(engine, route="support-assistant", set_name="monitoring") is None

    # The route owner, then an owner of the monitoring set.
    accept_baseline(engine, owners, run_id=first.id, by="maya.okafor", reason="first nightly")
    accept_baseline(engine, owners, run_id=second.id[:12], by="daniel.brandt", reason="new model")

    current = current_baseline(engine, route="support-assistant", set_name="monitoring")
    assert current is not None and (current.run_id, current.accepted_by) == (
        second.id,
        "daniel.brandt",
    )
    history = list_baselines(engine)
    assert [(b.run_id, b.reason, b.superseded_at is None) for b in history] == [
        (second.id, "new model", True),
        (first.id, "first nightly", False),
    ]


@pytest.mark.parametrize(
    ("by", "reason", "message"),
    [
        (
            "priya.raman",
            "looks fine",
            "priya.raman (Priya Raman) may not accept baselines for route 'support-assistant', "
            "set monitoring: owners.yaml gives them routes [] and sets ['backlog']",
        ),
        ("tom.lindqvist", "cheaper", "tom.lindqvist (Tom Lindqvist) may not accept"),
        ("mallory", "trust me", "unknown owner 'mallory' (owners.yaml lists: maya.okafor, "),
        ("maya.okafor", "   ", "a reason is required"),
    ],
)
def test_a_refused_accept_changes_nothing(
    db_url: str, reference: ReferenceServer, by: str, reason: str, message: str
) -> None:
    engine = get_engine(db_url)
    owners = load_suite(EXAMPLE).owners
    first = monitoring_run(db_url, reference.base_url)
    accept_baseline(engine, owners, run_id=first.id, by="maya.okafor", reason="first nightly")
    second = monitoring_run(db_url, reference.base_url)
    before = [b.model_dump() for b in list_baselines(engine)]
    with pytest.raises(BaselineError) as caught:
        accept_baseline(engine, owners, run_id=second.id, by=by, reason=reason)
    assert message in str(caught.value)
    assert [b.model_dump() for b in list_baselines(engine)] == before


def test_an_unfinished_run_cannot_be_a_baseline(db_url: str) -> None:
    engine = get_engine(db_url)
    run = monitoring_run(db_url, "http://127.0.0.1:9/v1", finish=False)
    with pytest.raises(BaselineError, match="is running, not finished"):
        accept_baseline(
            engine, load_suite(EXAMPLE).owners, run_id=run.id, by="maya.okafor", reason="x"
        )
    assert list_baselines(engine) == []


def test_baseline_cli_accepts_refuses_with_exit_3_and_lists(
    tmp_path: Path, reference: ReferenceServer
) -> None:
    home = tmp_path / "home"
    ran = evalcore(
        *("run", "--set", "monitoring", "--suite", str(EXAMPLE), "--json"),
        *("--target-url", reference.base_url, "--judge-url", reference.base_url),
        cwd=ROOT,
        home=home,
    )
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]

    refused = evalcore(
        *("baseline", "accept", run_id[:12], "--by", "priya.raman", "--reason", "ok"),
        *("--suite", str(EXAMPLE)),
        cwd=ROOT,
        home=home,
    )
    assert refused.returncode == 3
    assert "priya.raman (Priya Raman) may not accept baselines" in refused.stderr
    listed = evalcore("baseline", "list", "--json", cwd=ROOT, home=home)
    assert json.loads(listed.stdout) == []

    accepted = evalcore(
        *("baseline", "accept", run_id[:12], "--by", "maya.okafor", "--reason", "first"),
        *("--suite", str(EXAMPLE)),
        cwd=ROOT,
        home=home,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert f"baseline of support-assistant/monitoring is now run {run_id[:12]}" in accepted.stdout
    (row,) = json.loads(evalcore("baseline", "list", "--json", cwd=ROOT, home=home).stdout)
    assert (row["run_id"], row["accepted_by"], row["reason"], row["superseded_at"]) == (
        run_id,
        "maya.okafor",
        "first",
        None,
    )
