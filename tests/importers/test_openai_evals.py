"""`evalcore import openai-evals`: samples.jsonl lines become drafts whose `ideal` is the
reference answer; what has no counterpart is listed with its line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from evalcore.importers.conversion import MATCHES, ConvertOptions, ImportRefused, Match
from evalcore.importers.openai_evals import convert_openai_evals
from evalcore.suite.models import Expect, Message

DATA = Path(__file__).resolve().parents[1] / "data" / "imports"
SAMPLES = DATA / "openai_evals.jsonl"


def write_lines(path: Path, *records: dict[str, Any] | str) -> Path:
    lines = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample(question: str, ideal: Any, **extra: Any) -> dict[str, Any]:
    return {"input": [{"role": "user", "content": question}], "ideal": ideal, **extra}


@pytest.mark.parametrize("match", MATCHES)
def test_every_sample_file_draft_is_a_valid_case_input_and_expectation(match: Match) -> None:
    conversion = convert_openai_evals(SAMPLES, ConvertOptions(match=match))

    assert conversion.format == "openai-evals"
    assert [d.origin.line for d in conversion.drafts] == [1, 2, 3, 4, 6]
    for draft in conversion.drafts:
        Expect.model_validate(draft.expect)
        for message in draft.messages:
            Message.model_validate(message)


def test_chat_input_keeps_its_turns_and_a_string_input_is_one_user_message() -> None:
    drafts = convert_openai_evals(SAMPLES, ConvertOptions()).drafts

    first, _, string_input, few_shot, _ = drafts
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert (
        first.messages[1]["content"]
        == "How long do I have to return a sofa bought online in Germany?"
    )
    assert first.expect == {"contains": ["14 days"]}
    assert string_input.messages == [
        {
            "role": "user",
            "content": "What is the warranty on the Aria floor lamp? Answer with the number of years only.",
        }
    ]
    # Few-shot turns keep their content (their `name` is listed, see below).
    assert [m["content"] for m in few_shot.messages[1:3]] == [
        "my parcel has been stuck in Leipzig for a week",
        "shipping",
    ]


def test_a_line_without_ideal_is_left_out_and_listed_with_its_line() -> None:
    conversion = convert_openai_evals(SAMPLES, ConvertOptions())

    dropped = [n for n in conversion.not_converted if n.dropped]
    assert [(str(n.origin), n.what) for n in dropped] == [(f"{SAMPLES}:5", "sample")]
    assert "no 'ideal' answer" in dropped[0].reason
    assert "model-graded" in dropped[0].reason


def test_other_keys_and_message_names_are_listed_once_at_the_first_line(tmp_path: Path) -> None:
    few_shot = [
        {"role": "system", "content": "Reply with the label.", "name": "example_user"},
        {"role": "user", "content": "parcel late"},
    ]
    source = write_lines(
        tmp_path / "samples.jsonl",
        sample("Do you ship to Norway?", "no", source="ZD-1"),
        {"input": few_shot, "ideal": "shipping", "source": "ZD-2", "weight": 2},
        {"input": few_shot, "ideal": "shipping again"},
    )

    listed = convert_openai_evals(source, ConvertOptions()).not_converted

    assert [(n.origin.line, n.what, n.dropped) for n in listed] == [
        (1, "key 'source'", False),
        (2, "message name", False),
        (2, "key 'weight'", False),
    ]
    assert "'example_user'" in listed[1].reason


@pytest.mark.parametrize(
    ("match", "reply", "passes"),
    [
        ("contains", "Sorry, no: we do not ship to Norway yet.", True),
        ("contains", "Yes, we deliver there.", False),
        ("exact", "we do not ship to Norway", True),
        ("exact", "Sorry, we do not ship to Norway", False),
    ],
)
def test_a_list_of_ideals_accepts_any_one_of_them(
    tmp_path: Path, match: Match, reply: str, passes: bool
) -> None:
    source = write_lines(
        tmp_path / "s.jsonl", sample("Do you ship to Norway?", ["no", "we do not ship to Norway"])
    )

    (draft,) = convert_openai_evals(source, ConvertOptions(match=match)).drafts

    (pattern,) = Expect.model_validate(draft.expect).regex
    assert bool(re.search(pattern, reply)) is passes


def test_match_mode_decides_how_one_ideal_is_checked(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "s.jsonl", sample("Refund window in the EU?", "  14 days "))

    def expect(match: Match) -> dict[str, Any]:
        return convert_openai_evals(source, ConvertOptions(match=match)).drafts[0].expect

    assert expect("contains") == {"contains": ["14 days"]}
    assert expect("exact") == {"exact": "14 days"}
    assert "- 14 days" in expect("judge")["judge"]["rubric"]


def test_an_empty_ideal_or_a_missing_input_leaves_the_line_out(tmp_path: Path) -> None:
    source = write_lines(
        tmp_path / "s.jsonl",
        sample("Refund window?", ["", "  "]),
        {"ideal": "14 days"},
        "",
        {"input": [{"role": "narrator", "content": "x"}], "ideal": "y"},
        sample("Refund window?", "14 days"),
    )

    conversion = convert_openai_evals(source, ConvertOptions())

    assert [d.origin.line for d in conversion.drafts] == [5]
    reasons = {n.origin.line: n.reason for n in conversion.not_converted if n.dropped}
    assert set(reasons) == {1, 2, 4}
    assert "'ideal' is empty" in reasons[1]
    assert "no input" in reasons[2]
    assert "role 'narrator'" in reasons[4]


def test_the_same_sample_gives_the_same_key_wherever_it_is(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.jsonl", sample("A?", "a"), sample("B?", "b"))
    moved = write_lines(tmp_path / "b.jsonl", sample("B?", "b"), sample("A?", "a"))

    keys = [d.key for d in convert_openai_evals(first, ConvertOptions()).drafts]
    moved_keys = [d.key for d in convert_openai_evals(moved, ConvertOptions()).drafts]

    assert keys == moved_keys[::-1]
    assert len(set(keys)) == 2


def test_a_broken_line_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "s.jsonl", sample("A?", "a"), '{"input": "B?", "ideal": ')

    with pytest.raises(ImportRefused, match=rf"^{re.escape(str(source))}:2: not JSON"):
        convert_openai_evals(source, ConvertOptions())


def test_an_empty_file_is_refused_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "samples.jsonl"
    source.write_text("\n  \n", encoding="utf-8")

    with pytest.raises(ImportRefused, match=rf"^{re.escape(str(source))}: empty file"):
        convert_openai_evals(source, ConvertOptions())
