"""The gate on a model with no price and on a route with errored cases: a cost budget that
cannot be checked makes the gate inconclusive (exit 2) and says why in the Markdown,
JUnit XML and HTML report, while without a cost budget the same unknown cost leaves the
gate green; errored cases are named with their class in the result, `--json` and the text.

The steps run without Prefect on SQLite and PostgreSQL; one `evalcore gate` runs the
flow against the shared Prefect server, as CI does."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evalcore import aio
from evalcore.exitcodes import ExitCode
from evalcore.gate.steps import GateRequest, gate_markdown, gate_result, open_gate_run
from evalcore.results.verdict import Verdict
from evalcore.run import execute_run
from evalcore.store.engine import get_engine
from evalcore.suite import load_suite
from tests.cli.test_run_figures import UNPRICED, scripted_suite
from tests.cli_helpers import evalcore


def gate_run(db_url: str, root: Path, release: str) -> str:
    engine = get_engine(db_url)
    suite = load_suite(root)
    run, _ = open_gate_run(engine, suite, GateRequest(release))
    aio.run(execute_run(engine, suite, run))
    return run.id


def test_a_cost_budget_over_an_unpriced_model_makes_the_gate_inconclusive(
    db_url: str, tmp_path: Path
) -> None:
    root = scripted_suite(
        tmp_path / "evals",
        model="mystery",
        cases=3,
        set_name="blocking",
        budgets="{cost_per_run_usd: 1.0}",
        extra="thresholds: {blocking: {min_pass_rate: 0.5}}\n",
    )
    run_id = gate_run(db_url, root, "r-unpriced")
    report, junit = tmp_path / "out" / "gate.html", tmp_path / "out" / "gate.xml"
    result = gate_result(
        get_engine(db_url), run_id, resumed=False, report_path=report, junit_path=junit
    )

    assert result.verdict is Verdict.inconclusive
    assert ExitCode(result.exit_code) is ExitCode.INCONCLUSIVE
    (budget,) = [c for c in result.criteria if c.name == "cost per run"]
    assert (budget.measured, budget.held) == ("not measurable", None)
    assert result.reason == f"could not be measured: cost per run ({UNPRICED}: the cost is unknown)"

    markdown = gate_markdown(result)
    assert f"| cost | unknown: {UNPRICED} (judge $0.0000 apart) |" in markdown
    assert "| cost per run | <= $1 | not measurable | not measured |" in markdown
    (criterion,) = [
        case
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.get("name") == "cost per run"
    ]
    error = criterion.find("error")
    assert error is not None and error.get("type") == "unmeasured"
    assert error.get("message") == "threshold <= $1, measured not measurable"
    assert UNPRICED in (error.text or "")
    html = report.read_text()
    assert "unknown</span> (model &#39;mystery&#39; has no price under `prices`)" in html
    assert "cost $" not in html


def test_without_a_cost_budget_an_unpriced_model_still_passes_the_gate(
    db_url: str, tmp_path: Path
) -> None:
    root = scripted_suite(
        tmp_path / "evals",
        model="mystery",
        cases=3,
        set_name="blocking",
        extra="thresholds: {blocking: {min_pass_rate: 0.5}}\n",
    )
    result = gate_result(get_engine(db_url), gate_run(db_url, root, "r-free"), resumed=False)
    assert (result.verdict, result.exit_code) == (Verdict.passed, 0)
    assert result.summary.cost_usd is None and result.summary.cost_unknown == UNPRICED
    assert f"| cost | unknown: {UNPRICED}" in gate_markdown(result)


def test_errored_cases_are_in_the_gate_result_and_its_markdown(db_url: str, tmp_path: Path) -> None:
    root = scripted_suite(tmp_path / "evals", set_name="blocking", budgets="{max_error_rate: 0.5}")
    result = gate_result(get_engine(db_url), gate_run(db_url, root, "r-errors"), resumed=False)
    assert result.errors == 6
    assert [(e.case_id, e.sample, e.error_class) for e in result.errored] == [
        (case_id, sample, "callable_error")
        for case_id in ("gen-000003", "gen-000007")
        for sample in range(3)
    ]
    dumped = json.loads(result.model_dump_json())
    assert dumped["errored"][0]["message"].startswith("RuntimeError: the model fell over while")
    markdown = gate_markdown(result)
    assert "## Errored cases (target problems, not failures)" in markdown
    assert "- `gen-000007` #2 · callable_error: RuntimeError: the model fell over" in markdown


@pytest.mark.slow
def test_gate_command_exits_2_and_names_the_errored_cases(tmp_path: Path, prefect_api: str) -> None:
    home = tmp_path / "home"
    root = scripted_suite(
        tmp_path / "evals",
        model="mystery",
        set_name="blocking",
        budgets="{max_error_rate: 0.5, cost_per_case_usd: 0.01}",
    )
    env = {"PREFECT_API_URL": prefect_api}
    done = evalcore(
        *("gate", "--release", "r-cli", "--suite", str(root), "--json"),
        cwd=tmp_path,
        home=home,
        env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["verdict"], result["exit_code"], result["errors"]) == ("inconclusive", 2, 6)
    assert {(e["case_id"], e["error_class"]) for e in result["errored"]} == {
        ("gen-000003", "callable_error"),
        ("gen-000007", "callable_error"),
    }
    (budget,) = [c for c in result["criteria"] if c["name"] == "cost per case (mean)"]
    assert (budget["measured"], budget["held"]) == ("not measurable", None)

    text = evalcore(
        *("gate", "--release", "r-cli-2", "--suite", str(root)),
        cwd=tmp_path,
        home=home,
        env={**env, "COLUMNS": "220"},
    )
    assert text.returncode == 2, text.stdout + text.stderr
    assert "Errored cases (target problems, not failures)" in text.stdout
    assert "gen-000003 #0  callable_error  RuntimeError: the model fell over" in text.stdout
    assert f"cost unknown: {UNPRICED}" in " ".join(text.stdout.split())
