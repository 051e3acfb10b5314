"""What `evalcore validate`, `run`, `runs list` and `runs show` say about three things a new
user meets: a model with no price (its cost is unknown, never $0, and a cost budget cannot
be checked), the cases that errored (named with their class), and the pass rate (per case
under the scorecard's samples rule, the per-sample rate beside it and labelled).

The route is scripted in this module: case `gen-N` gets, by N mod 4, 0 a right answer
every time; 1 a wrong one on its first call only (2 of 3 samples pass); 2 a wrong one
every time; 3 an exception (an error, never a failure). With 8 cases of 3 samples under
`at_least: 2`, 4 cases pass, 2 fail and 2 are undecided (66.7% per case), while 10 of 18
scored samples pass (55.6% per sample).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.suites import write_suite
from evalcore.targets.base import TargetTimeout
from tests.cli_helpers import evalcore

CALLS: Counter[str] = Counter()
SCRIPTED = "tests.cli.test_run_figures:scripted"
UNPRICED = "model 'mystery' has no price under `prices`"


def scripted(case_input: dict[str, Any]) -> dict[str, Any]:
    question = case_input["messages"][0]["content"]
    found = re.search(r"Order (\d+)", question)
    assert found is not None
    CALLS[question] += 1
    kind = int(found[1]) % 4
    if kind == 3:
        raise RuntimeError("the model fell over\n   while reading\n" + "and kept talking " * 30)
    wrong = kind == 2 or (kind == 1 and CALLS[question] == 1)
    return {
        "text": f"You can return it within {'30' if wrong else '14'} days.",
        "usage": {"prompt_tokens": 20, "completion_tokens": 9},
    }


def timing_out(case_input: dict[str, Any]) -> dict[str, Any]:
    raise TargetTimeout("no reply within 2 s")


def scripted_suite(
    root: Path,
    *,
    model: str = "stub",
    cases: int = 8,
    samples: int = 3,
    rule: str = "{mode: at_least, min_passes: 2}",
    budgets: str = "",
    callable_spec: str = SCRIPTED,
    extra: str = "",
    expect: dict[str, object] | None = None,
    set_name: str = "monitoring",
) -> Path:
    """A suite of one set answered by `callable_spec` as `model` (only `stub` is priced),
    under the samples `rule`, with `budgets` (a YAML mapping) when given."""
    CALLS.clear()
    return write_suite(
        root,
        cases=cases,
        samples=samples,
        expect=expect,
        set_name=set_name,
        target_yaml=f"{{kind: python, callable: '{callable_spec}', model: {model}}}",
        run_yaml="{concurrency: 1, timeout_s: 10, retries: 0}",
        scorecard_extra=f"samples: {rule}\n" + (f"budgets: {budgets}\n" if budgets else "") + extra,
    )


def run_json(suite: Path, home: Path) -> dict[str, Any]:
    done = evalcore("run", "--suite", str(suite), "--json", cwd=suite.parent, home=home)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def cli(*args: str, suite: Path, home: Path) -> str:
    done = evalcore(*args, cwd=suite.parent, home=home, env={"COLUMNS": "220"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def flat(text: str) -> str:
    return " ".join(text.split())


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# --- a model with no price ---------------------------------------------------------------


def test_validate_warns_at_the_target_model_that_has_no_price(tmp_path: Path) -> None:
    suite = scripted_suite(tmp_path / "evals", model="mystery", budgets="{cost_per_case_usd: 0.01}")
    card = suite / "scorecard.yaml"
    text = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")
    as_json = evalcore(
        "validate", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h"
    )

    assert text.returncode == 0 and as_json.returncode == 0, text.stderr
    expected = (
        f"{card}:{line_of(card, 'model: mystery')}: target.model: {UNPRICED}: runs will report "
        "their cost as unknown, not $0, and the cost budgets (budgets.cost_per_case_usd) cannot "
        "be checked, so a gate with them is inconclusive; add `mystery: {input_per_mtok: ..., "
        "output_per_mtok: ...}` under `prices`"
    )
    assert f"warning: {expected}" in text.stderr.splitlines()
    assert expected in json.loads(as_json.stdout)["warnings"]

    priced = scripted_suite(tmp_path / "priced", budgets="{cost_per_case_usd: 0.01}")
    quiet = evalcore("validate", "--suite", str(priced), cwd=tmp_path, home=tmp_path / "h")
    assert quiet.returncode == 0 and "has no price" not in quiet.stderr


def test_validate_warns_about_an_unpriced_judge_only_when_a_case_asks_for_it(
    tmp_path: Path,
) -> None:
    judge = "judge: {base_url: 'http://127.0.0.1:9/v1', model: grader}\n"
    judged = scripted_suite(
        tmp_path / "judged",
        extra=judge,
        expect={"judge": {"rubric": "says 14 days", "min_score": 0.5}},
    )
    card = judged / "scorecard.yaml"
    done = evalcore("validate", "--suite", str(judged), "--json", cwd=tmp_path, home=tmp_path / "h")
    assert done.returncode == 0, done.stderr
    (warning,) = [w for w in json.loads(done.stdout)["warnings"] if "has no price" in w]
    assert warning.startswith(
        f"{card}:{line_of(card, 'model: grader')}: judge.model: model 'grader' has no price "
        "under `prices`: runs will report the judge's cost as unknown, not $0"
    )

    unjudged = scripted_suite(tmp_path / "unjudged", extra=judge)
    done = evalcore(
        "validate", "--suite", str(unjudged), "--json", cwd=tmp_path, home=tmp_path / "h"
    )
    assert not [w for w in json.loads(done.stdout)["warnings"] if "has no price" in w]


def test_a_run_of_an_unpriced_model_says_its_cost_is_unknown_never_zero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # Three cases: no errors, so only the cost budget can keep the verdict from passing.
    suite = scripted_suite(
        tmp_path / "evals", model="mystery", cases=3, budgets="{cost_per_case_usd: 0.01}"
    )
    summary = run_json(suite, home)
    assert summary["cost_usd"] is None and summary["cost_unknown"] == UNPRICED
    assert summary["judge_cost_usd"] == 0.0  # no judge asked for: nothing unknown there

    shown = flat(cli("runs", "show", summary["run_id"][:12], suite=suite, home=home))
    assert f"cost unknown: {UNPRICED}" in shown and "cost $" not in shown
    assert "Verdict: inconclusive" in shown and "not measurable" in shown
    details = json.loads(cli("runs", "show", summary["run_id"], "--json", suite=suite, home=home))
    assert details["cost_usd"] is None and details["verdict"] == "inconclusive"
    (budget,) = [c for c in details["criteria"] if c["name"] == "cost per case (mean)"]
    assert (budget["measured"], budget["held"]) == ("not measurable", None)
    assert budget["detail"].startswith(UNPRICED)
    assert details["reason"] == (
        f"could not be measured: cost per case (mean) ({UNPRICED}: the cost is unknown)"
    )

    (listed,) = json.loads(cli("runs", "list", "--json", suite=suite, home=home))
    assert (listed["cost_usd"], listed["cost_unknown"]) == (None, UNPRICED)
    table = cli("runs", "list", suite=suite, home=home)
    (row,) = [line for line in table.splitlines() if summary["run_id"][:12] in line]
    assert "unknown" in row and "$0" not in row
    assert f"cost unknown: {UNPRICED}" in flat(table)


def test_an_unknown_cost_changes_no_verdict_without_a_cost_budget(tmp_path: Path) -> None:
    home = tmp_path / "home"
    suite = scripted_suite(tmp_path / "evals", model="mystery", cases=3)
    summary = run_json(suite, home)
    details = json.loads(cli("runs", "show", summary["run_id"], "--json", suite=suite, home=home))
    assert details["verdict"] == "pass" and details["cost_usd"] is None
    assert not [c for c in details["criteria"] if "cost" in c["name"]]


def test_a_priced_model_is_costed_and_its_budget_checked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    suite = scripted_suite(tmp_path / "evals", cases=3, budgets="{cost_per_case_usd: 0.01}")
    summary = run_json(suite, home)
    # 9 calls of 20 + 9 tokens at $0.5 / $1.5 per million
    assert summary["cost_usd"] == pytest.approx(9 * (20 * 0.5 + 9 * 1.5) / 1e6)
    assert summary["cost_unknown"] is None
    details = json.loads(cli("runs", "show", summary["run_id"], "--json", suite=suite, home=home))
    (budget,) = [c for c in details["criteria"] if c["name"] == "cost per case (mean)"]
    assert budget["held"] is True and details["verdict"] == "pass"


# --- errored cases -----------------------------------------------------------------------


def test_errored_cases_are_named_with_their_class_and_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    suite = scripted_suite(tmp_path / "evals")
    done = evalcore("run", "--suite", str(suite), cwd=tmp_path, home=home, env={"COLUMNS": "220"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Errored cases"))
    listed = lines[heading + 1 : heading + 7]
    assert [line.split()[:3] for line in listed] == [
        [case_id, f"#{sample}", "callable_error"]
        for case_id in ("gen-000003", "gen-000007")
        for sample in range(3)
    ]
    assert all("RuntimeError: the model fell over while reading and kept talking" in line
               for line in listed)  # fmt: skip

    (run,) = json.loads(cli("runs", "list", "--json", suite=suite, home=home))
    details = json.loads(cli("runs", "show", run["run_id"], "--json", suite=suite, home=home))
    assert details["errors"] == 6 and len(details["errored"]) == 6
    first = details["errored"][0]
    assert set(first) == {"case_id", "sample", "error_class", "message"}
    assert (first["case_id"], first["sample"], first["error_class"]) == (
        "gen-000003", 0, "callable_error",
    )  # fmt: skip
    assert "\n" not in first["message"] and len(first["message"]) <= 160
    assert first["message"].endswith("…")  # a long message is cut, on its one line
    shown = cli("runs", "show", run["run_id"], suite=suite, home=home)
    assert "Errored cases" in shown and "gen-000007 #2  callable_error" in shown


def test_the_errored_list_is_capped_and_says_how_many_there_are(tmp_path: Path) -> None:
    home = tmp_path / "home"
    suite = scripted_suite(
        tmp_path / "evals",
        cases=30,
        samples=1,
        callable_spec="tests.cli.test_run_figures:timing_out",
    )
    summary = run_json(suite, home)
    assert summary["errors"] == 30 and len(summary["errored"]) == 25
    assert {e["error_class"] for e in summary["errored"]} == {"timeout"}
    assert summary["errored"][0]["message"] == "no reply within 2 s"
    shown = cli("runs", "show", summary["run_id"], suite=suite, home=home)
    assert "Errored cases (target problems, not failures) (25 of 30 shown)" in shown


# --- pass rate per case ------------------------------------------------------------------


def test_pass_rate_is_per_case_under_the_rule_with_the_per_sample_rate_beside_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    suite = scripted_suite(
        tmp_path / "evals",
        budgets="{max_error_rate: 0.5}",
        extra="thresholds: {monitoring: {min_pass_rate: 0.6}}\n",
    )
    summary = run_json(suite, home)
    (monitoring,) = summary["sets"]
    assert (monitoring["cases_passed"], monitoring["cases_failed"]) == (4, 2)
    assert monitoring["cases_undecided"] == 2  # their samples all errored
    assert monitoring["pass_rate"] == pytest.approx(4 / 6)  # a case 2 of 3 passing passes
    assert monitoring["sample_pass_rate"] == pytest.approx(10 / 18)

    (listed,) = json.loads(cli("runs", "list", "--json", suite=suite, home=home))
    assert listed["pass_rates"] == {"monitoring": pytest.approx(4 / 6)}
    assert listed["sample_pass_rates"] == {"monitoring": pytest.approx(10 / 18)}
    table = cli("runs", "list", suite=suite, home=home)
    assert "pass rate per case (per sample)" in table and "monitoring 66.7% (55.6%)" in table

    shown = cli("runs", "show", summary["run_id"], suite=suite, home=home)
    (row,) = [line for line in shown.splitlines() if line.startswith("│ monitoring")]
    assert re.search(r"│\s+66\.7% │\s+24 │\s+6 │\s+55\.6% \(10/18\) │", row), row
    assert "per sample" in shown
    # The verdict judges the same figure the summary shows.
    details = json.loads(cli("runs", "show", summary["run_id"], "--json", suite=suite, home=home))
    (criterion,) = [c for c in details["criteria"] if c["name"] == "set monitoring pass rate"]
    assert criterion["measured"] == "66.7% (4/6)" and details["verdict"] == "pass"


def test_under_the_all_rule_the_same_samples_give_a_lower_pass_rate(tmp_path: Path) -> None:
    summary = run_json(scripted_suite(tmp_path / "evals", rule="{mode: all}"), tmp_path / "h")
    (monitoring,) = summary["sets"]
    assert (monitoring["cases_passed"], monitoring["cases_failed"]) == (2, 4)
    assert monitoring["pass_rate"] == pytest.approx(2 / 6)
    assert monitoring["sample_pass_rate"] == pytest.approx(10 / 18)  # samples unchanged
