"""`evalcore trends` over two nights of a route whose cases have three samples, the second
run against a model with no price (`--model`): the table, the JSON and the page show the
pass rate per case with the per-sample rate beside it, labelled, and the second night's
cost as unknown with why, never $0 and never a point on the cost chart."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from evalcore.results.run_stats import RUN_TABLE, STATS_TABLE
from evalcore.store.engine import dispose_engines, get_engine
from evalcore.store.tables import utcnow
from tests.cli.test_run_figures import CALLS, UNPRICED, scripted_suite
from tests.cli_helpers import evalcore


def run_id_of(done_stdout: str) -> str:
    run_id: str = json.loads(done_stdout)["run_id"]
    return run_id


def test_trends_show_both_rates_and_an_unknown_cost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    suite = scripted_suite(
        tmp_path / "evals", budgets="{max_error_rate: 0.5, cost_per_run_usd: 1.0}"
    )
    priced = evalcore("run", "--suite", str(suite), "--json", cwd=tmp_path, home=home)
    assert priced.returncode == 0, priced.stderr
    yesterday = run_id_of(priced.stdout)
    # The priced run started a day earlier: each run is a night of its own.
    engine = get_engine(f"sqlite:///{home / 'evalcore.db'}")
    a_day_ago = utcnow() - dt.timedelta(days=1)
    with engine.begin() as conn:
        for table, key in ((RUN_TABLE, RUN_TABLE.c.id), (STATS_TABLE, STATS_TABLE.c.run_id)):
            conn.execute(sa.update(table).where(key == yesterday).values(created_at=a_day_ago))
    dispose_engines()
    CALLS.clear()
    unpriced = evalcore(
        *("run", "--suite", str(suite), "--model", "mystery", "--json"), cwd=tmp_path, home=home
    )
    assert unpriced.returncode == 0, unpriced.stderr
    today = run_id_of(unpriced.stdout)

    page = tmp_path / "trends.html"
    done = evalcore(
        *("trends", "--suite", str(suite), "--days", "7", "--html", str(page), "--json"),
        cwd=tmp_path,
        home=home,
    )
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)["nights"]
    assert (first["run_id"], second["run_id"]) == (yesterday, today)
    for night in (first, second):
        assert night["pass_rate"] == pytest.approx(4 / 6)  # per case, under at_least 2
        assert night["sample_pass_rate"] == pytest.approx(10 / 18)
    assert first["cost_usd"] > 0 and first["cost_unknown"] is None
    assert (second["cost_usd"], second["cost_per_case_usd"]) == (None, None)
    assert second["cost_unknown"] == UNPRICED

    table = evalcore(
        "trends", "--suite", str(suite), cwd=tmp_path, home=home, env={"COLUMNS": "220"}
    )
    assert table.returncode == 0, table.stderr
    assert "per sample" in table.stdout
    (row,) = [line for line in table.stdout.splitlines() if today[:12] in line]
    assert re.search(r"66\.7% │\s+55\.6% │", row) and "unknown" in row and "$0" not in row
    assert f"cost unknown on 1 night(s): {UNPRICED}" in " ".join(table.stdout.split())

    html = page.read_text()
    assert "pass rate (per case)</th>" in html and "pass rate (per sample)</th>" in html
    escaped = UNPRICED.replace("'", "&#39;")  # autoescaped in the title attribute
    assert f'<span class="unknown" title="{escaped}">unknown</span>' in html
    cost_chart = re.search(r'<figure id="chart-cost">(.*?)</figure>', html, re.S)
    pass_chart = re.search(r'<figure id="chart-pass_rate">(.*?)</figure>', html, re.S)
    assert cost_chart is not None and pass_chart is not None
    assert cost_chart[1].count("<circle") == 1  # the unknown night is a gap, not $0
    assert pass_chart[1].count("<circle") == 2 and "Pass rate per case" in pass_chart[1]
    assert "(per sample 55.6%)" in pass_chart[1]
