"""The `judge` expectation: an LLM grades the reply against the case's rubric.

The judge is any OpenAI-compatible `/chat/completions` endpoint, asked at temperature 0 for
`{"score": 0..1, "reason": "..."}`. Its answer is read leniently (a ```json fence or a
sentence before the first `{` is fine) and its score clamped to [0, 1].

Whatever goes wrong on the way (no judge configured, missing key, timeout, 429, 5xx, an
answer that is not the verdict asked for) raises `JudgeError`, never a failing `Score`:
a broken judge says nothing about the route under test, so the run engine records the
case as an error. Timeouts, connection failures, 429 and 5xx raise `RetryableJudgeError`,
with the server's Retry-After when it gave one. The API key is read from the environment
at call time and never appears in an error message, even when the judge echoes it back
or cuts it; nor do the credentials of the judge's URL.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import httpx

from evalcore.scorers._schema import strip_fence
from evalcore.scorers._text import preview
from evalcore.scorers.base import JudgeError, RetryableJudgeError, Score, ScoreContext, scorer
from evalcore.secrets import SecretBlockError, block_secret
from evalcore.suite.models import Case
from evalcore.suite.scorecard import JudgeConfig
from evalcore.targets.base import Reply
from evalcore.targets.http import (
    classify_http_error,
    display_url,
    endpoint_url,
    parse_retry_after,
    redact_text,
    url_secrets,
)

JUDGE_SYSTEM_PREFIX = "You are an evaluation judge."

JUDGE_SYSTEM_PROMPT = (
    JUDGE_SYSTEM_PREFIX + " Grade the OUTPUT against the RUBRIC, given the INPUT that produced it."
    ' Return only JSON {"score": number 0..1, "reason": string}: score 1 when the OUTPUT'
    " fully meets the RUBRIC, 0 when it does not at all; reason in one sentence."
)


def last_user_message(case: Case) -> str:
    """The message the reply answers: the last user turn (the last message if none is)."""
    messages = case.input.messages
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return messages[-1].content


def render_output(reply: Reply) -> str:
    """The reply as the judge sees it: its text, then each tool call as `name(arguments)`."""
    lines = [reply.text] if reply.text else []
    lines.extend(f"{call.name}({call.arguments})" for call in reply.tool_calls)
    return "\n".join(lines)


def judge_messages(rubric: str, case: Case, reply: Reply) -> list[dict[str, str]]:
    """The chat sent to the judge; the bundled reference server relies on this exact layout."""
    user = (
        f"RUBRIC:\n{rubric}\n\nINPUT:\n{last_user_message(case)}\n\nOUTPUT:\n{render_output(reply)}"
    )
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]


def parse_verdict(content: str) -> tuple[float, str]:
    """(score clamped to [0, 1], reason) from the judge's answer, or `JudgeError`."""
    body = strip_fence(content)
    verdict: Any = None
    try:
        verdict = json.loads(body)
    except ValueError:
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            try:
                verdict = json.loads(body[start : end + 1])
            except ValueError:
                verdict = None
    if not isinstance(verdict, dict) or "score" not in verdict:
        raise JudgeError(f"judge output is not a JSON verdict with a score: {preview(content)}")
    raw = verdict["score"]
    score: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        score = float(raw)
    elif isinstance(raw, str):
        try:
            score = float(raw.strip())
        except ValueError:
            score = None
    if score is None or math.isnan(score):
        raise JudgeError(f"judge score is not a number: {raw!r}")
    reason = verdict.get("reason")
    reason_text = " ".join(reason.split()) if isinstance(reason, str) and reason.strip() else ""
    return min(1.0, max(0.0, score)), reason_text or "(the judge gave no reason)"


def judge_key(config: JudgeConfig) -> str | None:
    """The judge's API key: from its variable (`api_key_env`) or its Prefect Secret block
    (`api_key_block`, read once per process); None when it names neither. A variable
    that is unset or a block that cannot be read is a `JudgeError` naming it."""
    if config.api_key_block:
        try:
            secret = block_secret(config.api_key_block, used_for="judge.api_key_block")
        except SecretBlockError as exc:
            raise JudgeError(str(exc)) from None
        return secret.get_secret_value()
    if config.api_key_env:
        key = os.environ.get(config.api_key_env)
        if not key:
            raise JudgeError(f"judge API key variable {config.api_key_env} is not set")
        return key
    return None


def judge_secrets(config: JudgeConfig | None) -> tuple[str, ...]:
    """The judge's key (when it can be had) and its URL's credentials: what no message
    about the judge may show."""
    if config is None:
        return ()
    try:
        key = judge_key(config) or ""
    except JudgeError:
        key = ""  # every judge call fails on it, with nothing to redact
    return tuple(s for s in (key, *url_secrets(config.base_url)) if s)


def _tokens(usage: Any, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@scorer("judge")
async def judge(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """Ask the judge; pass when its score reaches the case's `min_score`."""
    expectation = case.expect.judge
    config = ctx.judge
    client = ctx.judge_client
    if expectation is None:  # pragma: no cover - the plan only runs scorers the case sets
        raise ValueError(f"case {case.id} has no judge expectation")
    if config is None or client is None:
        raise JudgeError(
            "case has a judge expectation but no judge is configured (scorecard `judge`)"
        )
    if not isinstance(client, httpx.AsyncClient):
        raise TypeError("ScoreContext.judge_client must be an httpx.AsyncClient")

    headers: dict[str, str] = {}
    key = judge_key(config)
    if key:
        headers["Authorization"] = f"Bearer {key}"

    secrets = judge_secrets(config)
    url = endpoint_url(config.base_url, "/chat/completions")
    body = {
        "model": config.model,
        "temperature": 0,
        "messages": judge_messages(expectation.rubric, case, reply),
    }
    try:
        response = await client.post(url, json=body, headers=headers, timeout=config.timeout_s)
    except httpx.TransportError as exc:
        # The same classification as a target's: aiohttp reports a refused connection
        # as a connect *timeout*, which would send people looking in the wrong place.
        error = classify_http_error(exc, redact=secrets)
        kind = RetryableJudgeError if error.retryable else JudgeError
        raise kind(f"judge at {display_url(url)}: {error.error_class}: {error}") from exc

    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers) if status in (429, 503) else None
        wait = f", retry after {retry_after:g}s" if retry_after is not None else ""
        raise RetryableJudgeError(f"judge answered HTTP {status}{wait}", retry_after=retry_after)
    if status >= 400:
        detail = redact_text(response.text, secrets)
        raise JudgeError(f"judge answered HTTP {status}: {preview(detail, 200)}")

    try:
        payload = response.json()
    except ValueError:
        raise JudgeError(
            f"judge answered HTTP {status} with a body that is not JSON: "
            f"{preview(redact_text(response.text, secrets))}"
        ) from None
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise JudgeError("judge response has no choices[0].message.content text")

    score, reason = parse_verdict(redact_text(content, secrets))
    usage = payload.get("usage")
    cost = 0.0
    price = ctx.judge_price
    if price is not None:
        cost = (
            _tokens(usage, "prompt_tokens") * price.input_per_mtok
            + _tokens(usage, "completion_tokens") * price.output_per_mtok
        ) / 1_000_000
    minimum = expectation.min_score
    return Score(
        "judge",
        score,
        score >= minimum,
        f"{score:.2f} (min {minimum:.2f}): {reason}",
        cost_usd=cost,
    )
