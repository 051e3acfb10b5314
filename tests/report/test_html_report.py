"""The HTML report of a run (`evalcore runs show RUN --report FILE`): its first 200 failed
results in (case, sample) order, each with its case's input and expectation and the
output, the errored ones with their class, and the latency of every result drawn; on
both backends."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.suites import write_suite
from tests.cli_helpers import evalcore

CASES, SAMPLES = 260, 2


def wrong_answer(case_input: dict[str, Any]) -> dict[str, Any]:
    """A wrong answer to every order, except that every 50th order's call fails."""
    order = int(case_input["messages"][-1]["content"].split()[1].rstrip(":"))
    if order % 50 == 0:
        raise ConnectionError(f"order {order}: the route is down")
    return {"text": "No returns, sorry.", "usage": {"prompt_tokens": 9, "completion_tokens": 3}}


def test_the_report_lists_the_first_failures_in_order_with_their_cases(
    tmp_path: Path, db_url: str
) -> None:
    suite = write_suite(
        tmp_path / "suite",
        cases=CASES,
        samples=SAMPLES,
        target_yaml="{kind: python, callable: 'tests.report.test_html_report:wrong_answer', "
        "model: stub}",
        run_yaml="{concurrency: 8, timeout_s: 5, retries: 0}",
    )
    env = {"EVALCORE_DATABASE_URL": db_url}
    home = tmp_path / "home"
    ran = evalcore("run", "--suite", str(suite), "--json", cwd=tmp_path, home=home, env=env)
    run_id = json.loads(ran.stdout)["run_id"]
    report = tmp_path / "report.html"
    shown = evalcore(
        "runs", "show", run_id, "--report", str(report), cwd=tmp_path, home=home, env=env
    )
    assert shown.returncode == 0, shown.stderr
    page = report.read_text()

    errored_orders = [i for i in range(CASES) if i % 50 == 0]
    failed_pairs = [(f"gen-{i:06d}", s) for i in range(CASES) if i % 50 for s in range(SAMPLES)]
    listed = re.findall(r'<h3 id="(gen-\d+)">\1 <span class="muted">sample (\d)', page)
    assert [(case, int(sample)) for case, sample in listed] == failed_pairs[:200]
    assert "<h2>Failed cases (200)</h2>" in page
    for case_id, _ in failed_pairs[:200]:
        order = int(case_id.removeprefix("gen-"))
        assert f"<pre>user: Order {order}: can I still return my lamp?</pre>" in page
    assert page.count("<pre>No returns, sorry.</pre>") == 200

    errors = re.findall(r"<tr><td>(gen-\d+)</td><td>(\d)</td><td>([\w ]+)</td>", page)
    assert [(case, int(sample)) for case, sample, _ in errors] == [
        (f"gen-{i:06d}", s) for i in errored_orders for s in range(SAMPLES)
    ]
    assert len({error_class for _, _, error_class in errors}) == 1
    assert f"<h2>Errors ({len(errored_orders) * SAMPLES})" in page
    assert "Latency" in page
