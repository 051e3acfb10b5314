"""Inspect AI datasets as drafts: `evalcore import inspect FILE`.

The file is read as Inspect's `json_dataset` and `csv_dataset` read it with the default
field names: `.jsonl` is JSON Lines, `.json` an array of samples, `.csv` a header row
naming the columns (`input`, `target`, `id`, `metadata` as JSON text, `choices`).

- `input`: a string is one user message; chat messages keep their role, their text and
  their tool calls. A sample with image, audio or other non-text content is left out.
- `target`: a reference answer checked the way `--match` says; a list means any one of
  them, as Inspect's `match` and `includes` scorers read it. A CSV cell is one answer,
  as Inspect reads it (`str` of the cell, never split).
- `choices`: the question is asked as Inspect's `multiple_choice()` solver asks it (the
  instruction, the question, then the choices lettered `A) ...`), and the reply must name
  the target letter(s) after `ANSWER:`, as its `choice()` scorer requires. That check is
  exact by nature, so `--match` does not apply to it.
- `id` is the case's own id, `metadata.tags` its tags, `description` its notes; other
  metadata keys are listed once each.
- `sandbox`, `files` and `setup` need an environment evalcore does not provide: such a
  sample is left out and listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from evalcore.importers.conversion import (
    Conversion,
    ConvertOptions,
    Draft,
    ImportRefused,
    NotConverted,
    Origin,
    reference_expect,
    stable_key,
)
from evalcore.importers.sources import csv_rows, json_array_records, jsonl_records, read_text

FORMAT = "inspect"
SAMPLE_FIELDS = (
    "input",
    "target",
    "id",
    "metadata",
    "choices",
    "description",
    "sandbox",
    "files",
    "setup",
)
ROLES = ("system", "user", "assistant", "tool")
_JSON_LINES = frozenset({".jsonl", ".json-lines", ".jsonlines", ".ndjson"})
_ENVIRONMENT = ("sandbox", "files", "setup")
_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id"})
_TAG_SEPARATORS = re.compile(r"[,;|\s]+")
_MAX_CHOICES = 26  # lettered A to Z

SINGLE_ANSWER = (
    "Answer the following multiple choice question. The entire content of your response "
    "should be of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is "
    "one of {letters}.\n\n{question}\n\n{choices}"
)
MULTIPLE_ANSWERS = (
    "Answer the following multiple choice question where multiple answers may be correct. "
    "The entire content of your response should be of the following format: "
    "'ANSWER: $LETTERS' (without quotes) where LETTERS is one or more of {letters}.\n\n"
    "{question}\n\n{choices}"
)


class _Unusable(Exception):
    """A sample that cannot become a case; the message says why."""


class _Unread(NamedTuple):
    """A part of a converted sample that is not kept. `once` parts are listed at their
    first sample only (a key name repeats on every sample); the others at each one."""

    what: str
    reason: str
    once: bool = True


def convert_inspect(path: Path, options: ConvertOptions) -> Conversion:
    """Every sample with something to check as a draft; the rest listed with the reason."""
    shown = str(path)
    text = read_text(path, shown)
    suffix = path.suffix.lower()
    conversion = Conversion(FORMAT)
    records: Iterator[tuple[int, dict[str, Any]]]
    if suffix in _JSON_LINES:
        records = jsonl_records(text, shown)
    elif suffix == ".json":
        records = json_array_records(text, shown)
    elif suffix == ".csv":
        records = _csv_records(text, shown, conversion)
    else:
        raise ImportRefused(
            f"{shown}: an Inspect dataset is .jsonl (JSON Lines), .json (an array of "
            f"samples) or .csv, and this file ends in {suffix or 'no extension'!r}"
        )
    listed: set[str] = set()
    samples = 0
    for line, record in records:
        samples += 1
        origin = Origin(shown, line)
        try:
            draft, unread = _draft(origin, record, options)
        except _Unusable as exc:
            conversion.not_converted.append(NotConverted(origin, "sample", str(exc), True))
            continue
        conversion.drafts.append(draft)
        for part in unread:
            if not part.once or part.what not in listed:
                listed.add(part.what)
                conversion.not_converted.append(NotConverted(origin, part.what, part.reason))
    if samples == 0:
        empty = "empty file" if not text.strip() else "no samples in it"
        raise ImportRefused(f"{shown}: {empty}: an Inspect dataset holds one sample or more")
    return conversion


def _csv_records(
    text: str, shown: str, conversion: Conversion
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row as the record `csv_dataset` makes of it; empty cells are absent."""
    header, rows = csv_rows(text, shown)
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        field = name.lower()
        if field in SAMPLE_FIELDS and field not in columns:
            columns[field] = index
        elif name:
            again = "a second column of that name" if field in columns else "not a sample field"
            conversion.not_converted.append(
                NotConverted(
                    Origin(shown, 1),
                    f"column '{name}'",
                    f"{again}; Inspect reads {', '.join(SAMPLE_FIELDS)}: left out",
                )
            )
    for needed in ("input", "target"):
        if needed not in columns:
            raise ImportRefused(
                f"{shown}:1: no '{needed}' column: Inspect's csv_dataset reads a header row "
                f"naming input, target, id, metadata, choices; got {', '.join(header)}"
            )

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, row in rows:
            record = {
                field: row[index].strip().replace("\r\n", "\n")
                for field, index in columns.items()
                if index < len(row) and row[index].strip()
            }
            yield line, record

    return records()


def _draft(
    origin: Origin, record: dict[str, Any], options: ConvertOptions
) -> tuple[Draft, list[_Unread]]:
    environment = [name for name in _ENVIRONMENT if name in record and _given(record[name])]
    if environment:
        raise _Unusable(
            f"needs {' and '.join(environment)}: an environment to run in, which a case "
            "does not have"
        )
    messages, unread = _messages(record.get("input"))
    choices = _choices(record.get("choices"))
    if choices:
        messages, expect = _multiple_choice(messages, choices, record.get("target"))
    else:
        expect = reference_expect(_targets(record.get("target")), options.match)
    tags = _tags(record.get("metadata"), unread)
    own_id = record.get("id")
    description = str(record.get("description") or "").strip()
    unread.extend(
        _Unread(f"key '{key}'", "not a field of Inspect's Sample; left out")
        for key in sorted(record.keys() - set(SAMPLE_FIELDS))
        if record[key] is not None
    )
    draft = Draft(
        origin=origin,
        key=stable_key(FORMAT, record.get("input"), record.get("target"), choices or None),
        messages=messages,
        expect=expect,
        own_id=str(own_id) if _given(own_id) else None,
        tags=tags,
        notes=description or None,
    )
    return draft, unread


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _messages(given: Any) -> tuple[list[dict[str, Any]], list[_Unread]]:
    if isinstance(given, str):
        if not given.strip():
            raise _Unusable("no input")
        return [{"role": "user", "content": given}], []
    if not isinstance(given, list) or not given:
        raise _Unusable("no input: 'input' must be a string or a list of chat messages")
    messages: list[dict[str, Any]] = []
    unread: list[_Unread] = []
    for number, message in enumerate(given, start=1):
        if not isinstance(message, dict):
            raise _Unusable(f"input message {number} is not a chat message {{role, content}}")
        role = message.get("role")
        if role not in ROLES:
            raise _Unusable(
                f"input message {number} has role {role!r}; a case's roles are " + ", ".join(ROLES)
            )
        converted: dict[str, Any] = {"role": role, "content": _text(message, number)}
        if role == "assistant" and message.get("tool_calls"):
            converted["tool_calls"] = _tool_calls(message["tool_calls"], number)
        if role == "tool" and message.get("tool_call_id") is not None:
            converted["tool_call_id"] = str(message["tool_call_id"])
        messages.append(converted)
        unread.extend(
            _Unread(
                f"message key '{key}'",
                "a case's message holds role, content, tool_calls and tool_call_id; left out",
            )
            for key in sorted(message.keys() - _MESSAGE_KEYS)
            if message[key] is not None
        )
    return messages, unread


def _text(message: dict[str, Any], number: int) -> str:
    """The message's text: its content string, or its text parts joined by new lines."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _Unusable(f"input message {number} has no content")
    texts: list[str] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise _Unusable(
                f"input message {number} has {kind or 'unreadable'} content; a case's "
                "messages hold text only"
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _tool_calls(calls: Any, number: int) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    for call in calls if isinstance(calls, list) else [calls]:
        if not isinstance(call, dict) or not call.get("id") or not call.get("function"):
            raise _Unusable(f"input message {number} has a tool call without an id and function")
        arguments = call.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise _Unusable(
                f"input message {number} has tool call arguments that are not an object"
            )
        converted.append(
            {"id": str(call["id"]), "name": str(call["function"]), "arguments": arguments}
        )
    return converted


def _choices(given: Any) -> list[str]:
    """The choices as Inspect reads them: a list, or a text split on commas (on spaces
    when it has no comma)."""
    if given is None:
        return []
    if isinstance(given, list):
        return [str(choice).strip() for choice in given if str(choice).strip()]
    if isinstance(given, str):
        parts = given.split(",")
        if len(parts) == 1:
            parts = given.split()
        return [part.strip() for part in parts if part.strip()]
    return [str(given)]


def _multiple_choice(
    messages: list[dict[str, Any]], choices: list[str], target: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The last user message asked as a lettered question, and the check that the reply
    names exactly the target letters after `ANSWER:`."""
    if len(choices) > _MAX_CHOICES:
        raise _Unusable(f"{len(choices)} choices; the letters A to Z name at most 26")
    letters = [chr(ord("A") + index) for index in range(len(choices))]
    given = "".join(map(str, target)) if isinstance(target, list) else str(target or "")
    wanted = sorted(set(given.strip().upper()))
    if not wanted or any(letter not in letters for letter in wanted):
        raise _Unusable(
            f"target {given!r} is not the letter of a choice ({letters[0]} to {letters[-1]}), "
            "which Inspect's choice scorer needs"
        )
    asked = next((i for i in reversed(range(len(messages))) if messages[i]["role"] == "user"), None)
    if asked is None:
        raise _Unusable("choices need a user message to ask the question in")
    template = SINGLE_ANSWER if len(wanted) == 1 else MULTIPLE_ANSWERS
    question = template.format(
        letters=",".join(letters),
        question=messages[asked]["content"],
        choices="\n".join(
            f"{letter}) {choice}" for letter, choice in zip(letters, choices, strict=True)
        ),
    )
    rendered = [*messages[:asked], {**messages[asked], "content": question}, *messages[asked + 1 :]]
    # The letters after ANSWER: are exactly the wanted ones, in any order, with spaces or
    # commas between them, and no other letter follows (as the choice scorer reads them).
    accepted = "".join(wanted)
    present = "".join(f"(?=[{accepted} ,]*{letter})" for letter in wanted)
    pattern = rf"(?i)ANSWER\s*:\s*{present}[{accepted} ,]++(?![A-Za-z0-9_])"
    return rendered, {"regex": [pattern]}


def _targets(target: Any) -> list[str]:
    given = target if isinstance(target, list) else [target]
    if any(isinstance(answer, dict | list) for answer in given):
        raise _Unusable("'target' must be a text or a list of texts")
    answers = [str(answer).strip() for answer in given if answer is not None]
    answers = [answer for answer in answers if answer]
    if not answers:
        raise _Unusable("no target: nothing to check the reply against")
    return answers


def _tags(metadata: Any, unread: list[_Unread]) -> list[str]:
    """`metadata.tags`; every other metadata key is noted in `unread`."""
    if not _given(metadata):
        return []
    if isinstance(metadata, str):
        try:
            metadata = orjson.loads(metadata)
        except orjson.JSONDecodeError as exc:
            unread.append(_Unread("metadata", f"not JSON ({exc}): left out", once=False))
            return []
    if not isinstance(metadata, dict):
        unread.append(_Unread("metadata", "not a JSON object: left out", once=False))
        return []
    unread.extend(
        _Unread(f"metadata key '{key}'", "a case has no metadata; only tags are kept")
        for key in sorted(metadata.keys() - {"tags"})
    )
    tags = metadata.get("tags")
    if isinstance(tags, str):
        return [tag for tag in _TAG_SEPARATORS.split(tags) if tag]
    if isinstance(tags, list):
        return [str(tag).strip() for tag in tags if str(tag).strip()]
    if tags is not None:
        unread.append(_Unread("metadata tags", "not a list of tags: left out", once=False))
    return []
