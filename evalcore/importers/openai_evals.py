"""OpenAI evals samples (`evals/registry/data/<eval>/samples.jsonl`) as drafts:
`evalcore import openai-evals FILE`.

Each line is `{"input": chat messages or a string, "ideal": an answer or a list of them}`,
the data of the basic Match, Includes and FuzzyMatch evals. `ideal` becomes a reference
check the way `--match` says; a list means any one of its answers, as those evals read it.
A line without `ideal` belongs to a model-graded eval, whose grading prompt lives in the
eval's YAML and not in the data, so nothing here says what a good reply is: the line is
left out and listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from evalcore.importers.sources import jsonl_records, read_text

FORMAT = "openai-evals"
ROLES = ("system", "user", "assistant", "tool")
_READ_KEYS = frozenset({"input", "ideal"})
_MESSAGE_KEYS = frozenset({"role", "content", "name"})


class _Unusable(Exception):
    """A sample that cannot become a case; the message says why."""


def convert_openai_evals(path: Path, options: ConvertOptions) -> Conversion:
    """Every line with an `ideal` answer as a draft; the rest listed with the reason."""
    shown = str(path)
    conversion = Conversion(FORMAT)
    # Listed once per file: the same key is on every line of a dataset.
    listed: set[str] = set()
    samples = 0
    for line, record in jsonl_records(read_text(path, shown), shown):
        samples += 1
        origin = Origin(shown, line)
        try:
            messages, extras = _messages(record.get("input"))
            answers = _answers(record)
        except _Unusable as exc:
            conversion.not_converted.append(NotConverted(origin, "sample", str(exc), True))
            continue
        conversion.drafts.append(
            Draft(
                origin=origin,
                key=stable_key(FORMAT, record.get("input"), record.get("ideal")),
                messages=messages,
                expect=reference_expect(answers, options.match),
            )
        )
        for what, reason in [*extras, *_unread_keys(record)]:
            if what not in listed:
                listed.add(what)
                conversion.not_converted.append(NotConverted(origin, what, reason))
    if samples == 0:
        raise ImportRefused(
            f'{shown}: empty file: OpenAI evals samples are JSON Lines, {{"input": ..., '
            '"ideal": ...}} on each line'
        )
    return conversion


def _messages(given: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The chat messages of `input`, and the parts of them not kept (name, reason)."""
    if isinstance(given, str):
        if not given.strip():
            raise _Unusable("input is empty")
        return [{"role": "user", "content": given}], []
    if not isinstance(given, list) or not given:
        raise _Unusable(
            "no input: 'input' must be a string or a list of chat messages {role, content}"
        )
    messages: list[dict[str, Any]] = []
    extras: list[tuple[str, str]] = []
    for number, message in enumerate(given, start=1):
        if not isinstance(message, dict):
            raise _Unusable(f"input message {number} is not a chat message {{role, content}}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise _Unusable(
                f"input message {number} has role {role!r}; a case's roles are " + ", ".join(ROLES)
            )
        if not isinstance(content, str):
            raise _Unusable(f"input message {number} has no text content")
        messages.append({"role": role, "content": content})
        if "name" in message:
            extras.append(
                (
                    "message name",
                    f"a message's name (such as {message['name']!r} on a few-shot example) "
                    "is left out; its role and content are kept",
                )
            )
        extras.extend(
            (f"message key '{key}'", "a case's message holds only role and content")
            for key in sorted(message.keys() - _MESSAGE_KEYS)
        )
    return messages, extras


def _answers(record: dict[str, Any]) -> list[str]:
    """The reference answers of `ideal`, stripped, empty ones left out."""
    ideal = record.get("ideal")
    if ideal is None:
        raise _Unusable(
            "no 'ideal' answer to check the reply against (a model-graded eval's sample: "
            "its grading prompt is in the eval's YAML, not in the data)"
        )
    given = ideal if isinstance(ideal, list) else [ideal]
    if any(isinstance(answer, dict | list) for answer in given):
        raise _Unusable("'ideal' must be a text or a list of texts")
    answers = [str(answer).strip() for answer in given if answer is not None]
    answers = [answer for answer in answers if answer]
    if not answers:
        raise _Unusable("'ideal' is empty: nothing to check the reply against")
    return answers


def _unread_keys(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"key '{key}'", "a case has no field for it; it is left out of every sample")
        for key in sorted(record.keys() - _READ_KEYS)
    ]
