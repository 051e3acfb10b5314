"""Scoring is bounded: a regex that backtracks without end costs one case, not the run.

The runaway pattern here is `(a|a)+$` on forty `a`s and a `!`: it has 2**40 ways to fail,
under `re` and under the bounded engine alike. The issue's own `(a+)+$` is kept too: it
never ended under `re`, and now gets its true verdict (no match) at once.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evalcore.cli.app import app
from evalcore.scorers import SCORERS, Score, ScoreContext, ScoringError
from evalcore.scorers._pattern import SEARCH_TIME_LIMIT_S
from evalcore.store.engine import get_engine
from evalcore.store.repository import results_for_run
from evalcore.suite.models import Case
from evalcore.suite.scorecard import RefusalSignal, Signals
from evalcore.suite.warnings import nests_quantifiers
from evalcore.targets.base import Reply
from tests.cli_helpers import evalcore

RUNAWAY = "(a|a)+$"
RUNAWAY_REPLY = "a" * 40 + "!"
ISSUE_PATTERN = "(a+)+$"
ISSUE_REPLY = "a" * 40 + "b"
ORDER_REPLY = "Your order ORD-2026-000017 has shipped; it arrives within 14 days."
CTX = ScoreContext(signals=Signals())
# Generous on a loaded machine, and still far below what the runaway search takes unbounded.
WITHIN_S = SEARCH_TIME_LIMIT_S + 10


def make_case(expect: dict[str, Any]) -> Case:
    return Case.model_validate(
        {
            "id": "case-1",
            "set": "monitoring",
            "input": {"messages": [{"role": "user", "content": "Where is my order?"}]},
            "expect": expect,
        }
    )


def score(name: str, expect: dict[str, Any], reply: str, ctx: ScoreContext = CTX) -> Score:
    result = SCORERS[name](make_case(expect), Reply(text=reply), ctx)
    assert isinstance(result, Score)
    return result


# --- the time limit ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_runaway_regex_is_a_scoring_error_naming_it_once_the_limit_passes() -> None:
    started = time.perf_counter()
    with pytest.raises(ScoringError) as raised:
        score("regex", {"regex": [r"\ba+", RUNAWAY]}, RUNAWAY_REPLY)
    elapsed = time.perf_counter() - started

    assert raised.value.error_class == "scoring" and not raised.value.retryable
    assert str(raised.value).startswith(
        f"regex /{RUNAWAY}/ gave up after {SEARCH_TIME_LIMIT_S:g} s on a reply of 41 characters"
    )
    assert r"\ba+" not in str(raised.value)  # the pattern that finished is not blamed
    assert SEARCH_TIME_LIMIT_S <= elapsed < WITHIN_S

    # Only the runaway is stopped: an ordinary pattern still reads a megabyte-long reply.
    long_reply = "lorem ipsum " * 90_000 + ORDER_REPLY
    assert score("regex", {"regex": r"\bORD-\d{4}-\d{6}\b"}, long_reply).passed


@pytest.mark.timeout(60)
def test_the_issue_pattern_gets_its_verdict_at_once() -> None:
    started = time.perf_counter()
    result = score("regex", {"regex": ISSUE_PATTERN}, ISSUE_REPLY)
    assert time.perf_counter() - started < WITHIN_S
    assert not result.passed
    assert result.reason == f"no match for /{ISSUE_PATTERN}/; reply: {ISSUE_REPLY!r}"


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"\b14 days\b", "within 114 days"),
        (r"\b14 days\b", "within 14 days."),
        (r"^Yes", "No. Yes"),
        (r"(?m)^Yes$", "No.\nYes\n"),
        (r"Total: \d+$", "Total: 3\n"),
        (r"\Aabc\Z", "abc\n"),
        (r"(?i)stra(ss|ß)e", "STRASSE"),
        (r"(?i)straße", "STRASSE"),  # simple case folding, as in `re`
        (r"(?s)refund.*label", "refund\nlabel"),
        (r"refund.*label", "refund\nlabel"),
        (r"(?<=ORD-)\d{4}", "ORD-2026"),
        (r"(?<!ORD-)\d{4}", "ORD-2026"),
        (r"(\w+) \1", "bye bye"),
        (r"(?P<n>\d)-(?P=n)", "1-2"),
        (r"(?x) \d{3} - \d{4}  # a number", "555-1234"),
        (r"\d", "\u0663"),  # Arabic-Indic three is a digit, as in `re`
        (r"(?a)\d", "\u0663"),
        (r"[^\W\d_]+", "élan"),
        (r"a{,2}b", "aaab"),
        (r"x{foo}", "x{foo}"),
        (r"(?>a+)b", "aab"),
        (r"a++a", "aaa"),
        (r"[]a]", "]"),
    ],
)
def test_patterns_keep_re_search_semantics(pattern: str, text: str) -> None:
    assert score("regex", {"regex": pattern}, text).passed is (re.search(pattern, text) is not None)


@pytest.mark.timeout(60)
def test_a_runaway_refusal_pattern_is_a_scoring_error_naming_it() -> None:
    refusal = RefusalSignal(patterns=[r"\bI can't help\b", RUNAWAY])
    ctx = ScoreContext(signals=Signals(refusal=refusal))

    started = time.perf_counter()
    with pytest.raises(ScoringError) as raised:
        score("outcome", {"outcome": "answer"}, RUNAWAY_REPLY, ctx)
    # The patterns share one scan; when it runs out, each runs alone to find the culprit.
    assert time.perf_counter() - started < 2 * WITHIN_S
    assert str(raised.value).startswith(f"refusal pattern /{RUNAWAY}/ gave up after")
    assert "can't" not in str(raised.value)

    refused = score("outcome", {"outcome": "refuse"}, "Sorry, I can\u2019t help with that.", ctx)
    assert (
        refused.passed
        and refused.reason == 'the reply refused (matched "i can\'t help"), as expected'
    )


# --- a run ---------------------------------------------------------------------------------

OWNERS = """\
owners:
  - id: ops
    name: Ops Owner
    slack_id: U0OPS0001
    owns: {release: true, sets: [monitoring, blocking], thresholds: ["*"]}
"""

SCORECARD = """\
route: orders
owner: ops
target: {kind: python, callable: 'tests.scorers.test_runaway_regex:answer', model: stub}
run: {concurrency: 4, timeout_s: 5, retries: 0}
"""

CASES = f"""\
- id: order-status-001
  set: monitoring
  input: {{messages: [{{role: user, content: "Where is order 1?"}}]}}
  expect:
    outcome: answer
    regex: ["\\\\bORD-\\\\d{{4}}-\\\\d{{6}}\\\\b"]
- id: order-status-002
  set: monitoring
  input: {{messages: [{{role: user, content: "Where is order 2?"}}]}}
  expect:
    outcome: answer
    regex: ["(?i)arrives within \\\\d+ days"]
- id: runaway-001
  set: monitoring
  samples: 2
  input: {{messages: [{{role: user, content: "runaway"}}]}}
  expect:
    outcome: answer
    regex: ["{RUNAWAY}"]
- id: issue-example-001
  set: monitoring
  input: {{messages: [{{role: user, content: "issue"}}]}}
  expect:
    outcome: answer
    regex: ["{ISSUE_PATTERN}"]
"""

MORE_CASES = json.dumps(
    {
        "id": "order-status-003",
        "set": "monitoring",
        "input": {"messages": [{"role": "user", "content": "Where is order 3?"}]},
        "expect": {"outcome": "answer", "regex": [r"ORD-\d+"]},
    }
)


def answer(case_input: dict[str, Any]) -> str:
    """The route under test: the runaway and the issue's replies, else an order status."""
    question = case_input["messages"][0]["content"]
    return {"runaway": RUNAWAY_REPLY, "issue": ISSUE_REPLY}.get(question, ORDER_REPLY)


def write_suite(root: Path, *, cases: str = CASES, scorecard: str = SCORECARD) -> Path:
    (root / "cases").mkdir(parents=True)
    (root / "owners.yaml").write_text(OWNERS)
    (root / "scorecard.yaml").write_text(scorecard)
    (root / "cases" / "orders.yaml").write_text(cases)
    (root / "cases" / "more.jsonl").write_text(MORE_CASES + "\n")
    return root


@pytest.mark.timeout(120)
def test_a_run_records_the_runaway_case_as_a_scoring_error_and_scores_the_rest(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALCORE_DATABASE_URL", db_url)
    suite = write_suite(tmp_path / "evals")

    started = time.perf_counter()
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--json"])
    elapsed = time.perf_counter() - started

    assert result.exit_code == 0, result.output
    assert elapsed < 2 * WITHIN_S  # two runaway samples at the limit each, plus the run
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert (summary["results"], summary["failed"], summary["errors"]) == (6, 1, 2)
    assert summary["errors_by_class"] == {"scoring": 2}

    rows = {
        (r.case_id, r.sample): r for r in results_for_run(get_engine(db_url), summary["run_id"])
    }
    assert sorted(rows) == [
        ("issue-example-001", 0),
        ("order-status-001", 0),
        ("order-status-002", 0),
        ("order-status-003", 0),
        ("runaway-001", 0),
        ("runaway-001", 1),
    ]
    for sample in (0, 1):
        runaway = rows[("runaway-001", sample)]
        assert (runaway.passed, runaway.error_class, runaway.scores) == (None, "scoring", {})
        assert runaway.error_message is not None
        assert runaway.error_message.startswith(f"regex /{RUNAWAY}/ gave up after")
        assert runaway.output == {"text": RUNAWAY_REPLY}  # the reply is kept for triage
    issue = rows[("issue-example-001", 0)]
    assert (issue.passed, issue.error_class) == (False, None)
    assert issue.scores["regex"]["reason"].startswith(f"no match for /{ISSUE_PATTERN}/")
    for case_id in ("order-status-001", "order-status-002", "order-status-003"):
        assert (rows[(case_id, 0)].passed, rows[(case_id, 0)].error_class) == (True, None)


# --- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "nested"),
    [
        (ISSUE_PATTERN, True),
        (r"(\w+\s?)*$", True),
        (r"(?:a*)*b", True),
        (r"((ab)+c)*", True),
        (r"(?:x|(a+))+$", True),
        (r"(?x) ( a + ) +  # spaces and a comment, read as re reads them", True),
        (r"(a{2,5}){2}", True),
        (r"(a+)++", False),  # possessive outer repeat: nothing to give back
        (r"(a++)+", False),
        (r"(?>a+)+", False),
        (r"(\d{3}-)+", False),  # a fixed count inside is one way only
        (r"(a+)?b", False),
        (r"a+b+c*", False),
        (r"[(a+)+]", False),  # a set of characters
        (r"\(a+\)+", False),  # escaped parentheses
        (RUNAWAY, False),  # overlapping alternatives: left to the time limit
    ],
)
def test_nested_quantifiers_are_found_as_re_reads_the_pattern(pattern: str, nested: bool) -> None:
    assert nests_quantifiers(pattern) is nested


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_validate_warns_about_nested_quantifiers_without_failing(tmp_path: Path) -> None:
    more = json.dumps(
        {
            "id": "order-status-004",
            "set": "monitoring",
            "input": {"messages": [{"role": "user", "content": "Where is order 4?"}]},
            "expect": {"regex": [r"(\w+\s?)*$"]},
        }
    )
    scorecard = SCORECARD + (
        "signals:\n  refusal:\n    patterns:\n"
        '      - "\\\\bI can\'t help\\\\b"\n'
        '      - "(?:sorry,? )+(?:\\\\w+ )*cannot"\n'
    )
    suite = write_suite(tmp_path / "evals", scorecard=scorecard)
    with (suite / "cases" / "more.jsonl").open("a") as out:
        out.write(more + "\n")
    cases, jsonl, card = (
        suite / "cases" / "orders.yaml",
        suite / "cases" / "more.jsonl",
        suite / "scorecard.yaml",
    )
    advice = "repeats a part that itself repeats"
    expected = [
        f"{jsonl}:2: expect.regex: regex '(\\\\w+\\\\s?)*$' {advice}",
        f"{cases}:{line_of(cases, ISSUE_PATTERN)}: expect.regex: regex '(a+)+$' {advice}",
        f"{card}:{line_of(card, 'cannot')}: signals.refusal.patterns: "
        f"regex '(?:sorry,? )+(?:\\\\w+ )*cannot' {advice}",
    ]

    text = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")
    as_json = evalcore(
        "validate", "--suite", str(suite), "--json", cwd=tmp_path, home=tmp_path / "h"
    )

    assert text.returncode == 0, text.stderr
    assert "ok: 6 cases" in text.stdout
    warned = [  # the regex warnings (a small suite also gets warnings on what it can detect)
        line.removeprefix("warning: ")
        for line in text.stderr.splitlines()
        if line.startswith("warning: ") and ("expect.regex" in line or "signals.refusal" in line)
    ]
    assert len(warned) == len(expected), text.stderr
    assert all(w.startswith(start) for w, start in zip(warned, expected, strict=True)), warned
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["ok"] is True and data["cases"] == 6
    regex_warnings = [w for w in data["warnings"] if "expect.regex" in w or "signals.refusal" in w]
    assert regex_warnings == warned


# --- a fenced JSON reply -------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_fenced_reply_with_a_long_run_of_blanks_is_scored_at_once() -> None:
    reply = '```json\n{"order_id": "A1",' + " " * 300_000 + '"amount": 5}\n```'
    expect = {"json_schema": {"type": "object", "required": ["order_id", "amount"]}}

    started = time.perf_counter()
    result = score("json_schema", expect, reply)

    assert time.perf_counter() - started < 5
    assert result.passed, result.reason


def test_an_invalid_refusal_pattern_is_refused_at_validate_naming_its_line(
    tmp_path: Path,
) -> None:
    scorecard = SCORECARD + (
        'signals:\n  refusal:\n    patterns:\n      - "\\\\bsorry\\\\b"\n      - "(unclosed"\n'
    )
    suite = write_suite(tmp_path / "evals", scorecard=scorecard)
    card = suite / "scorecard.yaml"
    before = card.read_bytes()

    result = evalcore("validate", "--suite", str(suite), cwd=tmp_path, home=tmp_path / "h")

    assert result.returncode == 3, result.stdout
    assert f"{card}:{line_of(card, 'patterns:')}: signals.refusal.patterns" in result.stderr
    assert "invalid regex '(unclosed'" in result.stderr
    assert card.read_bytes() == before
