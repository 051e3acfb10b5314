"""`evalcore import csv`: a spreadsheet export, one case a row, its columns found by name
or given with `--map`; rows that cannot be cases are listed with their line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalcore.importers.conversion import MATCHES, ConvertOptions, ImportRefused, Match
from evalcore.importers.spreadsheet import CSV_FIELDS, convert_csv
from evalcore.suite.models import Expect, Message

DATA = Path(__file__).resolve().parents[1] / "data" / "imports"
SUPPORT = DATA / "support.csv"


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("match", MATCHES)
def test_every_support_export_draft_is_a_valid_case_input_and_expectation(match: Match) -> None:
    conversion = convert_csv(SUPPORT, ConvertOptions(match=match))

    assert conversion.format == "csv"
    assert len(conversion.drafts) == 4
    for draft in conversion.drafts:
        Expect.model_validate(draft.expect)
        for message in draft.messages:
            Message.model_validate(message)


def test_an_excel_export_is_read_with_its_fields_and_row_lines() -> None:
    """support.csv is what Excel writes: a byte-order mark, `;` between cells, CRLF, and a
    quoted cell spanning two lines (so the next row starts on line 5, not 4)."""
    drafts = convert_csv(SUPPORT, ConvertOptions()).drafts

    assert [d.origin.line for d in drafts] == [2, 3, 5, 9]
    refund, membership, legal, jailbreak = drafts
    assert refund.ticket == "ZD-48213"  # the first column, right after the byte-order mark
    assert refund.messages == [
        {"role": "user", "content": "I bought it 10 days ago in Berlin, can I return it?"}
    ]
    assert refund.expect == {"outcome": "answer", "contains": ["14 days"]}
    assert (refund.set, refund.severity, refund.notes) == (
        "monitoring",
        "critical",
        "EU withdrawal right",
    )
    assert refund.tags == ["refunds", "eu"]
    assert membership.messages[0]["content"] == (
        "how do i cancel lumen plus?\ni dont want to be charged again"
    )
    assert membership.expect == {"contains": ["Account > Membership"]}
    assert legal.expect == {"outcome": "needs_human"}
    assert legal.tags == ["needs-human", "legal"]
    assert (jailbreak.set, jailbreak.expect) == ("backlog", {"outcome": "refuse"})


def test_rows_that_cannot_be_cases_are_listed_with_line_and_reason() -> None:
    listed = convert_csv(SUPPORT, ConvertOptions()).not_converted

    assert [(n.origin.line, n.what, n.dropped) for n in listed] == [
        (1, "column 'Agent'", False),
        (6, "row", True),
        (7, "row", True),
        (8, "row", True),
    ]
    agent, no_question, tool_call, bad_severity = (n.reason for n in listed)
    assert agent == "column 'Agent' has no case field; --map Agent=FIELD to use it"
    assert no_question == "no question (column 'Question' is empty)"
    assert "outcome tool_call" in tool_call
    assert "severity 'urgent'" in bad_severity
    assert "critical, high, medium, low" in bad_severity
    assert "no expectation" in bad_severity


@pytest.mark.parametrize(
    ("match", "expect"),
    [
        ("contains", {"contains": ["14 days"]}),
        ("exact", {"exact": "14 days"}),
    ],
)
def test_match_mode_decides_how_the_expected_answer_is_checked(
    tmp_path: Path, match: Match, expect: dict[str, Any]
) -> None:
    source = write_csv(tmp_path / "s.csv", "question,expected\nEU refund window?, 14 days \n")

    (draft,) = convert_csv(source, ConvertOptions(match=match)).drafts

    assert draft.expect == expect


def test_judge_match_puts_the_expected_answer_in_the_rubric(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", "Prompt,Reference\nEU refund window?,14 days\n")

    (draft,) = convert_csv(source, ConvertOptions(match="judge")).drafts

    assert "- 14 days" in draft.expect["judge"]["rubric"]


def test_column_names_are_matched_loosely_and_system_comes_first(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "s.csv",
        "System Prompt,INPUT,Expected-Answer,Case ID,Comment,tags\n"
        "You answer for Lumen Home.,Refund window?,14 days,refund-eu-1,From ZD-1,refunds;eu | policy\n",
    )

    (draft,) = convert_csv(source, ConvertOptions()).drafts

    assert draft.messages == [
        {"role": "system", "content": "You answer for Lumen Home."},
        {"role": "user", "content": "Refund window?"},
    ]
    assert (draft.own_id, draft.notes) == ("refund-eu-1", "From ZD-1")
    assert draft.tags == ["refunds", "eu", "policy"]


def test_map_gives_a_field_to_any_column(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "s.csv",
        "Kundenfrage,Antwort,Prio,question\nRückgabe?,14 Tage,high,ignored\n",
    )
    mapping = {"Kundenfrage": "question", "antwort": "expected", "Prio": "Severity"}

    conversion = convert_csv(source, ConvertOptions(mapping=mapping))

    (draft,) = conversion.drafts
    assert draft.messages == [{"role": "user", "content": "Rückgabe?"}]
    assert (draft.expect, draft.severity) == ({"contains": ["14 Tage"]}, "high")
    (unused,) = conversion.not_converted
    assert unused.what == "column 'question'"
    assert "the question comes from column 'Kundenfrage'" in unused.reason


def test_outcome_values_are_read_loosely_and_others_leave_the_row_out(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "s.csv",
        "question,outcome\nSue you!,Needs-Human\nDiscount hack?,REFUSE\nHi?,maybe\n",
    )

    conversion = convert_csv(source, ConvertOptions())

    assert [d.expect for d in conversion.drafts] == [
        {"outcome": "needs_human"},
        {"outcome": "refuse"},
    ]
    (dropped,) = conversion.not_converted
    assert dropped.origin.line == 4
    assert (
        dropped.reason
        == "outcome 'maybe' (column 'outcome') is not one of answer, refuse, needs_human"
    )


def test_the_same_row_gives_the_same_key_wherever_it_is(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", "question,expected,ticket\nA?,a,ZD-1\nB?,b,ZD-2\n")
    moved = write_csv(tmp_path / "b.csv", "ticket,expected,question\nZD-9,b,B?\nZD-8,a,A?\n")

    keys = [d.key for d in convert_csv(first, ConvertOptions()).drafts]
    moved_keys = [d.key for d in convert_csv(moved, ConvertOptions()).drafts]

    assert keys == moved_keys[::-1]
    assert len(set(keys)) == 2


@pytest.mark.parametrize(
    ("text", "mapping", "says"),
    [
        (
            "How do I reset my password?,Use the reset link\n",
            {},
            ":1: no header row: the first line must name the columns (question, expected, ...); "
            "got 'How do I reset my password?', 'Use the reset link'",
        ),
        (
            "question,expected\nA?,a\n",
            {"question": "prompt_text"},
            ": unknown --map field 'prompt_text' for column 'question' (known: "
            + ", ".join(CSV_FIELDS)
            + ")",
        ),
        (
            "question,expected\nA?,a\n",
            {"Kundenfrage": "question"},
            ":1: --map names column 'Kundenfrage', which the header row does not have "
            "(columns: question, expected)",
        ),
        ("ticket,expected\nZD-1,a\n", {}, ":1: no column gives the question"),
        (
            "question,ticket\nA?,ZD-1\n",
            {},
            ":1: no column gives the expected answer or the outcome",
        ),
        ("", {}, ": empty file"),
    ],
    ids=["no-header", "unknown-field", "missing-column", "no-question", "no-expectation", "empty"],
)
def test_bad_input_is_refused_naming_the_file(
    tmp_path: Path, text: str, mapping: dict[str, str], says: str
) -> None:
    source = write_csv(tmp_path / "support.csv", text)

    with pytest.raises(ImportRefused) as refused:
        convert_csv(source, ConvertOptions(mapping=mapping))

    assert str(refused.value).startswith(f"{source}{says}")


def test_cells_outside_the_named_columns_are_listed_once(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "s.csv", "question,expected,\nA?,a,\nB?,b,stray\nC?,c,more\nD?,d,e,f\n"
    )

    conversion = convert_csv(source, ConvertOptions())

    assert len(conversion.drafts) == 4
    (listed,) = conversion.not_converted
    assert (listed.origin.line, listed.what, listed.dropped) == (
        3,
        "cells without a column name",
        False,
    )


def test_tags_split_on_every_separator_a_spreadsheet_uses(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "s.csv", 'question,answer,tags\nA?,a,"refunds, eu;policy|gdpr  eu"\n'
    )

    (draft,) = convert_csv(source, ConvertOptions()).drafts

    assert draft.tags == ["refunds", "eu", "policy", "gdpr"]
