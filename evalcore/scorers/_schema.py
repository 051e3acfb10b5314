"""Structured output: `json_schema` (the reply text is JSON of a given shape) and `tool_call`.

Both parse with the standard library, so a malformed document fails with the message a
developer knows ("Expecting ',' delimiter at char 31"); NaN and Infinity are refused
because no other JSON parser accepts them. Schemas are checked with the validator their
`$schema` names (2020-12 when absent) *and* with format checking on: `"format": "date"`
in an expectation is meant as a check, not as the annotation the spec makes it by default.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import orjson

from evalcore.scorers._cache import IdentityMemo
from evalcore.scorers._text import preview
from evalcore.scorers.base import Score, ScoreContext, scorer
from evalcore.suite.models import Case
from evalcore.targets.base import Reply

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

_CACHE_LIMIT = 8_192
_MESSAGE_LIMIT = 160

# Validators by schema object and, behind that, by canonical JSON, so that equal schemas
# in many cases share one compiled validator.
_by_object: IdentityMemo[dict[str, Any], Validator] = IdentityMemo(_CACHE_LIMIT)
_by_canon: dict[bytes, Validator] = {}
_JSON_PASS = Score("json_schema", 1.0, True, "reply is JSON valid against the schema")


def validator_for(schema: dict[str, Any]) -> Validator:
    """The compiled validator for `schema`, built once per distinct schema."""
    hit = _by_object.get(schema)
    if hit is not None:
        return hit
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        key = json.dumps(schema, sort_keys=True, default=str).encode()
    validator = _by_canon.get(key)
    if validator is None:
        import jsonschema  # imported by the first schema, not by every run

        if len(_by_canon) >= _CACHE_LIMIT:
            _by_canon.clear()
        cls = jsonschema.validators.validator_for(schema)
        validator = _by_canon[key] = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return _by_object.put(schema, validator)


def schema_problem(validator: Validator, instance: Any) -> str | None:
    """None when `instance` is valid; else where and why it is not, e.g. "at $.amount: …"."""
    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    from jsonschema.exceptions import best_match

    best = best_match(errors)
    message = best.message
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "…"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"at {best.json_path}: {message}{more}"


class InvalidJSON(ValueError):
    """Text that is not a JSON document; the message says where it breaks."""


def _no_constants(name: str) -> Any:
    raise InvalidJSON(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    """Parse a JSON document, raising `InvalidJSON` with "<what> at char <n>"."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"{exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise InvalidJSON("nested too deeply") from None


# The opening line of a Markdown code fence. The closing one is found by slicing: a single
# pattern for the whole fence backtracks over every blank at the end of the body, which
# takes minutes on a reply that ends in a long run of spaces.
_FENCE_OPENING = re.compile(r"```[\w.+-]*[ \t]*\r?\n")


def strip_fence(text: str) -> str:
    """The text inside a Markdown code fence that wraps the whole (trimmed) text, else it all.

    Chat models wrap JSON in ```json … ``` even when told not to; only a fence around the
    entire reply is removed, so prose before or after the JSON still fails. The blanks and
    the line break before the closing fence go with it.
    """
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        opening = _FENCE_OPENING.match(stripped)
        if opening is not None and opening.end() <= len(stripped) - 3:
            body = stripped[opening.end() : -3].rstrip(" \t")
            return body.removesuffix("\n").removesuffix("\r")
    return stripped


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


@scorer("json_schema")
def json_schema(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """The reply text is one JSON document (a wrapping ```json fence is fine) valid against the schema."""
    schema = case.expect.json_schema or {}
    body = strip_fence(reply.text)
    if not body:
        did = f" (it called {reply.tool_calls[0].name})" if reply.tool_calls else ""
        return Score("json_schema", 0.0, False, f"reply has no text{did}; expected JSON")
    try:
        document = parse_json(body)
    except InvalidJSON as exc:
        return Score(
            "json_schema",
            0.0,
            False,
            f"reply is not valid JSON: {exc}; reply: {preview(reply.text)}",
        )
    problem = schema_problem(validator_for(schema), document)
    if problem is not None:
        return Score("json_schema", 0.0, False, f"reply fails the schema {problem}")
    return _JSON_PASS


@scorer("tool_call")
def tool_call(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """The expected tool was called with a JSON object of arguments valid against the schema.

    Every call to that tool must be well-formed: a second, malformed call is still a bug.
    Empty arguments read as `{}`, as OpenAI-compatible servers send them for tools that
    take none.
    """
    expected = case.expect.tool_call
    if expected is None:  # pragma: no cover - the plan only runs scorers the case sets
        raise ValueError(f"case {case.id} has no tool_call expectation")
    name = expected.name
    calls = [call for call in reply.tool_calls if call.name == name]
    if not calls:
        if reply.tool_calls:
            others = ", ".join(dict.fromkeys(call.name for call in reply.tool_calls))
            reason = f"expected a call to {name}, but the reply called {others} instead"
        elif reply.text.strip():
            reason = (
                f"expected a call to {name}, but the reply made no tool call: {preview(reply.text)}"
            )
        else:
            reason = f"expected a call to {name}, but the reply is empty"
        return Score("tool_call", 0.0, False, reason)
    validator = (
        validator_for(expected.arguments_schema) if expected.arguments_schema is not None else None
    )
    for index, call in enumerate(calls):
        which = name if len(calls) == 1 else f"{name} (call {index + 1} of {len(calls)})"
        try:
            arguments = parse_json(call.arguments.strip() or "{}")
        except InvalidJSON as exc:
            return Score("tool_call", 0.0, False, f"{which} arguments are not valid JSON: {exc}")
        if not isinstance(arguments, dict):
            kind = _JSON_TYPES.get(type(arguments), type(arguments).__name__)
            return Score(
                "tool_call", 0.0, False, f"{which} arguments are not a JSON object but {kind}"
            )
        if validator is not None:
            problem = schema_problem(validator, arguments)
            if problem is not None:
                return Score(
                    "tool_call", 0.0, False, f"{which} arguments fail the schema {problem}"
                )
    reason = f"called {name}" + (" with arguments valid against the schema" if validator else "")
    return Score("tool_call", 1.0, True, reason)
