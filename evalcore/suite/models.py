"""The eval case: one entry of `evals/cases/*.yaml` or `*.jsonl`.

A case is declared once, here, and is the validated model, the canonical form that the
dataset version hashes, and the snapshot stored with every run.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from evalcore.suite.sets import EvalSet

__all__ = ["EvalSet"]  # re-exported: defined apart so that CLI options can name it cheaply


def patterns_that_compile(patterns: list[str]) -> list[str]:
    """`patterns`, each checked to compile with `re` (what users write patterns for);
    the first that does not is a `ValueError` quoting it."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return patterns


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


class Outcome(StrEnum):
    """What the route is expected to do with the input."""

    answer = "answer"
    refuse = "refuse"
    needs_human = "needs_human"
    tool_call = "tool_call"


class SourceKind(StrEnum):
    production = "production"
    fixture = "fixture"
    handwritten = "handwritten"
    imported = "import"


# The most one string of a case (or a key in it) may hold, in UTF-8 bytes. A case is
# stored with every run and quoted in reports and Slack: a 50 MB paste is refused when the
# suite is loaded (with file:line), not found later in the database or a message.
FIELD_LIMIT_BYTES = 1 << 20


def _unset(value: object) -> bool:
    return value is None


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a case file must not silently drop a check."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where a case came from. A generated fixture names its family, parent case, variant
    and seed, so that it can be traced back and generated again byte for byte; an
    imported case names the format, file and line it was converted from."""

    kind: SourceKind
    ref: str | None = None
    captured: dt.date | None = None
    reporter: str | None = None
    # Left out of the canonical form when unset: cases written before these fields existed
    # keep the dataset version they had.
    family: str | None = Field(default=None, exclude_if=_unset)
    parent: str | None = Field(default=None, exclude_if=_unset)
    variant: str | None = Field(default=None, exclude_if=_unset)
    seed: int | None = Field(default=None, exclude_if=_unset)
    # An imported case names the format and the file and line it was converted from.
    format: str | None = Field(default=None, exclude_if=_unset)
    file: str | None = Field(default=None, exclude_if=_unset)
    line: int | None = Field(default=None, exclude_if=_unset)


class MessageToolCall(Strict):
    """A tool call the assistant made earlier in the conversation."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(Strict):
    """One turn. An assistant turn may carry the tool calls it made; the `tool` turn that
    answers one names it by `tool_call_id`, as chat APIs require."""

    role: str = Field(pattern=r"^(system|user|assistant|tool)$")
    content: str
    tool_calls: list[MessageToolCall] | None = Field(default=None, exclude_if=_unset)
    tool_call_id: str | None = Field(default=None, exclude_if=_unset)

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> Message:
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only an assistant message can carry tool_calls")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError("only a tool message can carry tool_call_id")
        return self


class ContextDoc(Strict):
    """A document the route is given with the question. `trusted: false` marks one from a
    source the route must not rely on (a forum post, a pasted email, a scraped page)."""

    id: str
    text: str
    as_of: dt.date | None = None
    trusted: bool = Field(default=True, exclude_if=lambda trusted: trusted)


class ToolSpec(Strict):
    """A function tool offered to the model, in the flat layout
    `{name, description, parameters}`.

    The layouts model SDKs use are accepted too, and mean the same tool: OpenAI's
    `{type: function, function: {name, description, parameters}}` and Anthropic's
    `{name, description, input_schema}`. They are read into the flat layout, so the same
    tool gives the same dataset version however it is written; each target sends tools in
    the layout its API expects.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})

    @model_validator(mode="before")
    @classmethod
    def _flat_layout(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "function" in data or data.get("type") == "function":
            extra = sorted(str(key) for key in data.keys() - {"type", "function"})
            function = data.get("function")
            if data.get("type") != "function" or not isinstance(function, dict) or extra:
                raise PydanticCustomError(
                    "tool_layout",
                    "a tool in OpenAI's layout is {type: function, function: {name, "
                    "description, parameters}}{detail}",
                    {"detail": f" (unexpected: {', '.join(extra)})" if extra else ""},
                )
            return function
        if "input_schema" in data:
            if "parameters" in data:
                raise PydanticCustomError(
                    "tool_layout",
                    "a tool has either parameters (OpenAI) or input_schema (Anthropic), not both",
                )
            flat = {key: value for key, value in data.items() if key != "input_schema"}
            return {**flat, "parameters": data["input_schema"]}
        return data

    @field_validator("parameters")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_schema(value)
        return value


class CaseInput(Strict):
    messages: list[Message] = Field(min_length=1)
    context: list[ContextDoc] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)


class ToolCallExpectation(Strict):
    name: str
    arguments_schema: dict[str, Any] | None = None

    @field_validator("arguments_schema")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _check_schema(value)
        return value


class JudgeExpectation(Strict):
    rubric: str = Field(min_length=1)
    min_score: float = Field(default=0.7, ge=0.0, le=1.0)


# Every key of `expect` names a scorer (see evalcore.scorers); `outcome` is scored too.
SCORER_KEYS = (
    "outcome",
    "exact",
    "contains",
    "not_contains",
    "regex",
    "json_schema",
    "tool_call",
    "judge",
)


_SCORER_SET = frozenset(SCORER_KEYS)


class Expect(BaseModel):
    """The expectation; each field present turns on the scorer of the same name."""

    # Unknown keys are caught first by `_known_scorers_only`, which names the scorers;
    # "forbid" (not "allow") also spares an empty extras dict on every instance.
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome | None = None
    exact: str | None = None
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    tool_call: ToolCallExpectation | None = None
    judge: JudgeExpectation | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_scorers_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not _SCORER_SET.issuperset(data):
                unknown = sorted(str(key) for key in data.keys() - _SCORER_SET)
                # A typed error carrying the key lets the loader point at the key's own line.
                raise PydanticCustomError(
                    "unknown_scorer",
                    "unknown scorer '{scorer}' (known: {known})",
                    {"scorer": unknown[0], "unknown": unknown, "known": ", ".join(SCORER_KEYS)},
                )
            for key in ("contains", "not_contains", "regex"):
                if isinstance(data.get(key), str):
                    data = {**data, key: [data[key]]}
        return data

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: list[str]) -> list[str]:
        return patterns_that_compile(value)

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _check_schema(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Expect:
        if (
            self.outcome is None
            and self.exact is None
            and not self.contains
            and not self.not_contains
            and not self.regex
            and self.json_schema is None
            and self.tool_call is None
            and self.judge is None
        ):
            raise ValueError(
                "case has no expectation: give at least one of " + ", ".join(SCORER_KEYS)
            )
        if self.outcome is Outcome.tool_call and self.tool_call is None:
            raise ValueError(
                "outcome tool_call needs a tool_call expectation (name, arguments_schema)"
            )
        return self

    def scorer_names(self) -> list[str]:
        """The scorers this expectation turns on, in a stable order."""
        names = []
        for key in SCORER_KEYS:
            value = getattr(self, key)
            if value is not None and value != []:
                names.append(key)
        return names


class Case(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
    set: EvalSet
    severity: Severity = Severity.medium
    tags: list[str] = Field(default_factory=list)
    source: Source = Field(default_factory=lambda: Source(kind=SourceKind.handwritten))
    owner: str | None = None
    input: CaseInput
    expect: Expect
    samples: int = Field(default=1, ge=1, le=100)
    notes: str | None = None

    @field_validator("tags")
    @classmethod
    def _tags_sorted_unique(cls, value: list[str]) -> list[str]:
        # Tag order carries no meaning, so it must not change the dataset version.
        # Interned: a few tags repeat across 100k cases; one string object each.
        return sorted({sys.intern(tag) for tag in value})


def _check_schema(schema: dict[str, Any]) -> None:
    # The same tool specs repeat across a suite's cases (and a generator's fixtures):
    # checking a schema costs milliseconds, so each distinct one is checked once.
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not plain JSON (e.g. a date from YAML): checked as it is
        _check_schema_now(schema)
        return
    _check_schema_once(key)


@functools.lru_cache(maxsize=4096)
def _check_schema_once(key: bytes) -> None:
    _check_schema_now(orjson.loads(key))  # an invalid schema raises, and is not cached


def _check_schema_now(schema: dict[str, Any]) -> None:
    import jsonschema  # only suites with a schema pay for importing it

    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
