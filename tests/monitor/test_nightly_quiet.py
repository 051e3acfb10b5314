"""Against the reference target with 10% of its answers varying: twenty nightly monitors of
`v1` after one accepted baseline raise no alarm at or above medium, and one monitor of
`regressed-refunds` raises one. The monitor's steps run in-process (open the run, run the
monitoring set, analyse), one reference server per version, no Prefect server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from evalcore import aio
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.monitor.baseline import accept_baseline
from evalcore.monitor.drift import Severity
from evalcore.monitor.steps import MonitorRequest, MonitorResult, analyse_run, open_monitor_run
from evalcore.run import execute_run
from evalcore.store.engine import get_engine
from evalcore.suite import Suite, load_suite

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "evals"
NIGHTS = 20
VARYING = 0.1


def nightly(engine: Engine, suite: Suite, base_url: str) -> MonitorResult:
    run = open_monitor_run(
        engine, suite, MonitorRequest(target_url=base_url, judge_url=base_url, trigger="nightly")
    )
    aio.run(execute_run(engine, suite, run))
    return analyse_run(engine, run.id)


def test_twenty_quiet_nights_then_a_regression_alarms(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    suite = load_suite(EXAMPLE)
    with ReferenceServer(Knobs(nondeterminism=VARYING, seed=11)) as good:
        first = nightly(engine, suite, good.base_url)
        assert first.no_baseline is not None
        accept_baseline(
            engine, suite.owners, run_id=first.run_id, by="maya.okafor", reason="first nightly"
        )
        nights = [nightly(engine, suite, good.base_url) for _ in range(NIGHTS)]
    with ReferenceServer(Knobs(version="regressed-refunds", nondeterminism=VARYING)) as bad:
        regressed = nightly(engine, suite, bad.base_url)

    assert all(n.baseline_run_id == first.run_id for n in [*nights, regressed])
    loud = {
        n.run_id[:12]: [
            f"{a.metric} {a.scope}: {a.detail}" for a in n.alarms_at_or_above(Severity.medium)
        ]
        for n in nights
    }
    assert not any(loud.values()), {k: v for k, v in loud.items() if v}
    varied = sum(n.counts.get("flaky", 0) for n in nights)
    assert varied > 0  # the target did vary: quiet is not the silence of no noise
    alarms = regressed.alarms_at_or_above(Severity.medium)
    refunds = [a for a in alarms if a.scope == "tag:refunds" and a.metric == "pass_rate"]
    assert refunds and refunds[0].effect is not None and refunds[0].effect < 0, [
        f"{a.metric} {a.scope}: {a.detail}" for a in alarms
    ]
    assert f"after {NIGHTS + 1} nightly run(s)" in refunds[0].detail
    print(f"\nregressed-refunds after {NIGHTS} quiet nights: {refunds[0].detail}")
