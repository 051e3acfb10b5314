"""The `evalcore` command as a user runs it (its entry point, in the test's process): a copy
of the example suite, exit codes, what it prints, and the rows it leaves in the database."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from evalcore.local.reference import ReferenceServer
from evalcore.local.reference.server import free_port
from tests.cli_helpers import evalcore

EVALS = Path(__file__).resolve().parents[2] / "evals"
SECRET = "sk-test-SECRET123"
SETS = {"blocking": 14, "monitoring": 34, "backlog": 8}
MONITORING_RESULTS = 54  # 34 cases, some with several samples
BLOCKING_RESULTS = 16  # 14 cases


# --- helpers -----------------------------------------------------------------------------


def flat(text: str) -> str:
    """Output with the terminal's line wrapping undone, for matching whole messages."""
    return " ".join(text.split())


def copy_suite(dest: Path) -> Path:
    shutil.copytree(EVALS, dest)
    return dest


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def totals(summary: dict[str, Any]) -> dict[str, int]:
    keys = ("results", "passed", "failed", "errors")
    return {k: sum(int(s[k]) for s in summary["sets"]) for k in keys}


def sqlite_rows(home: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "evalcore.db")) as conn:
        return conn.execute(sql, params).fetchall()


def result_count(home: Path, run_id: str | None = None) -> int:
    if run_id is None:
        return int(sqlite_rows(home, "SELECT count(*) FROM case_result")[0][0])
    return int(sqlite_rows(home, "SELECT count(*) FROM case_result WHERE run_id = ?", run_id)[0][0])


def run_args(ref: ReferenceServer, *extra: str) -> list[str]:
    return [
        "run",
        "--suite",
        "evals",
        "--set",
        "monitoring",
        "--target-url",
        ref.base_url,
        "--judge-url",
        ref.base_url,
        *extra,
    ]


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref() -> Iterator[ReferenceServer]:
    with ReferenceServer() as server:
        yield server


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A project folder holding a private copy of the example suite as `evals/`."""
    copy_suite(tmp_path / "evals")
    return tmp_path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".evalcore"


@dataclass(frozen=True)
class FinishedRun:
    work: Path
    home: Path
    run_id: str
    summary: dict[str, Any]
    process: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def finished(ref: ReferenceServer, tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """One monitoring run on the embedded SQLite store, shared by the run and resume tests."""
    work = tmp_path_factory.mktemp("finished")
    copy_suite(work / "evals")
    home = work / ".evalcore"
    process = evalcore(*run_args(ref, "--json"), cwd=work, home=home)
    assert process.returncode == 0, process.stderr
    summary = json.loads(process.stdout)
    return FinishedRun(work, home, summary["run_id"], summary, process)


# --- validate ----------------------------------------------------------------------------


def test_validate_the_example_suite(work: Path, home: Path) -> None:
    text = evalcore("validate", "--suite", "evals", cwd=work, home=home)
    assert text.returncode == 0, text.stderr
    assert "ok: 56 cases" in text.stdout

    as_json = evalcore("validate", "--suite", "evals", "--json", cwd=work, home=home)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["ok"] is True
    assert data["cases"] == 56
    assert len(data["dataset"]) == 64
    assert text.stdout.split("dataset ")[1].strip() == data["dataset"][:12]


def test_validate_reports_a_duplicate_id_with_file_line_and_field(work: Path, home: Path) -> None:
    cases = work / "evals" / "cases" / "refunds.yaml"
    edit(cases, "- id: refund-window-us-001", "- id: refund-window-eu-001")
    first = line_of(cases, "- id: refund-window-eu-001", 1)
    second = line_of(cases, "- id: refund-window-eu-001", 2)

    process = evalcore("validate", "--suite", "evals", cwd=work, home=home)

    assert process.returncode == 3
    assert process.stdout == ""
    err = flat(process.stderr)
    assert (
        f"evals/cases/refunds.yaml:{second}: id: duplicate case id 'refund-window-eu-001': "
        f"also at evals/cases/refunds.yaml:{first}"
    ) in err
    assert "Nothing was loaded." in err
    assert "Traceback" not in process.stderr


def test_validate_reports_an_invalid_regex_with_file_line_and_field(work: Path, home: Path) -> None:
    cases = work / "evals" / "cases" / "refunds.yaml"
    edit(
        cases,
        '    contains: ["30 days", "delivery", "prepaid label"]\n',
        '    contains: ["30 days", "delivery", "prepaid label"]\n    regex: ["(unclosed"]\n',
    )
    line = line_of(cases, 'regex: ["(unclosed"]')

    process = evalcore("validate", "--suite", "evals", cwd=work, home=home)

    assert process.returncode == 3
    assert f"evals/cases/refunds.yaml:{line}: expect.regex: invalid regex '(unclosed'" in flat(
        process.stderr
    )
    assert "Traceback" not in process.stderr


def test_validate_json_lists_every_problem(work: Path, home: Path) -> None:
    cases = work / "evals" / "cases" / "refunds.yaml"
    edit(cases, "- id: refund-window-us-001", "- id: refund-window-eu-001")
    edit(cases, 'contains: ["30 days", "delivery"]', 'contains: ["30 days"]\n    regex: ["["]')
    duplicate = line_of(cases, "- id: refund-window-eu-001", 2)
    regex = line_of(cases, 'regex: ["["]')

    process = evalcore("validate", "--suite", "evals", "--json", cwd=work, home=home)

    assert process.returncode == 3
    data = json.loads(process.stdout)
    assert data["ok"] is False
    issues = data["issues"]
    assert len(issues) == 2
    assert issues[0].startswith(f"evals/cases/refunds.yaml:{duplicate}: id: duplicate case id")
    assert issues[1].startswith(f"evals/cases/refunds.yaml:{regex}: expect.regex: invalid regex")


def test_validate_keeps_file_and_line_on_one_line_for_a_long_path(tmp_path: Path) -> None:
    suite = copy_suite(tmp_path / "a-checkout-folder-as-deep-as-ci-runners-make-them" / "evals")
    cases = suite / "cases" / "refunds.yaml"
    edit(cases, "- id: refund-window-us-001", "- id: refund-window-eu-001")
    second = line_of(cases, "- id: refund-window-eu-001", 2)

    process = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")

    assert process.returncode == 3
    assert f"{cases}:{second}: id: duplicate case id" in process.stderr


# --- suite info and the dataset version --------------------------------------------------


def suite_info(work: Path, home: Path) -> dict[str, Any]:
    process = evalcore("suite", "info", "--suite", "evals", "--json", cwd=work, home=home)
    assert process.returncode == 0, process.stderr
    data: dict[str, Any] = json.loads(process.stdout)
    return data


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`suite info --json` of an untouched copy of the example suite."""
    work = tmp_path_factory.mktemp("pristine")
    copy_suite(work / "evals")
    return suite_info(work, work / ".evalcore")


def test_suite_info_json(pristine: dict[str, Any]) -> None:
    info = pristine
    assert len(info["dataset"]) == 64
    int(info["dataset"], 16)
    assert info["cases"] == 56
    assert info["counts"]["set"] == SETS
    assert sum(info["counts"]["severity"].values()) == 56
    assert info["git_commit"] is None  # the copy is not in a git repository


def test_dataset_hash_ignores_formatting_and_order(
    pristine: dict[str, Any], work: Path, home: Path
) -> None:
    folder = work / "evals" / "cases"
    for path in sorted(folder.glob("*.yaml")):
        entries = yaml.safe_load(path.read_text())
        # Keys sorted (not the authored order), cases reversed, comments and flow style gone.
        path.write_text(
            yaml.safe_dump(entries[::-1], sort_keys=True, allow_unicode=True, width=4096)
        )
    # And one case moves to a file of its own.
    refunds = yaml.safe_load((folder / "refunds.yaml").read_text())
    (folder / "refunds.yaml").write_text(yaml.safe_dump(refunds[1:], sort_keys=False))
    (folder / "moved.yaml").write_text(yaml.safe_dump(refunds[:1], sort_keys=False))

    after = suite_info(work, home)
    assert after["dataset"] == pristine["dataset"]
    assert after["counts"] == pristine["counts"]


def test_dataset_hash_changes_with_one_expected_phrase(
    pristine: dict[str, Any], work: Path, home: Path
) -> None:
    edit(
        work / "evals" / "cases" / "refunds.yaml",
        'contains: ["30 days", "delivery"]',
        'contains: ["30 days", "delivery date"]',
    )
    after = suite_info(work, home)
    assert after["dataset"] != pristine["dataset"]
    assert after["counts"] == pristine["counts"]


# --- usage errors ------------------------------------------------------------------------

CLICK_ESCAPES = (
    "cli.py main() catches click.exceptions.ClickException, but typer 0.29 raises its "
    "vendored typer._click exceptions (not subclasses of click's), so usage errors escape "
    "as a traceback with exit 1"
)


def test_an_unknown_option_exits_3(work: Path, home: Path) -> None:
    process = evalcore("run", "--suite", "evals", "--frobnicate", cwd=work, home=home)
    assert process.returncode == 3
    assert "No such option: --frobnicate" in process.stderr
    assert "Traceback" not in process.stderr


def test_a_bad_set_value_exits_3(work: Path, home: Path) -> None:
    process = evalcore("run", "--suite", "evals", "--set", "nightly", cwd=work, home=home)
    assert process.returncode == 3
    assert "nightly" in process.stderr
    assert "Traceback" not in process.stderr
    assert not (home / "evalcore.db").exists()  # nothing started


# --- run ---------------------------------------------------------------------------------


def test_run_monitoring_against_the_reference_target(finished: FinishedRun) -> None:
    summary = finished.summary
    assert summary["status"] == "finished"
    assert summary["planned"] == MONITORING_RESULTS
    assert [s["set"] for s in summary["sets"]] == ["monitoring"]
    assert summary["sets"][0]["cases"] == SETS["monitoring"]
    assert totals(summary) == {
        "results": MONITORING_RESULTS,
        "passed": MONITORING_RESULTS,
        "failed": 0,
        "errors": 0,
    }
    assert summary["errors_by_class"] == {}
    assert summary["judge_cost_usd"] > 0  # the judge was called, through --judge-url

    assert result_count(finished.home, finished.run_id) == MONITORING_RESULTS
    assert result_count(finished.home) == MONITORING_RESULTS
    rows = sqlite_rows(
        finished.home,
        "SELECT count(DISTINCT case_id), count(passed), sum(passed), count(error_class) "
        "FROM case_result",
    )
    assert rows == [(SETS["monitoring"], MONITORING_RESULTS, MONITORING_RESULTS, 0)]
    assert sqlite_rows(finished.home, "SELECT id, status FROM run") == [
        (finished.run_id, "finished")
    ]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_run_writes_to_postgres_when_configured(
    ref: ReferenceServer, work: Path, home: Path, db_url: str
) -> None:
    process = evalcore(
        *run_args(ref, "--json"), cwd=work, home=home, env={"EVALCORE_DATABASE_URL": db_url}
    )
    assert process.returncode == 0, process.stderr
    summary = json.loads(process.stdout)
    assert totals(summary)["results"] == MONITORING_RESULTS

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(error_class) FROM case_result WHERE run_id = %s",
            (summary["run_id"],),
        ).fetchone()
        runs = conn.execute("SELECT id, status FROM run").fetchall()
    assert rows == (MONITORING_RESULTS, 0)
    assert runs == [(summary["run_id"], "finished")]
    assert not (home / "evalcore.db").exists()  # nothing went to the embedded store


# --- resume ------------------------------------------------------------------------------


def test_resume_a_finished_run_adds_nothing(finished: FinishedRun) -> None:
    process = evalcore(
        "run",
        "--suite",
        "evals",
        "--resume",
        finished.run_id[:12],
        cwd=finished.work,
        home=finished.home,
    )
    assert process.returncode == 0, process.stderr
    assert f"run {finished.run_id[:12]} already finished" in flat(process.stderr)
    assert result_count(finished.home) == MONITORING_RESULTS


def test_resume_with_json_prints_only_json(finished: FinishedRun) -> None:
    process = evalcore(
        "run",
        "--suite",
        "evals",
        "--resume",
        finished.run_id,
        "--json",
        cwd=finished.work,
        home=finished.home,
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["run_id"] == finished.run_id


def test_resume_an_unknown_run_exits_3(finished: FinishedRun) -> None:
    process = evalcore(
        "run", "--suite", "evals", "--resume", "nosuchid", cwd=finished.work, home=finished.home
    )
    assert process.returncode == 3
    assert "no run with id 'nosuchid'" in flat(process.stderr)
    assert "Traceback" not in process.stderr
    assert result_count(finished.home) == MONITORING_RESULTS


def test_resume_after_a_case_changed_exits_3(finished: FinishedRun, tmp_path: Path) -> None:
    changed = copy_suite(tmp_path / "evals")
    edit(
        changed / "cases" / "refunds.yaml",
        'contains: ["30 days", "delivery"]',
        'contains: ["30 days", "delivery date"]',
    )
    process = evalcore(
        "run",
        "--suite",
        str(changed),
        "--resume",
        finished.run_id,
        cwd=tmp_path,
        home=finished.home,
    )
    assert process.returncode == 3
    err = flat(process.stderr)
    assert "the cases changed" in err
    assert f"run {finished.run_id[:12]}" in err
    assert result_count(finished.home) == MONITORING_RESULTS
    assert sqlite_rows(finished.home, "SELECT count(*) FROM run") == [(1,)]


# --- a target that is down ---------------------------------------------------------------


def test_a_target_that_is_down_gives_errors_not_failures(work: Path, home: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    process = evalcore(
        "run",
        "--suite",
        "evals",
        "--set",
        "monitoring",
        "--target-url",
        dead,
        "--judge-url",
        dead,
        "--retries",
        "0",
        "--timeout",
        "2",
        "--json",
        cwd=work,
        home=home,
    )
    assert process.returncode == 0, process.stderr  # the verdict (exit 2) is not built yet
    summary = json.loads(process.stdout)
    assert totals(summary) == {
        "results": MONITORING_RESULTS,
        "passed": 0,
        "failed": 0,
        "errors": MONITORING_RESULTS,
    }
    assert summary["errors_by_class"] == {"connection": MONITORING_RESULTS}
    assert summary["failures"] == []

    rows = sqlite_rows(
        home,
        "SELECT error_class, count(*), count(passed), min(length(error_message)), "
        "max(attempts) FROM case_result GROUP BY error_class",
    )
    assert len(rows) == 1
    error_class, n, scored, shortest_message, attempts = rows[0]
    assert (error_class, n, scored, attempts) == ("connection", MONITORING_RESULTS, 0, 1)
    assert shortest_message > 0


# --- secrets -----------------------------------------------------------------------------


def test_an_api_key_never_reaches_the_database_or_the_output(
    ref: ReferenceServer, work: Path, home: Path
) -> None:
    scorecard = work / "evals" / "scorecard.yaml"
    edit(scorecard, "  # api_key_env: OPENAI_API_KEY\n", "  api_key_env: EVALCORE_TEST_KEY\n")
    edit(scorecard, "  model: judge\n", "  model: judge\n  api_key_env: EVALCORE_TEST_KEY\n")
    env = {"EVALCORE_TEST_KEY": SECRET}

    process = evalcore(*run_args(ref, "--set", "blocking"), cwd=work, home=home, env=env)
    assert process.returncode == 0, process.stderr

    # The key was in play: the run recorded the variable's name and got real answers.
    (config,) = sqlite_rows(home, "SELECT target_config FROM run")
    assert json.loads(config[0])["api_key_env"] == "EVALCORE_TEST_KEY"
    everything = MONITORING_RESULTS + BLOCKING_RESULTS
    assert sqlite_rows(home, "SELECT count(*), sum(passed) FROM case_result") == [
        (everything, everything)
    ]

    assert "SECRET123" not in process.stdout
    assert "SECRET123" not in process.stderr
    files = sorted(p for p in home.rglob("*") if p.is_file())
    assert home / "evalcore.db" in files
    for path in files:  # the database and its -wal / -shm companions
        assert b"SECRET123" not in path.read_bytes(), path


def test_a_missing_api_key_variable_is_a_configuration_error(
    ref: ReferenceServer, work: Path, home: Path
) -> None:
    scorecard = work / "evals" / "scorecard.yaml"
    edit(scorecard, "  # api_key_env: OPENAI_API_KEY\n", "  api_key_env: EVALCORE_TEST_KEY\n")
    process = evalcore(*run_args(ref), cwd=work, home=home)
    assert process.returncode == 3
    assert "EVALCORE_TEST_KEY" in flat(process.stderr)
    assert "Traceback" not in process.stderr


def test_a_judge_without_its_key_stops_a_run_of_judged_cases_before_it_starts(
    ref: ReferenceServer, work: Path, home: Path
) -> None:
    """As a target's missing key does: one line, exit 3, no run row, nothing called; a
    run of a set with no judged case does not need the judge's key."""
    scorecard = work / "evals" / "scorecard.yaml"
    edit(scorecard, "  model: judge\n", "  model: judge\n  api_key_env: EVALCORE_TEST_JUDGE_KEY\n")
    urls = ("--target-url", ref.base_url, "--judge-url", ref.base_url)
    said = "judge API key variable EVALCORE_TEST_JUDGE_KEY is not set"
    for command in (run_args(ref), ["monitor", "--suite", "evals", *urls]):
        process = evalcore(*command, cwd=work, home=home)
        assert process.returncode == 3, command
        assert said in flat(process.stderr), command
        assert "Traceback" not in process.stderr
    assert sqlite_rows(home, "SELECT count(*) FROM run") == [(0,)]

    blocking = evalcore("run", "--suite", "evals", "--set", "blocking", *urls, cwd=work, home=home)
    assert blocking.returncode == 0, blocking.stderr
    assert sqlite_rows(home, "SELECT count(*) FROM run") == [(1,)]


def test_a_run_that_cannot_start_is_not_left_running(
    ref: ReferenceServer, work: Path, home: Path
) -> None:
    scorecard = work / "evals" / "scorecard.yaml"
    edit(scorecard, "  # api_key_env: OPENAI_API_KEY\n", "  api_key_env: EVALCORE_TEST_KEY\n")
    process = evalcore(*run_args(ref), cwd=work, home=home)
    assert process.returncode == 3
    assert sqlite_rows(home, "SELECT id FROM run WHERE status = 'running'") == []
