"""`evalcore import inspect`: Inspect datasets (JSON Lines, a JSON array, CSV) become drafts
the way Inspect reads them; samples needing what a case cannot hold are listed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from evalcore.importers.conversion import MATCHES, ConvertOptions, ImportRefused, Match
from evalcore.importers.inspect_samples import convert_inspect
from evalcore.suite.models import Expect, Message

DATA = Path(__file__).resolve().parents[1] / "data" / "imports"
JSONL = DATA / "inspect.jsonl"
CSV = DATA / "inspect.csv"


def write_lines(path: Path, *records: dict[str, Any] | str) -> Path:
    lines = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def the_regex(expect: dict[str, Any]) -> str:
    (pattern,) = Expect.model_validate(expect).regex
    return pattern


@pytest.mark.parametrize("source", [JSONL, CSV], ids=["jsonl", "csv"])
@pytest.mark.parametrize("match", MATCHES)
def test_every_sample_file_draft_is_a_valid_case_input_and_expectation(
    source: Path, match: Match
) -> None:
    conversion = convert_inspect(source, ConvertOptions(match=match))

    assert conversion.format == "inspect"
    assert conversion.drafts
    for draft in conversion.drafts:
        Expect.model_validate(draft.expect)
        for message in draft.messages:
            Message.model_validate(message)


def test_jsonl_samples_carry_id_tags_description_and_tool_turns() -> None:
    conversion = convert_inspect(JSONL, ConvertOptions())

    by_line = {d.origin.line: d for d in conversion.drafts}
    assert list(by_line) == [1, 2, 3, 7]
    first = by_line[1]
    assert first.own_id == "refund-eu-window"
    assert first.tags == ["refunds", "eu"]
    assert first.messages == [
        {"role": "user", "content": "I bought a lamp 10 days ago in Berlin. Can I still return it?"}
    ]
    assert first.expect == {"contains": ["14 days"]}
    assert by_line[2].own_id == "2"  # Inspect ids may be numbers
    assert by_line[2].messages[1]["content"] == "Which carriers do you ship with?\nI'm in Austria."
    replay = by_line[7]
    assert replay.notes == "Replay of a tool result: the reply must relay the status."
    assert replay.messages[1]["tool_calls"] == [
        {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "LH-482913"}}
    ]
    assert replay.messages[2]["tool_call_id"] == "call_1"


def test_samples_a_case_cannot_hold_are_left_out_with_the_reason() -> None:
    conversion = convert_inspect(JSONL, ConvertOptions())

    dropped = {n.origin.line: n.reason for n in conversion.not_converted if n.dropped}
    assert set(dropped) == {4, 5, 6}
    assert "image content" in dropped[4]
    assert "sandbox and files" in dropped[5]
    assert "no target" in dropped[6]
    kept_parts = [(n.origin.line, n.what) for n in conversion.not_converted if not n.dropped]
    assert kept_parts == [(1, "metadata key 'difficulty'"), (7, "message key 'function'")]


@pytest.mark.parametrize(
    ("reply", "passes"),
    [
        ("ANSWER: B", True),
        ("The warranty is two years.\n\nANSWER: b.", True),
        ("ANSWER: C", False),
        ("ANSWER: B, C", False),
        ("B) 2 years", False),
    ],
)
def test_choices_are_asked_as_lettered_options_and_the_letter_is_checked(
    reply: str, passes: bool
) -> None:
    draft = next(d for d in convert_inspect(JSONL, ConvertOptions()).drafts if d.origin.line == 3)

    (question,) = draft.messages
    assert question["role"] == "user"
    assert "How long is the warranty on Lumen furniture?" in question["content"]
    assert "A) 1 year\nB) 2 years\nC) 5 years\nD) Lifetime" in question["content"]
    assert "'ANSWER: $LETTER'" in question["content"]
    assert bool(re.search(the_regex(draft.expect), reply)) is passes


@pytest.mark.parametrize(
    ("reply", "passes"),
    [("ANSWER: A, C", True), ("ANSWER: CA", True), ("ANSWER: A", False), ("ANSWER: A,B,C", False)],
)
def test_several_target_letters_need_exactly_those_choices(reply: str, passes: bool) -> None:
    draft = next(d for d in convert_inspect(CSV, ConvertOptions()).drafts if d.own_id == "12")

    assert "A) Austria\nB) Norway\nC) Switzerland\nD) Iceland" in draft.messages[0]["content"]
    assert "one or more of A,B,C,D" in draft.messages[0]["content"]
    assert bool(re.search(the_regex(draft.expect), reply)) is passes


def test_a_choice_target_that_is_no_letter_leaves_the_sample_out(tmp_path: Path) -> None:
    source = write_lines(
        tmp_path / "mc.jsonl",
        {"input": "Warranty?", "choices": ["1 year", "2 years"], "target": "2 years"},
        {"input": "Warranty?", "choices": ["1 year", "2 years"], "target": "C"},
    )

    conversion = convert_inspect(source, ConvertOptions())

    assert conversion.drafts == []
    reasons = [n.reason for n in conversion.not_converted]
    assert all("is not the letter of a choice (A to B)" in reason for reason in reasons)
    assert [n.origin.line for n in conversion.not_converted] == [1, 2]


@pytest.mark.parametrize(
    ("match", "reply", "passes"),
    [
        ("contains", "We ship with dpd across Austria.", True),
        ("contains", "We ship with UPS.", False),
        ("exact", "DHL", True),
        ("exact", "DHL and DPD", False),
    ],
)
def test_a_list_target_accepts_any_one_of_its_answers(
    match: Match, reply: str, passes: bool
) -> None:
    draft = next(
        d for d in convert_inspect(JSONL, ConvertOptions(match=match)).drafts if d.own_id == "2"
    )

    assert bool(re.search(the_regex(draft.expect), reply)) is passes


def test_judge_match_puts_the_target_in_the_rubric(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "s.jsonl", {"input": "EU refund window?", "target": "14 days"})

    (draft,) = convert_inspect(source, ConvertOptions(match="judge")).drafts

    assert "- 14 days" in draft.expect["judge"]["rubric"]


def test_csv_reads_columns_metadata_json_and_lists_what_it_leaves(tmp_path: Path) -> None:
    conversion = convert_inspect(CSV, ConvertOptions())

    assert [(d.origin.line, d.own_id) for d in conversion.drafts] == [
        (2, "11"),
        (3, "12"),
        (5, "14"),
    ]
    assert conversion.drafts[0].tags == ["refunds", "eu"]
    assert conversion.drafts[2].expect == {"contains": ["4.99"]}
    listed = [(n.origin.line, n.what, n.dropped) for n in conversion.not_converted]
    assert listed == [
        (1, "column 'reviewer'", False),
        (4, "sample", True),
        (5, "metadata", False),
    ]
    assert "not JSON" in conversion.not_converted[2].reason


def test_a_csv_target_cell_is_one_answer_and_rows_start_where_their_quote_does(
    tmp_path: Path,
) -> None:
    source = tmp_path / "capitals.csv"
    source.write_text(
        'input,target\n"Where is our head office?\nCity and country.","Leipzig, Germany"\n'
        "Where is the EU warehouse?,Brno\n",
        encoding="utf-8",
    )

    first, second = convert_inspect(source, ConvertOptions()).drafts

    assert first.messages[0]["content"] == "Where is our head office?\nCity and country."
    assert first.expect == {"contains": ["Leipzig, Germany"]}
    assert (first.origin.line, second.origin.line) == (2, 4)


def test_a_json_array_names_each_sample_by_the_line_it_starts_on(tmp_path: Path) -> None:
    source = tmp_path / "samples.json"
    samples = [
        {"id": "a", "input": "EU refund window?", "target": "14 days"},
        {"id": "b", "input": "Sandboxed", "target": "x", "setup": "pip install x"},
        {"id": "c", "input": "UK refund window?", "target": "30 days"},
    ]
    text = json.dumps(samples, indent=2)
    source.write_text(text, encoding="utf-8")
    # Each sample's `{` is on the line before its "id".
    opening = {
        case_id: number
        for number, line in enumerate(text.splitlines())
        for case_id in "abc"
        if f'"id": "{case_id}"' in line
    }

    conversion = convert_inspect(source, ConvertOptions())

    assert [(d.own_id, d.origin.line) for d in conversion.drafts] == [
        ("a", opening["a"]),
        ("c", opening["c"]),
    ]
    (dropped,) = conversion.not_converted
    assert dropped.origin.line == opening["b"] and "needs setup" in dropped.reason


@pytest.mark.parametrize(
    ("name", "text", "where", "says"),
    [
        ("s.jsonl", '{"input": "A?", "target": "a"}\n{"input": "B?",\n', ":2:", "not JSON"),
        ("s.json", '[\n  {"input": "A?", "target": "a"},\n  {"input": }\n]', ":3:", "not JSON"),
        ("s.json", '[\n  {"input": "A?", "target": "a"},\n  "B?"\n]', ":3:", "JSON object"),
        ("s.csv", "question,answer\nA?,a\n", ":1:", "no 'input' column"),
        ("s.csv", "id,input\n1,A?\n", ":1:", "no 'target' column"),
        ("s.jsonl", "\n\n", ":", "empty file"),
        ("s.csv", "", ":", "empty file"),
        ("s.txt", "input,target\nA?,a\n", ":", "ends in '.txt'"),
    ],
)
def test_bad_input_is_refused_naming_file_and_line(
    tmp_path: Path, name: str, text: str, where: str, says: str
) -> None:
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")

    with pytest.raises(ImportRefused) as refused:
        convert_inspect(source, ConvertOptions())

    assert str(refused.value).startswith(f"{source}{where}")
    assert says in str(refused.value)
