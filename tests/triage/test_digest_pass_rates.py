"""The weekly digest's latest nightly says the pass rate per case (under the scorecard's
samples rule) with the per-sample rate beside it, in Markdown and in Slack blocks, also
for a stats row stored before the per-case figure existed; its cost line says when the
nightly's cost is unknown and why, instead of a $0 within budget. On SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from evalcore import aio
from evalcore.results.run_stats import STATS_TABLE
from evalcore.run import RunRequest, execute_run, prepare_run
from evalcore.store.engine import get_engine
from evalcore.suite import Suite, load_suite
from evalcore.triage.digest import gather_week, render_markdown
from evalcore.triage.digest.render import digest_blocks
from tests.cli.test_run_figures import UNPRICED, scripted_suite


def nightly(db_url: str, suite: Suite) -> str:
    """One nightly run of the scripted route: 4 cases pass, 2 fail, 2 errored (66.7% per
    case) while 10 of 18 scored samples pass (55.6% per sample)."""
    engine = get_engine(db_url)
    run = prepare_run(engine, suite, RunRequest(trigger="nightly"))
    aio.run(execute_run(engine, suite, run))
    return run.id


def nightly_part(blocks: list[dict[str, object]]) -> str:
    (part,) = [b for b in blocks if b.get("block_id") == "part-nightly.text"]
    text = part["text"]
    assert isinstance(text, dict)
    return str(text["text"])


def test_the_nightly_pass_rate_is_per_case_with_the_per_sample_rate_beside_it(
    db_url: str, tmp_path: Path
) -> None:
    suite = load_suite(scripted_suite(tmp_path / "evals", budgets="{max_error_rate: 0.5}"))
    nightly(db_url, suite)
    digest = gather_week(get_engine(db_url), suite)

    (monitoring,) = digest.latest_nightly_sets
    assert monitoring.pass_rate == pytest.approx(4 / 6)
    assert monitoring.sample_pass_rate == pytest.approx(10 / 18)
    markdown = render_markdown(digest)
    assert "| set | pass rate | per sample | pass^k | pass@k |" in markdown
    assert "| monitoring | 66.7% | 55.6% |" in markdown
    assert "per sample: samples passed over samples scored" in markdown
    assert "• monitoring: 66.7% of cases passed (per sample 55.6%)" in nightly_part(
        digest_blocks(digest)
    )


def test_a_stats_row_from_before_the_per_case_rate_is_recomputed_for_the_digest(
    db_url: str, tmp_path: Path
) -> None:
    suite = load_suite(scripted_suite(tmp_path / "evals", budgets="{max_error_rate: 0.5}"))
    run_id = nightly(db_url, suite)
    engine = get_engine(db_url)
    # As the migration leaves a row computed before: the per-sample rate under the old
    # name in the per-set figures, no per-case counts.
    old = {"monitoring": {"pass_rate": 10 / 18, "k": 3, "pass_at_k": 1.0, "pass_hat_k": 0.0}}
    with engine.begin() as conn:
        conn.execute(
            sa.update(STATS_TABLE)
            .where(STATS_TABLE.c.run_id == run_id)
            .values(set_stats=old, cases_passed=None, cases_failed=None, pass_rate=None)
        )
    (monitoring,) = gather_week(engine, suite).latest_nightly_sets
    assert monitoring.pass_rate == pytest.approx(4 / 6)
    assert monitoring.sample_pass_rate == pytest.approx(10 / 18)


def test_the_cost_line_says_the_nightly_cost_is_unknown_and_why(
    db_url: str, tmp_path: Path
) -> None:
    suite = load_suite(
        scripted_suite(
            tmp_path / "evals",
            model="mystery",
            budgets="{max_error_rate: 0.5, cost_per_run_usd: 1.0}",
        )
    )
    nightly(db_url, suite)
    digest = gather_week(get_engine(db_url), suite)

    latency, cost = digest.budgets
    assert (cost.status, cost.unknown, cost.latest, cost.budget) == ("unknown", UNPRICED, None, 1.0)
    assert latency.status == "no budget"
    markdown = render_markdown(digest)
    assert (
        "| cost per run | unknown | $1.0000 | unknown (model 'mystery' has no price under "
        "\\`prices\\`): budget cannot be checked |"
    ) in markdown
    (part,) = [b for b in digest_blocks(digest) if b.get("block_id") == "part-budgets.text"]
    assert (
        f"• cost per run: latest *unknown* ({UNPRICED}) vs budget $1.0000, "
        "*budget cannot be checked*"
    ) in str(part["text"])
