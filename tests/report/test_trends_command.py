"""`evalcore trends` on a store whose nights ran cases with several samples: the table and
the JSON carry pass^k with its k (and pass@k), "—" / null on a night of single samples,
and the page gets its pass^k chart."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from evalcore.store.engine import dispose_engines, get_engine
from evalcore.store.tables import utcnow
from tests.cli_helpers import evalcore
from tests.results.test_trends import SAMPLED, make_run, make_sampled_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"


def test_trends_shows_pass_hat_k_for_the_nights_that_have_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    engine = get_engine(f"sqlite:///{home / 'evalcore.db'}")
    today = utcnow().replace(hour=1, minute=0, second=0, microsecond=0)
    monitoring = {case_id: v for case_id, v in SAMPLED.items() if v[0] == "monitoring"}
    sampled = make_sampled_run(engine, at=today - dt.timedelta(days=2), outcomes=monitoring)
    single = make_run(engine, at=today - dt.timedelta(days=1), passed=9, failed=1)
    dispose_engines()

    page = tmp_path / "trends.html"
    done = evalcore(
        *("trends", "--days", "7", "--suite", str(EXAMPLE), "--html", str(page), "--json"),
        cwd=ROOT,
        home=home,
    )
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)["nights"]
    assert (first["run_id"], first["reliability_k"]) == (sampled, 3)
    assert first["pass_hat_k"] == (1 + 1 / 4 + 0) / 3 and first["pass_at_k"] == 1.0
    assert (second["run_id"], second["reliability_k"], second["pass_hat_k"]) == (single, None, None)
    html = page.read_text()
    assert html.count("<svg") == 5 and 'id="chart-pass_hat_k"' in html

    table = evalcore("trends", "--suite", str(EXAMPLE), cwd=ROOT, home=home, env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if sampled[:12] in line]
    assert "41.7% (k=3)" in row and "100.0%" in row
    (plain,) = [line for line in table.stdout.splitlines() if single[:12] in line]
    assert plain.count("—") == 2
