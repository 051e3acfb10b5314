"""The steps every import shares: ids, set, source, validation, what the suite already
has, and appending to one case file with every other byte kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from evalcore.importers.conversion import Conversion, Draft, ImportRefused, Origin
from evalcore.importers.plan import case_id, check_out, plan_import
from evalcore.importers.write import write_import
from evalcore.suite import load_suite
from evalcore.suite.sets import EvalSet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def suite_root(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "evals", tmp_path / "evals")
    return tmp_path / "evals"


def draft(question: str, line: int, **extra: Any) -> Draft:
    return Draft(
        origin=Origin("support.csv", line),
        key=f"key:{question}",
        messages=[{"role": "user", "content": question}],
        expect=extra.pop("expect", {"contains": ["30 days"]}),
        **extra,
    )


def conversion(*drafts: Draft) -> Conversion:
    return Conversion("csv", drafts=list(drafts))


def test_cases_get_stable_ids_backlog_and_a_source_naming_file_and_line(
    suite_root: Path,
) -> None:
    suite = load_suite(suite_root)
    out = suite_root / "cases" / "imported.yaml"
    first = draft("How long do I have to return a lamp?", 2, ticket="ZD-1", tags=["b", "a", "a"])
    plan = plan_import(suite, conversion(first), into=EvalSet.backlog, prefix="csv", out=out)

    (body,) = plan.bodies
    assert body["id"] == case_id("csv", first) and body["id"].startswith("csv-")
    assert body["set"] == "backlog"
    assert body["tags"] == ["a", "b"]
    assert body["source"] == {
        "kind": "import",
        "ref": "ZD-1",
        "format": "csv",
        "file": "support.csv",
        "line": 2,
    }
    again = plan_import(suite, conversion(first), into=EvalSet.backlog, prefix="csv", out=out)
    assert again.ids == plan.ids  # the same test, the same id


def test_written_cases_load_with_the_suite_and_other_files_keep_their_bytes(
    suite_root: Path,
) -> None:
    before = {p: p.read_bytes() for p in (suite_root / "cases").iterdir()}
    suite = load_suite(suite_root)
    out = suite_root / "cases" / "imported.yaml"
    plan = plan_import(
        suite,
        conversion(draft("Can I return a lamp?", 2), draft("Where is my parcel?", 3)),
        into=EvalSet.monitoring,
        prefix="csv",
        out=out,
    )
    write_import(suite_root, plan, "support.csv")

    assert {p: p.read_bytes() for p in before} == before
    reloaded = load_suite(suite_root)
    imported = [c for c in reloaded.cases if c.id in plan.ids]
    assert [c.set.value for c in imported] == ["monitoring", "monitoring"]
    assert imported[0].source.file == "support.csv" and imported[0].source.line == 2
    assert out.read_text().startswith("# Cases imported from csv (support.csv)")


def test_importing_again_adds_nothing_and_keeps_the_file(suite_root: Path) -> None:
    out = suite_root / "cases" / "imported.yaml"
    drafts = [draft("Can I return a lamp?", 2), draft("Where is my parcel?", 3)]
    plan = plan_import(
        load_suite(suite_root), conversion(*drafts), into=EvalSet.backlog, prefix="csv", out=out
    )
    write_import(suite_root, plan, "support.csv")
    written = out.read_bytes()

    again = plan_import(
        load_suite(suite_root), conversion(*drafts), into=EvalSet.backlog, prefix="csv", out=out
    )
    write_import(suite_root, again, "support.csv")

    assert again.bodies == []
    assert [s.why for s in again.skipped] == ["already imported", "already imported"]
    assert out.read_bytes() == written


def test_a_test_the_suite_already_has_is_skipped_naming_the_case(suite_root: Path) -> None:
    suite = load_suite(suite_root)
    existing = next(c for c in suite.cases if not c.input.tools and not c.input.context)
    same = Draft(
        origin=Origin("support.csv", 7),
        key="other key",
        messages=[m.model_dump(mode="json", exclude_none=True) for m in existing.input.messages],
        expect=existing.expect.model_dump(mode="json", exclude_defaults=True),
    )
    plan = plan_import(
        suite, conversion(same), into=EvalSet.backlog, prefix="csv", out=suite_root / "cases/x.yaml"
    )
    assert plan.bodies == []
    (skipped,) = plan.skipped
    assert (skipped.why, skipped.of, str(skipped.origin)) == (
        "duplicate",
        existing.id,
        "support.csv:7",
    )


def test_an_id_held_by_another_case_is_refused_naming_both_places(suite_root: Path) -> None:
    suite = load_suite(suite_root)
    taken = suite.cases[0]
    prefix, _, rest = taken.id.partition("-")
    colliding = draft("A new question entirely?", 4, own_id=rest)
    out = suite_root / "cases" / "imported.yaml"
    with pytest.raises(ImportRefused) as refused:
        plan_import(suite, conversion(colliding), into=EvalSet.backlog, prefix=prefix, out=out)
    message = str(refused.value)
    assert "nothing written" in message
    assert "support.csv:4" in message
    where = suite.case_files[taken.id]
    assert f"{where}:" in message and repr(taken.id) in message
    assert not out.exists()


def test_two_rows_with_one_id_and_different_content_are_refused(suite_root: Path) -> None:
    a = draft("Can I return a lamp?", 2, own_id="q1")
    b = draft("Where is my parcel?", 9, own_id="q1")
    with pytest.raises(
        ImportRefused,
        match=r"support\.csv:9: id 'csv-q1' is also the id of a different case at support\.csv:2",
    ):
        plan_import(
            load_suite(suite_root),
            conversion(a, b),
            into=EvalSet.backlog,
            prefix="csv",
            out=suite_root / "cases" / "x.yaml",
        )


def test_blocking_only_when_said(suite_root: Path) -> None:
    suite = load_suite(suite_root)
    row = draft("Can I return a lamp?", 5, set="blocking")
    out = suite_root / "cases" / "x.yaml"
    with pytest.raises(ImportRefused, match=r"support\.csv:5: set blocking needs --into blocking"):
        plan_import(suite, conversion(row), into=EvalSet.backlog, prefix="csv", out=out)
    plan = plan_import(suite, conversion(row), into=EvalSet.blocking, prefix="csv", out=out)
    assert plan.bodies[0]["set"] == "blocking"


def test_every_invalid_case_is_named_and_nothing_is_planned(suite_root: Path) -> None:
    bad_regex = draft("One?", 2, expect={"regex": ["(unclosed"]})
    bad_severity = draft("Two?", 3, severity="urgent")
    with pytest.raises(ImportRefused) as refused:
        plan_import(
            load_suite(suite_root),
            conversion(bad_regex, bad_severity),
            into=EvalSet.backlog,
            prefix="csv",
            out=suite_root / "cases" / "x.yaml",
        )
    message = str(refused.value)
    assert message.startswith("2 problem(s), nothing written")
    assert "support.csv:2: expect.regex" in message and "support.csv:3: severity" in message


def test_out_must_be_a_case_file_inside_cases(suite_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="is not inside"):
        check_out(suite_root, tmp_path / "elsewhere.yaml")
    with pytest.raises(ImportRefused, match=r"\.yaml, \.yml or \.jsonl"):
        check_out(suite_root, suite_root / "cases" / "imported.txt")


def test_jsonl_out_appends_one_case_per_line(suite_root: Path) -> None:
    out = suite_root / "cases" / "imported.jsonl"
    plan = plan_import(
        load_suite(suite_root),
        conversion(draft("Can I return a lamp?", 2)),
        into=EvalSet.backlog,
        prefix="csv",
        out=out,
    )
    write_import(suite_root, plan, "support.csv")
    assert len(out.read_text().splitlines()) == 1
    assert load_suite(suite_root).get(plan.ids[0]) is not None
