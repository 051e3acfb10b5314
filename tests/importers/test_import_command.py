"""`evalcore import` as a user runs it: what it writes, what it lists, and every bad input
refused with exit 3 and the suite left byte for byte as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evalcore.suite import load_suite
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "imports"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def run_import(work: Path, *args: str) -> Any:
    done = evalcore("import", *args, "--json", cwd=work, home=work / ".home")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def refused(work: Path, *args: str) -> str:
    before = snapshot(work / "evals")
    done = evalcore("import", *args, cwd=work, home=work / ".home")
    assert done.returncode == 3, done.stdout + done.stderr
    assert snapshot(work / "evals") == before, "a refused import changed the suite"
    return " ".join(done.stderr.split())


def test_a_spreadsheet_lands_in_the_backlog_and_the_suite_still_validates(work: Path) -> None:
    before = snapshot(work / "evals")
    result = run_import(work, "csv", str(DATA / "support.csv"), "--into", "monitoring")

    assert result["ok"] and result["written"] > 0
    out = Path(result["out"])
    assert out == Path("evals/cases/imported-csv-support.yaml")
    changed = {k for k, v in snapshot(work / "evals").items() if before.get(k) != v}
    assert changed == {"cases/imported-csv-support.yaml"}  # no other file touched
    assert evalcore("validate", cwd=work, home=work / ".home").returncode == 0
    info = json.loads(evalcore("suite", "info", "--json", cwd=work, home=work / ".home").stdout)
    assert info["counts"]["set"]["monitoring"] >= result["written"]


def test_importing_the_same_file_twice_adds_nothing(work: Path) -> None:
    first = run_import(work, "openai-evals", str(DATA / "openai_evals.jsonl"))
    written = (work / first["out"]).read_bytes()
    second = run_import(work, "openai-evals", str(DATA / "openai_evals.jsonl"))
    assert second["written"] == 0
    assert {s["why"] for s in second["skipped"]} == {"already imported"}
    assert (work / first["out"]).read_bytes() == written


def test_dry_run_says_what_would_be_written_and_writes_nothing(work: Path) -> None:
    before = snapshot(work / "evals")
    done = evalcore(
        "import", "csv", str(DATA / "support.csv"), "--dry-run", cwd=work, home=work / ".home"
    )
    assert done.returncode == 0, done.stderr
    assert "would write" in done.stdout
    assert snapshot(work / "evals") == before


def test_what_cannot_be_converted_is_listed_and_strict_refuses_it(work: Path) -> None:
    result = run_import(work, "csv", str(DATA / "support.csv"), "--dry-run")
    listed = result["not_converted"]
    assert listed, "the sample spreadsheet has a column with no case field"
    assert all(item["at"].startswith(str(DATA / "support.csv")) for item in listed)
    message = refused(work, "csv", str(DATA / "support.csv"), "--strict")
    assert "--strict" in message and "cannot be converted" in message


def test_blocking_needs_to_be_said(work: Path) -> None:
    sheet = work / "sheet.csv"
    sheet.write_text("question,expected,set\nCan I return a lamp?,30 days,blocking\n")
    message = refused(work, "csv", str(sheet))
    assert f"{sheet}:2: set blocking needs --into blocking" in message
    result = run_import(work, "csv", str(sheet), "--into", "blocking")
    assert result["written"] == 1


def test_a_csv_with_no_header_is_refused(work: Path) -> None:
    sheet = work / "no_header.csv"
    sheet.write_text("Can I return a lamp?,30 days\nWhere is my parcel?,tracking\n")
    message = refused(work, "csv", str(sheet))
    assert f"{sheet}:1: no header row" in message


def test_an_unknown_map_field_is_refused(work: Path) -> None:
    message = refused(work, "csv", str(DATA / "support.csv"), "--map", "Agent=assignee")
    assert "unknown --map field 'assignee'" in message and "Agent" in message


def test_jsonl_with_a_broken_line_is_refused_naming_the_line(work: Path) -> None:
    samples = work / "samples.jsonl"
    good = json.dumps({"input": "Do you ship to Norway?", "ideal": "no"})
    samples.write_text(f"{good}\n{good[:-5]}\n")
    message = refused(work, "openai-evals", str(samples))
    assert f"{samples}:2: not JSON" in message


def test_ids_that_collide_with_existing_cases_name_both_places(work: Path) -> None:
    taken = load_suite(work / "evals").cases[0]
    prefix, _, rest = taken.id.partition("-")
    sheet = work / "ids.csv"
    sheet.write_text(f"id,question,expected\n{rest},A brand new question?,yes\n")
    message = refused(work, "csv", str(sheet), "--prefix", prefix)
    where = load_suite(work / "evals").case_files[taken.id].relative_to(work / "evals")
    assert f"{sheet}:2: id '{taken.id}' is already used by the case at evals/{where}:" in message


def test_bad_options_are_refused_before_anything_is_read(work: Path) -> None:
    assert "--into 'production' is not a set" in refused(
        work, "csv", str(DATA / "support.csv"), "--into", "production"
    )
    assert "unknown format 'excel'" in refused(work, "excel", str(DATA / "support.csv"))
    assert "is not inside" in refused(
        work, "csv", str(DATA / "support.csv"), "--out", str(work / "cases.yaml")
    )
    assert "no such file" in refused(work, "csv", str(work / "missing.csv"))


def test_a_promptfoo_config_that_is_not_yaml_is_refused(work: Path) -> None:
    config = work / "promptfooconfig.yaml"
    config.write_text("prompts:\n  - 'Answer: {{question}}'\ntests: [\n  - vars: {question: x\n")
    message = refused(work, "promptfoo", str(config))
    assert f"{config}:" in message and "not a promptfoo config" in message


def test_a_missing_file_reference_is_refused_naming_where_it_is_written(work: Path) -> None:
    config = work / "promptfooconfig.yaml"
    config.write_text("prompts:\n  - 'Answer: {{question}}'\ntests: file://missing.csv\n")
    message = refused(work, "promptfoo", str(config))
    assert f"{config}:3: file://missing.csv not found" in message
