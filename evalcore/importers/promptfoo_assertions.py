"""promptfoo assertions read as a case's expectation.

A promptfoo test passes when its assertions pass; an evalcore case passes when every key
of its `expect` passes. Each assertion that has an exact counterpart becomes that key:
case-sensitive `contains` becomes an escaped `regex` (evalcore's `contains` forgives case
and spacing, which `icontains` means), the negated forms become look-ahead patterns, an
`llm-rubric` becomes the `judge`. Cost and latency limits are budgets of the scorecard,
not expectations, so they are handed back as such. Whatever runs code or a grading model
of promptfoo's own is listed with the reason, never dropped quietly.

CSV test files write assertions as text (`contains: x`, `not-regex: ...`, a bare value
meaning `equals`); `assertion_from_string` reads that syntax as promptfoo does.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import yaml
from jinja2.exceptions import TemplateError, UndefinedError

from evalcore.importers.conversion import BudgetFound, Origin

# The assertion types promptfoo's text syntax recognises; any other prefix is `equals`.
_BASE_TYPES = (
    "answer-relevance",
    "bleu",
    "classifier",
    "contains",
    "contains-all",
    "contains-any",
    "contains-html",
    "contains-json",
    "contains-sql",
    "contains-xml",
    "context-faithfulness",
    "context-recall",
    "context-relevance",
    "conversation-relevance",
    "cost",
    "equals",
    "factuality",
    "finish-reason",
    "g-eval",
    "gleu",
    "guardrails",
    "icontains",
    "icontains-all",
    "icontains-any",
    "is-html",
    "is-json",
    "is-refusal",
    "is-sql",
    "is-valid-function-call",
    "is-valid-openai-function-call",
    "is-valid-openai-tools-call",
    "is-xml",
    "javascript",
    "latency",
    "levenshtein",
    "llm-rubric",
    "meteor",
    "model-graded-closedqa",
    "model-graded-factuality",
    "moderation",
    "perplexity",
    "perplexity-score",
    "pi",
    "python",
    "regex",
    "rouge-n",
    "ruby",
    "select-best",
    "similar",
    "similar:cosine",
    "similar:dot",
    "similar:euclidean",
    "starts-with",
    "tool-call-f1",
    "trace-error-spans",
    "trace-span-count",
    "trace-span-duration",
    "webhook",
    "word-count",
)
# Longest first, so that `contains-any` is not read as `contains` followed by text.
_TYPES_PATTERN = "|".join(re.escape(t) for t in sorted(_BASE_TYPES, key=len, reverse=True))
_FROM_STRING = re.compile(
    rf"^(not-)?({_TYPES_PATTERN})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$",
)
_LIST_TYPES = frozenset({"contains-any", "contains-all", "icontains-any", "icontains-all"})
# Types whose text form carries a threshold (promptfoo gives them 0.75 when none is written).
_THRESHOLD_TYPES = frozenset(
    {
        "answer-relevance",
        "classifier",
        "context-faithfulness",
        "context-recall",
        "context-relevance",
        "cost",
        "latency",
        "levenshtein",
        "perplexity",
        "perplexity-score",
        "rouge-n",
        "similar",
        "starts-with",
    }
)
_CODE_FILE = re.compile(r"\.(?:py|js|cjs|mjs|ts|cts|mts|rb)(?::[\w.]+)?$")

RUNS_CODE = "runs code inside promptfoo; evalcore checks declared expectations only"
_MODEL_GRADED = (
    "graded by a model with promptfoo's own grading prompt; evalcore's judge grades a "
    "rubric (write it as llm-rubric)"
)
_SIMILARITY = (
    "a similarity score against a reference text; evalcore has no such scorer (a judge "
    "rubric can stand in)"
)
_SERVICE = "calls a classifier or moderation service while grading; evalcore has none"
_FORMAT = "checks a format evalcore has no scorer for"
_TRACE = "checks promptfoo's traces or run metadata, which evalcore does not record"
_NOT_FORM = "evalcore's outcome says what the reply must do, not what it must not do"

_NOT_CONVERTED: dict[str, str] = {
    **dict.fromkeys(("javascript", "python", "ruby", "webhook"), RUNS_CODE),
    **dict.fromkeys(
        (
            "factuality",
            "model-graded-factuality",
            "model-graded-closedqa",
            "answer-relevance",
            "context-faithfulness",
            "context-recall",
            "context-relevance",
            "conversation-relevance",
            "g-eval",
            "search-rubric",
            "select-best",
            "max-score",
        ),
        _MODEL_GRADED,
    ),
    **dict.fromkeys(
        (
            "similar",
            "similar:cosine",
            "similar:dot",
            "similar:euclidean",
            "levenshtein",
            "rouge-n",
            "bleu",
            "gleu",
            "meteor",
        ),
        _SIMILARITY,
    ),
    **dict.fromkeys(
        ("classifier", "moderation", "guardrails", "pi", "perplexity", "perplexity-score"),
        _SERVICE,
    ),
    **dict.fromkeys(
        ("contains-html", "contains-sql", "contains-xml", "is-html", "is-sql", "is-xml"),
        _FORMAT,
    ),
    "contains-json": (
        "the reply must contain JSON somewhere in its text; evalcore's json_schema checks a "
        "reply that is JSON as a whole"
    ),
    **dict.fromkeys(
        (
            "finish-reason",
            "tool-call-f1",
            "trace-error-spans",
            "trace-span-count",
            "trace-span-duration",
            "skill-used",
            "word-count",
        ),
        _TRACE,
    ),
    "human": "graded by a person in promptfoo's viewer",
}

Render = Callable[[str, Mapping[str, Any]], str]
Load = Callable[[str, Origin], Any]
Skip = tuple[Origin, str, str]


def is_code_ref(ref: str) -> bool:
    """A `file://` reference to a script: a function promptfoo would run."""
    return ref.startswith("file://") and _CODE_FILE.search(ref) is not None


def assertion_from_string(text: str) -> dict[str, Any]:
    """One `__expected` cell as promptfoo reads it: `type(threshold): value`, `not-type: value`,
    the legacy `fn:`/`eval:`/`grade:` prefixes, or a bare value meaning `equals`."""
    text = text.strip()
    for prefix in ("javascript:", "fn:", "eval:"):
        if text.startswith(prefix):
            return {"type": "javascript", "value": text[len(prefix) :].strip()}
    for prefix in ("grade:", "llm-rubric:"):
        if text.startswith(prefix):
            return {"type": "llm-rubric", "value": text[len(prefix) :].strip()}
    if text.startswith("python:"):
        return {"type": "python", "value": text[len("python:") :].strip()}
    if is_code_ref(text):
        kind = "python" if ".py" in text else "javascript"
        return {"type": kind, "value": text[len("file://") :].strip()}
    match = _FROM_STRING.match(text)
    if match is None:
        return {"type": "equals", "value": text}
    negated, kind, threshold_text, value = match.groups()
    full = f"not-{kind}" if negated else kind
    value = (value or "").strip()
    if kind in _LIST_TYPES:
        return {"type": full, "value": [part.strip() for part in value.split(",")]}
    assertion: dict[str, Any] = {"type": full, "value": value}
    if threshold_text is not None:
        assertion["threshold"] = float(threshold_text)
    elif kind in _THRESHOLD_TYPES:
        assertion["threshold"] = 0.8 if kind == "similar" else 0.75
    return assertion


@dataclass(frozen=True, slots=True)
class Written:
    """One assertion as the source wrote it (`spec` is promptfoo's assertion object), and
    where it is written."""

    spec: Mapping[str, Any]
    origin: Origin


@dataclass(slots=True)
class Mapped:
    """A test's assertions as an expectation (empty when none could be converted), the
    parts left out (origin, what, why), and the cost and latency limits found."""

    expect: dict[str, Any]
    skipped: list[Skip] = field(default_factory=list)
    budgets: list[BudgetFound] = field(default_factory=list)


class _Skipped(Exception):
    """This assertion has no counterpart here; the message says why."""


class _Expect:
    """The expectation being built: assertions of one kind are merged (lists joined)."""

    __slots__ = (
        "contains",
        "exact",
        "json_schemas",
        "min_scores",
        "not_contains",
        "outcome",
        "regex",
        "rubrics",
        "tool_call",
    )

    def __init__(self) -> None:
        self.outcome: str | None = None
        self.exact: str | None = None
        self.contains: list[str] = []
        self.not_contains: list[str] = []
        self.regex: list[str] = []
        self.json_schemas: list[dict[str, Any]] = []
        self.tool_call: dict[str, Any] | None = None
        self.rubrics: list[str] = []
        self.min_scores: list[float] = []

    def set_outcome(self, outcome: str) -> None:
        if self.outcome is not None and self.outcome != outcome:
            raise _Skipped(
                f"the case already expects outcome {self.outcome}; a case has one outcome"
            )
        self.outcome = outcome

    def set_exact(self, text: str) -> None:
        if self.exact is not None and self.exact != text:
            raise _Skipped(
                f"the case already expects the exact reply {self.exact!r}; a case has one"
            )
        self.exact = text

    def build(self) -> dict[str, Any]:
        expect: dict[str, Any] = {}
        if self.outcome is not None:
            expect["outcome"] = self.outcome
        if self.exact is not None:
            expect["exact"] = self.exact
        if self.contains:
            expect["contains"] = self.contains
        if self.not_contains:
            expect["not_contains"] = self.not_contains
        if self.regex:
            expect["regex"] = self.regex
        if self.json_schemas:
            schemas = self.json_schemas
            expect["json_schema"] = schemas[0] if len(schemas) == 1 else {"allOf": schemas}
        if self.tool_call is not None:
            expect["tool_call"] = self.tool_call
        if self.rubrics:
            if len(self.rubrics) == 1:
                rubric = self.rubrics[0]
            else:
                # One judge per case: every rubric must hold, graded together.
                rubric = "Every one of these must hold:\n" + "\n".join(
                    f"- {text}" for text in self.rubrics
                )
            judge: dict[str, Any] = {"rubric": rubric}
            if self.min_scores:
                judge["min_score"] = max(self.min_scores)
            expect["judge"] = judge
        return expect


def map_assertions(
    written: Iterable[Written],
    values: Mapping[str, Any],
    *,
    tools: list[dict[str, Any]],
    render: Render,
    load: Load,
) -> Mapped:
    """The expectation for one test: `values` fill `{{var}}` templates in assertion values,
    `tools` are the tools the case offers (for `is-valid-openai-tools-call`), `load` reads a
    `file://` value (`Origin` names the referencing place)."""
    builder = _Expect()
    mapped = Mapped({})
    for item in written:
        _map_item(item, values, tools, render, load, builder, mapped)
    mapped.expect = builder.build()
    return mapped


def _map_item(
    item: Written,
    values: Mapping[str, Any],
    tools: list[dict[str, Any]],
    render: Render,
    load: Load,
    builder: _Expect,
    mapped: Mapped,
) -> None:
    spec = item.spec
    kind = str(spec.get("type"))
    what = f"assertion {kind}"
    for name, reason in _extras(spec):
        mapped.skipped.append((item.origin, f"{what} {name}", reason))
    try:
        if kind == "assert-set":
            _assert_set(item, values, tools, render, load, builder, mapped)
            return
        budget = _budget(kind, spec, item.origin)
        if budget is not None:
            mapped.budgets.append(budget)
            return
        value = _value(spec.get("value"), values, render, load, item.origin)
        _apply(kind, value, spec, tools, builder)
    except _Skipped as exc:
        mapped.skipped.append((item.origin, what, str(exc)))


def _extras(spec: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Parts of an assertion that change how promptfoo scores it, with no counterpart."""
    weight = spec.get("weight")
    if weight is not None and weight != 1:
        yield (
            f"weight {weight}",
            "promptfoo weighs assertions into one score; an evalcore case passes when every "
            "expectation passes",
        )
    if spec.get("metric"):
        yield (
            f"metric {spec['metric']}",
            "promptfoo reports it as a named score; evalcore reports per case and tag",
        )
    for key in ("transform", "contextTransform"):
        if spec.get(key):
            yield (
                key,
                "changes the reply with code before checking it; the expectation here checks "
                "the reply as the route sends it, review it",
            )
    for key in ("provider", "rubricPrompt"):
        if spec.get(key):
            yield (key, "evalcore's judge model and prompt are set in the scorecard's judge")


def _assert_set(
    item: Written,
    values: Mapping[str, Any],
    tools: list[dict[str, Any]],
    render: Render,
    load: Load,
    builder: _Expect,
    mapped: Mapped,
) -> None:
    spec = item.spec
    if spec.get("threshold") is not None:
        raise _Skipped(
            "passes when a share of its assertions pass; evalcore checks each expectation"
        )
    inner = spec.get("assert")
    if not isinstance(inner, list):
        raise _Skipped("an assert-set needs a list under assert")
    # Without a threshold every assertion of the set must pass: the same as listing them.
    for sub in inner:
        if not isinstance(sub, Mapping) or "type" not in sub:
            mapped.skipped.append((item.origin, "assertion", "not an assertion (no type)"))
            continue
        _map_item(Written(sub, item.origin), values, tools, render, load, builder, mapped)


def _budget(kind: str, spec: Mapping[str, Any], origin: Origin) -> BudgetFound | None:
    if kind == "cost":
        budget_kind: Literal["cost", "latency"] = "cost"
    elif kind == "latency":
        budget_kind = "latency"
    else:
        return None
    threshold = spec.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise _Skipped(f"a {kind} limit needs a number as its threshold")
    if not math.isfinite(threshold) or threshold <= 0:
        raise _Skipped(f"a {kind} limit must be above zero, got {threshold}")
    return BudgetFound(origin, budget_kind, float(threshold))


def _value(
    value: Any, values: Mapping[str, Any], render: Render, load: Load, origin: Origin
) -> Any:
    """The assertion's value with its `{{var}}` templates filled in and `file://` read."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            try:
                value = render(value, values)
            except UndefinedError as exc:
                raise _Skipped(f"its value names a var the test does not give ({exc})") from None
            except TemplateError as exc:
                raise _Skipped(f"its value is not a template that fills in: {exc}") from None
        if value.startswith("file://"):
            if is_code_ref(value):
                raise _Skipped(RUNS_CODE)
            return load(value, origin)
        return value
    if isinstance(value, list):
        return [_value(part, values, render, load, origin) for part in value]
    return value


def _apply(
    kind: str, value: Any, spec: Mapping[str, Any], tools: list[dict[str, Any]], into: _Expect
) -> None:
    """Turn one assertion into expectation keys, or raise `_Skipped` saying why not."""
    if kind in ("equals", "not-equals"):
        _equals(kind, value, into)
    elif kind in _CONTAINS:
        _CONTAINS[kind](_texts(value, many=kind.endswith(("-any", "-all"))), into)
    elif kind in ("regex", "not-regex"):
        pattern = _text(value, kind)
        _compiles(pattern)
        if kind == "not-regex":
            pattern = rf"(?s)\A(?!.*?(?:{pattern}))"
            _compiles(pattern)
        into.regex.append(pattern)
    elif kind == "starts-with":
        into.regex.append(r"\A" + _escape(_text(value, kind)))
    elif kind == "not-starts-with":
        into.regex.append(rf"\A(?!{_escape(_text(value, kind))})")
    elif kind == "is-json":
        into.json_schemas.append(_schema(value))
    elif kind in (
        "is-valid-openai-tools-call",
        "is-valid-openai-function-call",
        "is-valid-function-call",
    ):
        _tool_call(tools, into)
    elif kind == "llm-rubric":
        _rubric(value, spec, into)
    elif kind == "is-refusal":
        into.set_outcome("refuse")
    elif kind in _NOT_CONVERTED:
        raise _Skipped(_NOT_CONVERTED[kind])
    elif kind.startswith("not-"):
        base = kind[len("not-") :]
        if base in _NOT_CONVERTED:
            raise _Skipped(_NOT_CONVERTED[base])
        if base == "is-refusal":
            raise _Skipped(_NOT_FORM)
        raise _Skipped(f"evalcore has no counterpart for the negated form of {base}")
    else:
        raise _Skipped("not an assertion type evalcore knows how to convert")


def _equals(kind: str, value: Any, into: _Expect) -> None:
    if isinstance(value, dict | list):
        if kind == "not-equals":
            raise _Skipped("a JSON value that the reply must not equal has no counterpart")
        # promptfoo compares a structured value with the reply read as JSON.
        into.json_schemas.append({"const": value})
        return
    text = _text(value, kind)
    if kind == "equals":
        into.set_exact(text)
    else:
        # evalcore's exact forgives surrounding whitespace; so does this negation.
        into.regex.append(rf"(?s)\A(?!\s*{_escape(text.strip())}\s*\Z)")


@functools.lru_cache(maxsize=4096)
def _escape(text: str) -> str:
    """`text` as a literal pattern; spaces stay as written, to keep patterns readable."""
    return re.escape(text).replace("\\ ", " ")


def _any_of(phrases: list[str]) -> str:
    return "(?:" + "|".join(_escape(p) for p in phrases) + ")"


def _all_of(phrases: list[str]) -> str:
    return "".join(f"(?=.*?{_escape(p)})" for p in phrases)


_CONTAINS: dict[str, Callable[[list[str], _Expect], None]] = {
    # promptfoo's contains is case-sensitive; evalcore's contains forgives case.
    "contains": lambda p, e: e.regex.extend(_escape(x) for x in p),
    "contains-all": lambda p, e: e.regex.extend(_escape(x) for x in p),
    "contains-any": lambda p, e: e.regex.append(_any_of(p)),
    "icontains": lambda p, e: e.contains.extend(p),
    "icontains-all": lambda p, e: e.contains.extend(p),
    "icontains-any": lambda p, e: e.regex.append("(?i)" + _any_of(p)),
    "not-contains": lambda p, e: e.regex.extend(rf"(?s)\A(?!.*?{_escape(x)})" for x in p),
    "not-contains-any": lambda p, e: e.regex.append(rf"(?s)\A(?!.*?{_any_of(p)})"),
    "not-contains-all": lambda p, e: e.regex.append(rf"(?s)\A(?!{_all_of(p)})"),
    "not-icontains": lambda p, e: e.not_contains.extend(p),
    "not-icontains-any": lambda p, e: e.not_contains.extend(p),
    "not-icontains-all": lambda p, e: e.regex.append(rf"(?is)\A(?!{_all_of(p)})"),
}


def js_string(value: Any) -> str:
    """`value` as JavaScript's `String()` writes it, as promptfoo compares it."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def _text(value: Any, kind: str) -> str:
    if value is None:
        raise _Skipped(f"{kind} needs a value")
    if isinstance(value, dict | list):
        raise _Skipped(f"{kind} needs one text value, got a {type(value).__name__}")
    return js_string(value)


def _texts(value: Any, *, many: bool) -> list[str]:
    if isinstance(value, list):
        if not many:
            raise _Skipped("needs one text value, got a list")
        phrases = [js_string(part) for part in value]
    elif value is None:
        raise _Skipped("needs a value")
    elif many and isinstance(value, str):
        # As promptfoo reads a list written as text: comma-separated.
        phrases = [part.strip() for part in value.split(",")]
    else:
        phrases = [js_string(value)]
    if not phrases:
        raise _Skipped("needs at least one value")
    return phrases


def _compiles(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _Skipped(
            f"the pattern {pattern!r} does not compile as a Python regex: {exc}"
        ) from None


def _schema(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)  # JSON is YAML too
        except yaml.YAMLError as exc:
            raise _Skipped(f"its schema is not JSON or YAML: {exc}") from None
    if not isinstance(value, dict):
        raise _Skipped(f"its schema must be a JSON Schema object, got {type(value).__name__}")
    return value


def tool_name_and_schema(tool: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A tool's name and parameter schema, in OpenAI's, Anthropic's or the flat layout."""
    function = tool.get("function")
    body = function if isinstance(function, Mapping) else tool
    schema = body.get("parameters", body.get("input_schema", {"type": "object"}))
    return str(body.get("name")), dict(schema) if isinstance(schema, Mapping) else {}


def _tool_call(tools: list[dict[str, Any]], into: _Expect) -> None:
    if not tools:
        raise _Skipped("the provider offers no function tools to call")
    if len(tools) > 1:
        raise _Skipped(
            f"the provider offers {len(tools)} tools; evalcore's tool_call check names the one "
            "tool the reply must call"
        )
    name, schema = tool_name_and_schema(tools[0])
    if into.tool_call is not None and into.tool_call["name"] != name:
        raise _Skipped("the case already expects another tool call")
    into.set_outcome("tool_call")
    into.tool_call = {"name": name, "arguments_schema": schema}


def _rubric(value: Any, spec: Mapping[str, Any], into: _Expect) -> None:
    rubric = _text(value, "llm-rubric").strip()
    if not rubric:
        raise _Skipped("llm-rubric needs a rubric")
    threshold = spec.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise _Skipped(f"its threshold {threshold!r} is not a number")
        if not 0 <= threshold <= 1:
            raise _Skipped(f"its threshold {threshold} is outside 0..1, the judge's score range")
        into.min_scores.append(float(threshold))
    into.rubrics.append(rubric)
