"""The first nightly monitor, before any baseline is accepted, has nothing to compare with,
but a case whose samples disagree tonight is still news: it is reported as flaky."""

from __future__ import annotations

from pathlib import Path

from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.store.engine import get_engine
from evalcore.suite import load_suite
from tests.monitor.test_nightly_quiet import EXAMPLE, nightly


def test_the_first_monitor_without_a_baseline_reports_flaky_cases(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'first.db'}")
    suite = load_suite(EXAMPLE)
    with ReferenceServer(Knobs(nondeterminism=0.5, seed=3)) as varying:
        first = nightly(engine, suite, varying.base_url)
    assert first.no_baseline is not None and first.baseline_run_id is None
    flaky = [f for f in first.findings if f.kind == "flaky"]
    assert flaky and first.counts["flaky"] == len(flaky), first.findings
    assert all(f.scope.startswith("case:") and f.baseline_value is None for f in flaky)
    assert not first.alarms  # flaky is news, not an alarm
