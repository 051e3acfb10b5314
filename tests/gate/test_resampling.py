"""The flake-aware gate end to end, through the gate's steps and the run engine: a failing
blocking case on a nondeterministic route is sampled again, its extra samples stored as
samples of the same run, the case cleared (or not) by the sequential test, and shown in
the JSON, Markdown, JUnit and HTML. Passing cases are never re-run; a gate stopped while
re-sampling goes on from what is stored. Bad inputs stop `evalcore gate` with exit 3.

The target is a Python callable that answers each case from a script: "ok" (passes the
case's expectation) or "bad" (fails it), and counts its calls per case.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.suites import write_suite
from evalcore import aio
from evalcore.exitcodes import ExitCode
from evalcore.gate.steps import (
    GateRequest,
    gate_markdown,
    gate_result,
    open_gate_run,
    resample_failing,
    resample_plan,
)
from evalcore.results.verdict import Verdict
from evalcore.run import execute_run
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE, get_run, list_runs
from evalcore.suite import load_suite
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
TARGET = "{kind: python, callable: 'tests.gate.test_resampling:scripted', model: stub}"
SCRIPTS: dict[str, list[str]] = {}  # case number -> answers still to give, in order
CALLS: Counter[str] = Counter()


def scripted(case_input: dict[str, Any]) -> dict[str, Any]:
    """The next scripted answer for the case ("Order N: ..."); "ok" once a script is out."""
    number = case_input["messages"][0]["content"].split(":")[0].removeprefix("Order ")
    CALLS[number] += 1
    script = SCRIPTS.get(number, [])
    answer = script.pop(0) if script else "ok"
    text = "You can return it within 14 days." if answer == "ok" else "Sorry, 30 days."
    return {"text": text}


@pytest.fixture(autouse=True)
def fresh_script() -> None:
    SCRIPTS.clear()
    CALLS.clear()


def suite(tmp_path: Path, *, samples: str, cases: int = 4, samples_per_case: int = 1) -> Path:
    return write_suite(
        tmp_path / "suite",
        cases=cases,
        samples=samples_per_case,
        set_name="blocking",
        target_yaml=TARGET,
        run_yaml="{concurrency: 1, timeout_s: 10, retries: 0}",
        scorecard_extra=f"thresholds:\n  blocking: {{min_pass_rate: 1.0}}\nsamples: {samples}\n",
    )


def gate(db_url: str, root: Path, release: str = "r1") -> tuple[str, Any]:
    """One gate run as the flow runs it: open, run the blocking set, re-sample, judge."""
    engine = get_engine(db_url)
    loaded = load_suite(root)
    run, resumed = open_gate_run(engine, loaded, GateRequest(release))
    aio.run(execute_run(engine, loaded, run))
    aio.run(resample_failing(engine, loaded, run.id))
    return run.id, gate_result(engine, run.id, resumed=resumed)


def stored_samples(db_url: str, run_id: str, case_id: str) -> list[tuple[int, bool | None]]:
    t = RESULT_TABLE.c
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(
            select(t.sample, t.passed)
            .where(t.run_id == run_id, t.case_id == case_id)
            .order_by(t.sample)
        )
        return [(sample, None if passed is None else bool(passed)) for sample, passed in rows]


def test_a_flaky_failure_is_re_sampled_stored_cleared_and_shown(
    db_url: str, tmp_path: Path
) -> None:
    root = suite(tmp_path, samples="{nondeterministic: true, max_extra: 12}")
    SCRIPTS["1"] = ["bad"]  # fails its one sample, then passes every extra one
    run_id, result = gate(db_url, root)

    # 9 passes after one failure reach the healthy boundary of 0.95 vs 0.5 (5% / 5%).
    assert stored_samples(db_url, run_id, "gen-000001") == [(0, False)] + [
        (i, True) for i in range(1, 10)
    ]
    assert dict(CALLS) == {"0": 1, "1": 10, "2": 1, "3": 1}  # passing cases never re-run
    assert (result.verdict, result.exit_code) == (Verdict.passed, ExitCode.PASS)
    assert result.failed_cases == [] and result.undecided == []
    (line,) = result.resampled
    assert (line.case_id, line.decision, line.samples, line.extra) == (
        "gen-000001",
        "healthy",
        10,
        9,
    )
    assert result.extra_samples == 9
    assert "Wald 1945" in result.sequential_rule
    shown = json.loads(result.model_dump_json())
    assert shown["resampled"][0]["extra"] == 9 and shown["extra_samples"] == 9
    markdown = gate_markdown(result)
    assert "## Re-sampled cases" in markdown
    assert "| `gen-000001` | healthy | 10 | 9 | 9/10 | -3.47 |" in markdown
    assert "9 extra samples in all." in markdown
    # JUnit: the cleared case is no failure, its re-sampling told; the HTML report shows it.
    reported = gate_result(
        get_engine(db_url),
        run_id,
        resumed=False,
        report_path=tmp_path / "gate.html",
        junit_path=tmp_path / "gate.xml",
    )
    assert reported.verdict is Verdict.passed
    junit = (tmp_path / "gate.xml").read_text()
    assert 'failures="0"' in junit
    assert "re-sampled: gen-000001: healthy after 9 extra samples, 9/10 passed" in junit
    html = (tmp_path / "gate.html").read_text()
    assert "<h2>Re-sampled cases</h2>" in html and "9 extra sample(s) in all" in html
    # The run is finished again and a second pass draws nothing more.
    run = get_run(get_engine(db_url), run_id)
    assert run is not None and run.status == "finished"
    assert run.settings["resampled"] == {"gen-000001": 1}
    assert resample_plan(get_engine(db_url), load_suite(root), run_id) == {}


def test_a_case_the_budget_leaves_undecided_makes_the_gate_inconclusive_exit_2(
    db_url: str, tmp_path: Path
) -> None:
    root = suite(tmp_path, samples="{nondeterministic: true, max_extra: 3}")
    SCRIPTS["2"] = ["bad", "ok", "ok", "ok"]  # LLR stays between the boundaries
    _, result = gate(db_url, root)
    assert (result.verdict, result.exit_code) == (Verdict.inconclusive, ExitCode.INCONCLUSIVE)
    assert result.undecided == ["gen-000002"]
    assert "sequential re-sampling" in result.reason
    (line,) = result.resampled
    assert (line.decision, line.extra, line.budget_spent) == ("undecided", 3, True)
    assert CALLS["2"] == 4


def test_a_broken_case_fails_and_other_routes_are_never_re_sampled(
    db_url: str, tmp_path: Path
) -> None:
    root = suite(tmp_path, samples="{nondeterministic: true, max_extra: 10}")
    SCRIPTS["3"] = ["bad", "bad", "bad"]
    _, result = gate(db_url, root)
    assert (result.verdict, result.failed_cases) == (Verdict.failed, ["gen-000003"])
    assert result.resampled[0].decision == "broken" and result.resampled[0].extra == 1
    assert CALLS["3"] == 2  # two failures in a row are enough evidence

    SCRIPTS.clear()
    CALLS.clear()
    plain = suite(tmp_path / "plain", samples="{mode: all}")
    SCRIPTS["3"] = ["bad"]
    _, before = gate(db_url, plain, release="r2")
    assert (before.verdict, before.failed_cases, before.resampled) == (
        Verdict.failed,
        ["gen-000003"],
        [],
    )
    assert sum(CALLS.values()) == 4  # one call per planned sample, nothing more
    assert "sequential re-sampling" not in gate_markdown(before)


def test_a_gate_stopped_while_re_sampling_goes_on_from_what_is_stored(
    db_url: str, tmp_path: Path
) -> None:
    root = suite(tmp_path, samples="{nondeterministic: true, max_extra: 12}")
    SCRIPTS["0"] = ["bad"]
    engine = get_engine(db_url)
    loaded = load_suite(root)
    run, _ = open_gate_run(engine, loaded, GateRequest("r1"))
    aio.run(execute_run(engine, loaded, run))
    # Three rounds of re-sampling, then the process "dies".
    for _ in range(3):
        plan = resample_plan(engine, loaded, run.id)
        aio.run(execute_run(engine, loaded, get_run(engine, run.id), extra=plan))  # type: ignore[arg-type]
    assert len(stored_samples(db_url, run.id, "gen-000000")) == 4
    # A retried step goes on: six more passes and the case is cleared, nothing drawn twice.
    aio.run(resample_failing(engine, loaded, run.id))
    samples = stored_samples(db_url, run.id, "gen-000000")
    assert [s for s, _ in samples] == list(range(10))
    result = gate_result(engine, run.id, resumed=False)
    assert result.verdict is Verdict.passed and result.resampled[0].extra == 9
    assert CALLS["0"] == 10


def test_runs_show_tells_the_re_sampled_cases_and_reliability(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the command reads EVALCORE_HOME's SQLite store")
    home = tmp_path / "home"
    root = suite(tmp_path, samples="{nondeterministic: true, max_extra: 12}", samples_per_case=2)
    SCRIPTS["1"] = ["ok", "bad"]
    run_id, _ = gate(f"sqlite:///{home / 'evalcore.db'}", root)
    shown = evalcore("runs", "show", run_id[:12], "--json", cwd=ROOT, home=home)
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert payload["verdict"] == "pass" and payload["extra_samples"] == 8
    assert payload["resampled"][0] | {"llr": 0} == {
        "case_id": "gen-000001",
        "decision": "healthy",
        "samples": 10,
        "extra": 8,
        "passes": 9,
        "failures": 1,
        "llr": 0,
        "budget_spent": False,
    }
    # pass^2 over the cases' own 2 samples: 3 cases always, gen-000001 half the time.
    all_scope = payload["reliability"][0]
    assert (all_scope["scope"], all_scope["k"], all_scope["cases"]) == ("all", 2, 4)
    assert all_scope["pass_hat_k"] == pytest.approx(0.75)
    table = evalcore("runs", "show", run_id[:12], cwd=ROOT, home=home)
    assert "Re-sampled cases: 8 extra sample(s)" in table.stdout
    assert "gen-000001" in table.stdout and "pass^k" in table.stdout


@pytest.mark.slow
def test_evalcore_gate_re_samples_in_its_flow_and_exits_2_when_undecided(
    tmp_path: Path, prefect_api: str
) -> None:
    root = suite(tmp_path, samples="{nondeterministic: true, max_extra: 3}")
    SCRIPTS["2"] = ["bad", "ok", "ok", "ok"]
    home = tmp_path / "home"
    done = evalcore(
        *("gate", "--release", "undecided-1", "--suite", str(root), "--json"),
        cwd=ROOT,
        home=home,
        env={"PREFECT_API_URL": prefect_api},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["verdict"], result["undecided"], result["extra_samples"]) == (
        "inconclusive",
        ["gen-000002"],
        3,
    )
    assert result["resampled"][0]["decision"] == "undecided"
    assert dict(CALLS) == {"0": 1, "1": 1, "2": 4, "3": 1}
    assert "3 extra samples of failing cases in 3 rounds" in done.stderr


@pytest.mark.parametrize(
    ("samples", "regression", "field", "message"),
    [
        (
            "{nondeterministic: true, required: 0.5, broken: 0.5}",
            "",
            "samples",
            "broken (0.5) must be below required (0.5)",
        ),
        (
            "{nondeterministic: true, max_extra: 0}",
            "",
            "samples.max_extra",
            "greater than or equal to 1",
        ),
        (
            "{nondeterministic: true}",
            "regression: {against: 0123456789ab, max_new_failures: 0}\n",
            "regression.against",
            "no run '0123456789ab' in the store to compare with",
        ),
    ],
)
def test_bad_re_sampling_and_regression_settings_exit_3_with_file_line_and_run_nothing(
    tmp_path: Path, samples: str, regression: str, field: str, message: str
) -> None:
    root = suite(tmp_path, samples=samples)
    scorecard = root / "scorecard.yaml"
    scorecard.write_text(scorecard.read_text() + regression)
    marker = "against:" if regression else "samples:"
    line = next(i for i, row in enumerate(scorecard.read_text().splitlines(), 1) if marker in row)
    home = tmp_path / "home"
    done = evalcore("gate", "--release", "bad", "--suite", str(root), cwd=ROOT, home=home)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{scorecard}:{line}: {field}" in done.stderr and message in done.stderr
    assert not CALLS  # nothing was called
    if (home / "evalcore.db").exists():
        assert list_runs(get_engine(f"sqlite:///{home / 'evalcore.db'}")) == []
