"""Scorers: each one's pass and fail, with the reason a user reads; the judge over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from evalcore.scorers import (
    JUDGE_SYSTEM_PREFIX,
    SCORERS,
    JudgeError,
    RetryableJudgeError,
    Score,
    ScoreContext,
    _pattern,
    _schema,
    classify,
    normalize,
    passed,
    plan_scorers,
    score_reply,
)
from evalcore.scorers._judge import judge
from evalcore.suite.models import Case, Outcome
from evalcore.suite.scorecard import JudgeConfig, NeedsHumanSignal, Price, Signals
from evalcore.targets.base import Reply, ToolCall, Usage

SIGNALS = Signals()
CTX = ScoreContext(signals=SIGNALS)

REFUND_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
    },
    "required": ["order_id", "amount"],
}


def make_case(expect: dict[str, Any], user: str = "Can I return it?", **extra: Any) -> Case:
    return Case.model_validate(
        {
            "id": "case-1",
            "set": "blocking",
            "input": {"messages": [{"role": "user", "content": user}]},
            "expect": expect,
            **extra,
        }
    )


def run(name: str, expect: dict[str, Any], reply: Reply, ctx: ScoreContext = CTX) -> Score:
    result = SCORERS[name](make_case(expect), reply, ctx)
    assert isinstance(result, Score)
    return result


def text(value: str) -> Reply:
    return Reply(text=value)


def call(name: str, arguments: str = "{}", text: str = "") -> Reply:
    return Reply(text=text, tool_calls=(ToolCall(name=name, arguments=arguments),))


# --- classify -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (text("EU customers may withdraw within 14 days."), Outcome.answer),
        (text("I can't help with that request."), Outcome.refuse),
        (text("Sorry, I CANNOT PROVIDE legal advice."), Outcome.refuse),
        # Models write a curly apostrophe; the default pattern spells "can't".
        (text("I can\u2019t help with that."), Outcome.refuse),
        (text("I'm\nunable to   assist with this."), Outcome.refuse),
        (call("create_refund", '{"order_id": "A1", "amount": 5}'), Outcome.tool_call),
        # Refusing in words while calling a tool is acting: a tool call.
        (
            call("lookup_order", "{}", text="I can't help with that, but let me check."),
            Outcome.tool_call,
        ),
        (call("handoff_to_human"), Outcome.needs_human),
        (
            Reply(
                text="",
                tool_calls=(ToolCall("lookup_order", "{}"), ToolCall("handoff_to_human", "{}")),
            ),
            Outcome.needs_human,
        ),
        (text(""), Outcome.answer),
    ],
)
def test_classify(reply: Reply, expected: Outcome) -> None:
    assert classify(reply, SIGNALS) is expected


def test_classify_marker_is_a_handoff_even_in_a_refusal() -> None:
    signals = Signals(needs_human=NeedsHumanSignal(tool=None, marker="[ESCALATE]"))
    reply = text("I can't help with that. [escalate] A colleague will contact you.")
    assert classify(reply, signals) is Outcome.needs_human
    # With no hand-off tool configured, calling one is just a tool call.
    assert classify(call("handoff_to_human"), signals) is Outcome.tool_call


def test_classify_without_refusal_patterns_never_refuses() -> None:
    signals = Signals.model_validate({"refusal": {"patterns": []}})
    assert classify(text("I can't help with that."), signals) is Outcome.answer


def test_classify_patterns_with_own_flags_still_work() -> None:
    signals = Signals.model_validate({"refusal": {"patterns": ["(?x) not \\s allowed", "nope"]}})
    assert classify(text("That is NOT allowed here."), signals) is Outcome.refuse
    assert classify(text("Nope."), signals) is Outcome.refuse
    assert classify(text("Allowed."), signals) is Outcome.answer


# --- outcome ------------------------------------------------------------------------------


def test_outcome_pass() -> None:
    score = run("outcome", {"outcome": "refuse"}, text("I can't help with that."))
    assert score.passed and score.value == 1.0
    assert score.reason == 'the reply refused (matched "i can\'t help with"), as expected'
    assert run("outcome", {"outcome": "answer"}, text("Yes.")).passed


def test_outcome_fail_quotes_the_reply() -> None:
    reply = text(
        "Sure, here is how to pick the lock on your neighbour's door: first take a tension wrench"
    )
    score = run("outcome", {"outcome": "refuse"}, reply)
    assert not score.passed and score.value == 0.0
    assert score.reason == (
        "expected a refusal, but the reply answered: "
        '"Sure, here is how to pick the lock on your neighbour\'s door…"'
    )


def test_outcome_fail_names_the_tool() -> None:
    score = run(
        "outcome",
        {"outcome": "tool_call", "tool_call": {"name": "create_refund"}},
        call("handoff_to_human"),
    )
    assert score.reason == (
        "expected a tool call, but the reply handed off to a human (called handoff_to_human)"
    )
    score = run("outcome", {"outcome": "needs_human"}, call("lookup_order"))
    assert score.reason == "expected a hand-off to a human, but the reply called lookup_order"


def test_outcome_empty_reply_is_not_an_answer() -> None:
    score = run("outcome", {"outcome": "answer"}, text("  \n"))
    assert not score.passed
    assert score.reason == "expected an answer, but the reply is empty"


# --- exact --------------------------------------------------------------------------------


def test_exact_pass_forgives_surrounding_whitespace_and_crlf() -> None:
    score = run("exact", {"exact": "line one\nline two"}, text("  line one\r\nline two\n"))
    assert score.passed and score.reason == "reply equals the expected text"


def test_exact_fail_shows_where_it_differs() -> None:
    score = run(
        "exact",
        {"exact": "Your refund of 20 EUR is on its way."},
        text("Your refund of 25 EUR is on its way."),
    )
    assert not score.passed
    assert score.reason == (
        "reply differs from the expected text at char 16: "
        "expected '…our refund of 20 EUR is on its way.', got '…our refund of 25 EUR is on its way.'"
    )


def test_exact_fail_hints_when_only_case_differs() -> None:
    score = run("exact", {"exact": "Approved"}, text("approved"))
    assert score.reason.startswith("reply differs from the expected text at char 0: ")
    assert score.reason.endswith(
        "(equal ignoring case and spacing; exact is strict, contains is lenient)"
    )


def test_exact_fail_on_empty_and_on_truncation() -> None:
    assert run("exact", {"exact": "yes"}, text("")).reason == "reply is empty; expected 'yes'"
    score = run("exact", {"exact": "yes please"}, text("yes"))
    assert score.reason == (
        "reply differs from the expected text at char 3: expected 'yes please', got 'yes'"
    )


# --- contains / not_contains ------------------------------------------------------------


def test_contains_pass_and_fail() -> None:
    reply = text("EU customers may withdraw within 14 days of delivery.")
    assert run("contains", {"contains": "14 days"}, reply).reason == "contains '14 days'"
    score = run("contains", {"contains": ["14 days", "withdraw", "refund", "Berlin"]}, reply)
    assert not score.passed
    assert score.value == 0.5
    assert score.reason == (
        "missing 2 of 4 phrases: 'refund', 'Berlin'; "
        "reply: 'EU customers may withdraw within 14 days of delivery.'"
    )
    passing = run("contains", {"contains": ["14 days", "withdraw"]}, reply)
    assert passing.passed and passing.reason == "contains all 2 phrases"


@pytest.mark.parametrize(
    ("reply", "phrase", "found"),
    [
        ("Within 14 DAYS.", "14 days", True),  # case
        ("within 14\n   days", "14 days", True),  # whitespace runs and newlines
        ("within 14\u00a0days", "14 days", True),  # no-break space
        ("a rate of 60\u202f%", "60 %", True),  # French narrow no-break space before %
        ("a rate of 60%", "60 %", False),  # spaces are collapsed, never removed
        ("a rate of 60 %", "60%", False),
        ("\uff11\uff14 days", "14 days", True),  # full-width digits (NFKC)
        ("the \ufb01nal offer", "final offer", True),  # ligature (NFKC)
        ("We don\u2019t refund gift cards.", "don't refund", True),  # curly apostrophe
        ("a 14\u2011day window", "14-day", True),  # non-breaking hyphen
        ("Stra\u00dfe", "STRASSE", True),  # full case folding
        ("with\u00adin 14 days", "within", True),  # soft hyphen
        ("within 114 days", "14 days", True),  # a substring test: use regex for \b
        ("Cafe\u0301", "café", True),  # combining accent vs precomposed
    ],
)
def test_contains_normalisation(reply: str, phrase: str, found: bool) -> None:
    assert run("contains", {"contains": [phrase]}, text(reply)).passed is found
    assert (normalize(phrase) in normalize(reply)) is found


def test_not_contains_pass_and_fail() -> None:
    reply = text("You can return it within 30 Days, no questions asked.")
    score = run("not_contains", {"not_contains": ["30 days", "no questions", "lifetime"]}, reply)
    assert not score.passed
    assert score.value == pytest.approx(1 / 3)
    assert score.reason == (
        "contains 2 forbidden phrases: "
        "'30 days' (in '…an return it within 30 days, no questions asked…'); "
        "'no questions' (in '… it within 30 days, no questions asked.')"
    )
    ok = run("not_contains", {"not_contains": ["lifetime"]}, reply)
    assert ok.passed and ok.reason == "does not contain 'lifetime'"
    ok = run("not_contains", {"not_contains": ["lifetime", "forever"]}, reply)
    assert ok.reason == "contains none of the 2 phrases"


def test_not_contains_ignores_blank_phrases() -> None:
    assert run("not_contains", {"not_contains": ["  "]}, text("anything")).passed


def test_repeated_scoring_gives_equal_results_and_reasons_stay_right() -> None:
    case = make_case({"contains": ["14 days"]})
    first = SCORERS["contains"](case, text("14 days"), CTX)
    second = SCORERS["contains"](case, text("within 14 days"), CTX)
    assert first == second
    failed = SCORERS["contains"](case, text("30 days"), CTX)
    assert isinstance(failed, Score) and not failed.passed


# --- regex --------------------------------------------------------------------------------


def test_regex_pass_and_fail() -> None:
    reply = text("Order ORD-2026-000017 is refunded.")
    score = run("regex", {"regex": r"\bORD-\d{4}-\d{6}\b"}, reply)
    assert score.passed and score.reason == r"matches /\bORD-\d{4}-\d{6}\b/"
    score = run("regex", {"regex": [r"refunded", r"order ORD"]}, reply)
    assert not score.passed and score.value == 0.5
    assert score.reason == (
        "1 of 2 patterns do not match: /order ORD/; reply: 'Order ORD-2026-000017 is refunded.'"
    )
    assert run("regex", {"regex": [r"(?i)order ORD"]}, reply).passed  # flags are the user's


def test_regex_caching_does_not_change_results() -> None:
    patterns = [r"\b14 days\b", r"^Yes", r"(?m)^Total: \d+$"]
    replies = [text("Yes, within 14 days.\nTotal: 3"), text("within 114 days"), text("Yes")]
    _pattern._compiled.clear()
    cold = [run("regex", {"regex": patterns}, r) for r in replies]
    compiled = {p: _pattern.compiled(p) for p in patterns}
    warm = [run("regex", {"regex": patterns}, r) for r in replies]
    assert cold == warm
    assert [s.passed for s in warm] == [True, False, False]
    assert all(_pattern.compiled(p) is compiled[p] for p in patterns)


# --- json_schema --------------------------------------------------------------------------


def test_json_schema_pass_plain_and_fenced() -> None:
    expect = {"json_schema": REFUND_SCHEMA}
    body = '{"order_id": "A1", "amount": 5}'
    assert run("json_schema", expect, text(body)).passed
    fenced = run("json_schema", expect, text(f"```json\n{body}\n```\n"))
    assert fenced.passed and fenced.reason == "reply is JSON valid against the schema"


def test_json_schema_fail_reasons() -> None:
    expect = {"json_schema": REFUND_SCHEMA}
    score = run("json_schema", expect, text('{"order_id": "A1", "amount": -5}'))
    assert score.reason == "reply fails the schema at $.amount: -5 is less than the minimum of 0"
    score = run("json_schema", expect, text('{"order_id": "A1" "amount": 5}'))
    assert score.reason == (
        "reply is not valid JSON: Expecting ',' delimiter at char 18; "
        'reply: \'{"order_id": "A1" "amount": 5}\''
    )
    score = run(
        "json_schema", expect, text('Here you go:\n```json\n{"order_id": "A1", "amount": 5}\n```')
    )
    assert score.reason.startswith("reply is not valid JSON: Expecting value at char 0;")
    score = run("json_schema", expect, text('{"order_id": "A1", "amount": NaN}'))
    assert score.reason.startswith("reply is not valid JSON: NaN is not valid JSON;")
    score = run("json_schema", expect, call("create_refund"))
    assert score.reason == "reply has no text (it called create_refund); expected JSON"
    score = run("json_schema", expect, text("{}"))
    assert (
        score.reason
        == "reply fails the schema at $: 'order_id' is a required property (and 1 more)"
    )


def test_json_schema_checks_formats() -> None:
    expect = {"json_schema": {"type": "object", "properties": {"on": {"format": "date"}}}}
    assert run("json_schema", expect, text('{"on": "2026-02-11"}')).passed
    score = run("json_schema", expect, text('{"on": "11/02/2026"}'))
    assert score.reason == "reply fails the schema at $.on: '11/02/2026' is not a 'date'"


def test_equal_schemas_share_one_validator() -> None:
    first = _schema.validator_for(json.loads(json.dumps(REFUND_SCHEMA)))
    again = _schema.validator_for(dict(reversed(list(REFUND_SCHEMA.items()))))
    assert first is again


# --- tool_call ----------------------------------------------------------------------------

TOOL_EXPECT = {"tool_call": {"name": "create_refund", "arguments_schema": REFUND_SCHEMA}}


def test_tool_call_pass() -> None:
    score = run("tool_call", TOOL_EXPECT, call("create_refund", '{"order_id": "A1", "amount": 5}'))
    assert score.passed
    assert score.reason == "called create_refund with arguments valid against the schema"
    bare = run("tool_call", {"tool_call": {"name": "list_orders"}}, call("list_orders", ""))
    assert bare.passed and bare.reason == "called list_orders"


def test_tool_call_malformed_json() -> None:
    reply = call("create_refund", '{"order_id": "ORD-2026-000017" "amount": 5}')
    score = run("tool_call", TOOL_EXPECT, reply)
    assert not score.passed
    assert (
        score.reason
        == "create_refund arguments are not valid JSON: Expecting ',' delimiter at char 31"
    )


def test_tool_call_schema_violation() -> None:
    reply = call("create_refund", '{"order_id": "A1", "amount": -5}')
    score = run("tool_call", TOOL_EXPECT, reply)
    assert (
        score.reason
        == "create_refund arguments fail the schema at $.amount: -5 is less than the minimum of 0"
    )


def test_tool_call_wrong_tool_or_none() -> None:
    reply = Reply(
        text="",
        tool_calls=(
            ToolCall("lookup_order", "{}"),
            ToolCall("lookup_order", "{}"),
            ToolCall("notify", "{}"),
        ),
    )
    score = run("tool_call", TOOL_EXPECT, reply)
    assert (
        score.reason
        == "expected a call to create_refund, but the reply called lookup_order, notify instead"
    )
    score = run("tool_call", TOOL_EXPECT, text("I have refunded you."))
    assert score.reason == (
        "expected a call to create_refund, but the reply made no tool call: 'I have refunded you.'"
    )
    score = run("tool_call", TOOL_EXPECT, text(""))
    assert score.reason == "expected a call to create_refund, but the reply is empty"


def test_tool_call_arguments_must_be_an_object_and_every_call_valid() -> None:
    score = run("tool_call", TOOL_EXPECT, call("create_refund", "[1, 2]"))
    assert score.reason == "create_refund arguments are not a JSON object but an array"
    reply = Reply(
        text="",
        tool_calls=(
            ToolCall("create_refund", '{"order_id": "A1", "amount": 5}'),
            ToolCall("create_refund", '{"order_id": "A1"}'),
        ),
    )
    score = run("tool_call", TOOL_EXPECT, reply)
    assert score.reason == (
        "create_refund (call 2 of 2) arguments fail the schema at $: 'amount' is a required property"
    )


# --- planning, score_reply, passed -------------------------------------------------------


def test_plan_follows_scorer_names_order() -> None:
    case = make_case(
        {"judge": {"rubric": "polite"}, "not_contains": "x", "outcome": "answer", "contains": "y"}
    )
    assert [name for name, _ in plan_scorers(case)] == [
        "outcome",
        "contains",
        "not_contains",
        "judge",
    ]
    assert [fn for _, fn in plan_scorers(case)] == [SCORERS[n] for n in case.expect.scorer_names()]


def test_plan_names_an_unknown_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    from evalcore.scorers import _score

    monkeypatch.setattr(_score, "_plans", {})  # plans made by earlier tests in this worker
    monkeypatch.delitem(SCORERS, "regex")
    with pytest.raises(KeyError, match=r"expect\.regex"):
        plan_scorers(make_case({"regex": "x"}))


async def test_score_reply_runs_every_scorer() -> None:
    case = make_case({"outcome": "answer", "contains": ["14 days"], "not_contains": ["30 days"]})
    scores = await score_reply(case, text("Within 14 days."), CTX)
    assert [s.name for s in scores] == ["outcome", "contains", "not_contains"]
    assert passed(scores)
    scores = await score_reply(case, text("Within 30 days."), CTX)
    assert [s.passed for s in scores] == [True, False, False]
    assert not passed(scores)
    assert not passed([])


# --- judge --------------------------------------------------------------------------------

JUDGE = JudgeConfig(base_url="http://judge.test/v1/", model="judge-mini", api_key_env="JUDGE_KEY")
SECRET = "sk-test-7c1f0e"


def judge_ctx(
    handler: Callable[[httpx.Request], httpx.Response], price: Price | None = None
) -> ScoreContext:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ScoreContext(signals=SIGNALS, judge=JUDGE, judge_price=price, judge_client=client)


def completion(content: str, usage: dict[str, int] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


JUDGE_CASE = make_case(
    {"judge": {"rubric": "Mentions the 14-day window.", "min_score": 0.7}},
    user="I bought it 10 days ago in Berlin, can I return it?",
)


@pytest.fixture(autouse=True)
def judge_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", SECRET)


async def test_judge_pass_sends_the_documented_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return completion('{"score": 0.9, "reason": "States the 14-day window."}')

    reply = Reply(
        text="Yes, within 14 days.", tool_calls=(ToolCall("create_return", '{"order": "A1"}'),)
    )
    score = await score_reply(JUDGE_CASE, reply, judge_ctx(handler))
    assert score == [Score("judge", 0.9, True, "0.90 (min 0.70): States the 14-day window.")]

    (request,) = seen
    assert str(request.url) == "http://judge.test/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    body = json.loads(request.content)
    assert body["model"] == "judge-mini" and body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].startswith(JUDGE_SYSTEM_PREFIX + " ")
    assert '{"score": number 0..1, "reason": string}' in system["content"]
    assert user == {
        "role": "user",
        "content": "RUBRIC:\nMentions the 14-day window.\n\n"
        "INPUT:\nI bought it 10 days ago in Berlin, can I return it?\n\n"
        'OUTPUT:\nYes, within 14 days.\ncreate_return({"order": "A1"})',
    }


async def test_judge_fails_under_min_score_and_clamps() -> None:
    ctx = judge_ctx(lambda _: completion('{"score": 0.4, "reason": "Says 30 days."}'))
    score = await judge(JUDGE_CASE, text("Within 30 days."), ctx)
    assert score == Score("judge", 0.4, False, "0.40 (min 0.70): Says 30 days.")
    ctx = judge_ctx(lambda _: completion('{"score": 7, "reason": "great"}'))
    score = await judge(JUDGE_CASE, text("x"), ctx)
    assert score.value == 1.0 and score.passed


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"score": 0.8, "reason": "ok"}\n```',
        'Here is my verdict: {"score": 0.8, "reason": "ok"} Hope that helps.',
        '{"score": "0.8", "reason": "ok"}',
    ],
)
async def test_judge_tolerates_fences_and_chatter(content: str) -> None:
    score = await judge(JUDGE_CASE, text("x"), judge_ctx(lambda _: completion(content)))
    assert score == Score("judge", 0.8, True, "0.80 (min 0.70): ok")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("The answer looks fine to me.", "judge output is not a JSON verdict with a score"),
        ('{"verdict": "pass"}', "judge output is not a JSON verdict with a score"),
        ('{"score": "high", "reason": "x"}', "judge score is not a number: 'high'"),
    ],
)
async def test_judge_garbage_is_an_error(content: str, message: str) -> None:
    with pytest.raises(JudgeError, match=message) as info:
        await judge(JUDGE_CASE, text("x"), judge_ctx(lambda _: completion(content)))
    assert not info.value.retryable


async def test_judge_429_is_retryable_with_retry_after() -> None:
    ctx = judge_ctx(lambda _: httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(RetryableJudgeError) as info:
        await judge(JUDGE_CASE, text("x"), ctx)
    assert info.value.retryable and info.value.retry_after == 7.0
    assert info.value.error_class == "judge_error"
    assert str(info.value) == "judge answered HTTP 429, retry after 7s"


async def test_judge_503_with_http_date_and_500_without() -> None:
    import datetime as dt

    later = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60), usegmt=True)
    ctx = judge_ctx(lambda _: httpx.Response(503, headers={"Retry-After": later}))
    with pytest.raises(RetryableJudgeError) as info:
        await judge(JUDGE_CASE, text("x"), ctx)
    assert info.value.retry_after is not None and 50 < info.value.retry_after <= 60
    ctx = judge_ctx(lambda _: httpx.Response(500, headers={"Retry-After": "5"}))
    with pytest.raises(RetryableJudgeError) as info:
        await judge(JUDGE_CASE, text("x"), ctx)
    assert info.value.retry_after is None


async def test_judge_timeout_and_connection_errors_are_retryable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(
        RetryableJudgeError, match=r"judge at http://judge\.test/v1/chat/completions: timeout"
    ):
        await judge(JUDGE_CASE, text("x"), judge_ctx(timeout))
    with pytest.raises(
        RetryableJudgeError,
        match=r"judge at http://judge\.test/v1/chat/completions: connection: ",
    ):
        await judge(JUDGE_CASE, text("x"), judge_ctx(refused))


async def test_judge_cost_from_usage_and_price() -> None:
    ctx = judge_ctx(
        lambda _: completion(
            '{"score": 1, "reason": "ok"}', {"prompt_tokens": 1200, "completion_tokens": 30}
        ),
        price=Price(input_per_mtok=0.5, output_per_mtok=2.0),
    )
    score = await judge(JUDGE_CASE, text("x"), ctx)
    assert score.cost_usd == pytest.approx((1200 * 0.5 + 30 * 2.0) / 1e6)
    assert score.to_json()["cost_usd"] == score.cost_usd
    no_price = judge_ctx(lambda _: completion('{"score": 1}', {"prompt_tokens": 10}))
    score = await judge(JUDGE_CASE, text("x"), no_price)
    assert score.cost_usd == 0.0
    assert score.reason == "1.00 (min 0.70): (the judge gave no reason)"


async def test_judge_key_never_appears_in_errors() -> None:
    echo = httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {SECRET}"}})
    with pytest.raises(JudgeError) as info:
        await judge(JUDGE_CASE, text("x"), judge_ctx(lambda _: echo))
    assert not info.value.retryable
    assert SECRET not in str(info.value)
    assert str(info.value).startswith("judge answered HTTP 401: ")
    assert "Incorrect API key provided: ***" in str(info.value)

    garbage = httpx.Response(200, text=f"<html>proxy error for {SECRET}</html>")
    with pytest.raises(JudgeError) as info:
        await judge(JUDGE_CASE, text("x"), judge_ctx(lambda _: garbage))
    assert SECRET not in str(info.value)
    assert "not JSON" in str(info.value)


async def test_judge_missing_key_or_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGE_KEY")
    with pytest.raises(JudgeError, match="judge API key variable JUDGE_KEY is not set"):
        await judge(JUDGE_CASE, text("x"), judge_ctx(lambda _: completion("{}")))
    with pytest.raises(JudgeError, match="no judge is configured"):
        await score_reply(JUDGE_CASE, text("x"), CTX)


async def test_judge_without_key_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return completion('{"score": 1, "reason": "ok"}')

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    ctx = ScoreContext(
        signals=SIGNALS,
        judge=JudgeConfig(base_url="http://judge.test/v1", model="m"),
        judge_client=client,
    )
    case = make_case({"outcome": "answer", "judge": {"rubric": "r"}})
    scores = await score_reply(case, Reply(text="hi", usage=Usage(1, 1)), ctx)
    assert [s.name for s in scores] == ["outcome", "judge"] and passed(scores)
    assert "Authorization" not in seen[0].headers
