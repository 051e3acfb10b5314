"""What a converter gives back: cases as read from another tool's format, what it could not
convert (with file:line and why), and the cost and latency limits it found.

A converter only reads and maps. Ids, the set, `source`, validation, de-duplication and
writing are common to every format (`evalcore.importers.plan`), so a converter never
decides where a case goes and never writes anything.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Match = Literal["contains", "exact", "judge"]
MATCHES: tuple[Match, ...] = ("contains", "exact", "judge")


class ImportRefused(Exception):
    """The source cannot be imported at all (not the format it claims, a missing file, a
    broken line): the command exits 3 and writes nothing. The message names the file, and
    the line where there is one."""


@dataclass(frozen=True)
class Origin:
    """Where a case, or a part of one, was read: a file as the user named it (or as the
    config that referenced it names it) and a 1-based line, when the format has lines."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass
class Draft:
    """One case as converted, before the common steps give it an id, a set and a source.

    `key` is stable text the id is derived from when the source has no id of its own (the
    same test converted again gives the same id); `own_id` is the source's id, when it has
    one. `messages`, `tools`, `context` and `expect` are in the case file's own shapes."""

    origin: Origin
    key: str
    messages: list[dict[str, Any]]
    expect: dict[str, Any]
    own_id: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    context: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    set: str | None = None
    severity: str | None = None
    outcome: str | None = None
    ticket: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class NotConverted:
    """Something in the source that has no counterpart here: listed, never dropped quietly.
    `what` names it (`assertion javascript`, `provider option temperature`); `dropped`
    says whether a whole test was left out (True) or only this part of it."""

    origin: Origin
    what: str
    reason: str
    dropped: bool = False


@dataclass(frozen=True)
class BudgetFound:
    """A cost or latency limit the source put on a test: evalcore keeps those in the
    scorecard's `budgets`, so they are reported for the owner to carry over."""

    origin: Origin
    kind: Literal["cost", "latency"]
    limit: float  # USD per call for cost, milliseconds for latency


@dataclass
class Conversion:
    format: str
    drafts: list[Draft] = field(default_factory=list)
    not_converted: list[NotConverted] = field(default_factory=list)
    budgets: list[BudgetFound] = field(default_factory=list)


@dataclass(frozen=True)
class ConvertOptions:
    """How references are checked and, for spreadsheets, which column is which field.

    `match` is how a reference answer (a spreadsheet's `expected`, OpenAI evals' `ideal`,
    Inspect's `target`) is checked: `contains` (lenient, the default: case and spacing
    forgiven), `exact`, or `judge` (an LLM judge compares the reply with it).
    `mapping` is `--map column=field`, spreadsheet column name to case field."""

    match: Match = "contains"
    mapping: dict[str, str] = field(default_factory=dict)


def stable_key(*parts: Any) -> str:
    """Text that identifies a converted test whatever order the source lists it in."""
    return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str).decode()


def key_digest(key: str, length: int = 10) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def reference_expect(answers: list[str], match: Match) -> dict[str, Any]:
    """The expectation that a reply gives one of `answers` (each already stripped and not
    empty), checked the way `match` says."""
    if not answers:
        raise ValueError("reference_expect needs at least one answer")
    if match == "judge":
        listed = "\n".join(f"- {answer}" for answer in answers)
        wording = "the reference answer" if len(answers) == 1 else "one of the reference answers"
        return {
            "judge": {
                "rubric": f"The reply gives the same answer as {wording}, in substance:\n{listed}"
            }
        }
    if match == "exact":
        if len(answers) == 1:
            return {"exact": answers[0]}
        return {"regex": [r"\A\s*(?:" + "|".join(map(re.escape, answers)) + r")\s*\Z"]}
    if len(answers) == 1:
        return {"contains": [answers[0]]}
    # Any one of several: a case-insensitive alternation (contains needs all of its
    # phrases), each answer a whole word where it starts or ends with one, so that "no"
    # among the answers is not found in "Norway".
    return {"regex": ["(?i)(?:" + "|".join(map(_as_word, answers)) + ")"]}


def _as_word(answer: str) -> str:
    escaped = re.escape(answer)
    head = r"\b" if re.match(r"\w", answer) else ""
    tail = r"\b" if re.search(r"\w\Z", answer) else ""
    return f"{head}{escaped}{tail}"
