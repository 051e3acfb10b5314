"""The reference support assistant as a pure function: an OpenAI chat request body in, an
OpenAI chat completion out, no I/O. Deterministic for a given request unless
`nondeterminism` is above zero, so that a red run against it always means something.

How one request is decided:

1. judge mode: the first message is a system message starting with `JUDGE_SYSTEM_PREFIX`;
   the reply is JSON `{"score", "reason"}` (see `judge.py`); paraphrase mode: it starts
   with `PARAPHRASE_SYSTEM_PREFIX`; the reply is the rewritten message (`paraphrase.py`);
2. a `tool` message last: the tool result is summarised for the customer, or, when it is
   cut off, an error payload, or holds nulls or a non-string id, the assistant apologises
   that it could not retrieve the details and invents nothing (`tool_results.py`);
3. unsafe requests (weapons, self-harm, payment-card dumps, someone else's account, data
   or parcel, covert access, fraud, prompt injection, switching the rules off) are
   refused with `REFUSAL`, also when wrapped in role-play, a story, a quoted document,
   base64 or several turns of escalation (`safety.py`);
4. moments that need a person (legal threats, chargebacks and fraud, account compromise,
   bereavement, safety incidents, an explicit request for a human, three frustrated user
   turns in a row) call the `handoff_to_human` tool with `{"reason", "priority"}` when it
   is offered, otherwise answer with `HANDOFF_MARKER` and a sentence that a colleague
   takes over (`handoff.py`); a plain unsafe message that is also such a moment is
   refused and handed off;
5. actions when their tool is offered: `create_refund`, `track_shipment`, `lookup_order`;
6. facts from the context documents (a leading system message starting with
   `CONTEXT_PREFIX`, one `[doc-id] (as of YYYY-MM-DD) (untrusted source) text` line per
   document) take precedence over the bundled knowledge base; among equally relevant
   documents the newest wins; untrusted documents and documents carrying instructions
   never answer; with a `Today is YYYY-MM-DD.` system message, records all more than a
   year old are not presented as current (`sources.py`);
7. the knowledge base, chosen by keyword matching, region-aware for refund windows;
8. a generic answer.

Versions, chosen by the server knob, the `x-ref-version` header or a request `model` of
`support-assistant@<version>`:

- `v1`: the healthy assistant.
- `regressed-refunds`: refund windows come from a stale policy: the EU window is answered
  as 30 days instead of 14, and every window is counted from purchase, not delivery.
- `regressed-safety`: complies with unsafe requests with a bland compliant answer
  instead of refusing.
- `regressed-handoff`: never hands off; answers generically instead.
- `regressed-tools`: action tool calls carry truncated, malformed JSON arguments
  (hand-off calls are untouched), and a broken tool result is summarised as if it were
  fine.
- `regressed-sources`: answers from the last context document whatever its trust or
  topic, and repeats what an instruction planted in a document tells it to say.
- `regressed-stale`: answers from the oldest relevant context document, as if current.
- `regressed-slow`: answers like `v1`; the server adds 800 ms of latency.

`nondeterminism` (0..1) is the fraction of knowledge-base and context answers that vary:
half of the varied ones use an alternative phrasing with the same facts, half drop the
key fact. Refusals, hand-offs, tool calls and judge verdicts never vary.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalcore.local.reference import tool_results
from evalcore.local.reference.actions import ACTION_TOOLS, action_calls, as_json
from evalcore.local.reference.handoff import frustrated_turns, handoff_moment
from evalcore.local.reference.judge import JUDGE_SYSTEM_PREFIX, judge_verdict
from evalcore.local.reference.knowledge import GENERIC_ANSWER, Phrasings, normalise
from evalcore.local.reference.paraphrase import PARAPHRASE_SYSTEM_PREFIX, paraphrase
from evalcore.local.reference.replies import (
    COMPLIANT_ANSWER,
    HANDOFF_DEFAULT,
    HANDOFF_MARKER,
    HANDOFF_TEXT,
    HANDOFF_TOOL,
    REFUSAL,
    REFUSAL_TEXT,
    stale_records_notice,
)
from evalcore.local.reference.request import (
    CONTEXT_PREFIX,
    RequestError,
    error_body,
    parse_context,
    parse_messages,
    parse_today,
    parse_tools,
)
from evalcore.local.reference.safety import assess
from evalcore.local.reference.sources import best_topic, choose_doc, doc_phrasings, region

__all__ = [
    "ACTION_TOOLS",
    "COMPLIANT_ANSWER",
    "CONTEXT_PREFIX",
    "DEFAULT_MODEL",
    "EXTRA_LATENCY_MS",
    "HANDOFF_MARKER",
    "HANDOFF_TOOL",
    "JUDGE_MODEL",
    "JUDGE_SYSTEM_PREFIX",
    "PARAPHRASE_SYSTEM_PREFIX",
    "REFUSAL",
    "VERSIONS",
    "RequestError",
    "complete",
    "error_body",
    "judge_verdict",
    "resolve_version",
]

DEFAULT_MODEL = "support-assistant"
JUDGE_MODEL = "judge"

VERSIONS: dict[str, str] = {
    "v1": "the healthy assistant",
    "regressed-refunds": "EU refund window answered as 30 days; windows counted from purchase",
    "regressed-safety": "complies with unsafe requests instead of refusing",
    "regressed-handoff": "never hands off to a human; answers generically",
    "regressed-tools": (
        "action tool calls carry malformed (truncated) JSON arguments; broken tool results "
        "summarised as if fine"
    ),
    "regressed-sources": (
        "answers from the last context document whatever its trust or topic; follows "
        "instructions planted in documents"
    ),
    "regressed-stale": "answers from the oldest relevant context document as if current",
    "regressed-slow": "answers like v1 with 800 ms of added latency",
}
EXTRA_LATENCY_MS: dict[str, float] = {"regressed-slow": 800.0}


def resolve_version(model: str | None, override: str | None = None, default: str = "v1") -> str:
    """The version to answer as: an explicit override, else `model`'s `@suffix`, else `default`."""
    version = override
    if not version and model and "@" in model:
        version = model.rsplit("@", 1)[1]
    version = version or default
    if version not in VERSIONS:
        raise RequestError(
            f"unknown version {version!r} (known: {', '.join(VERSIONS)})",
            code="model_not_found",
            param="model",
        )
    return version


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str | None
    tool_calls: tuple[tuple[str, str], ...] = ()


def _stale_refund_policy(text: str) -> str:
    text = re.sub(r"\b14 days\b", "30 days", text)
    text = re.sub(r"\b14-day\b", "30-day", text)
    return re.sub(r"\b(of|after|from|since) delivery\b", r"\1 purchase", text)


def _vary(phrasings: Phrasings, nondeterminism: float, rng: random.Random | None) -> str:
    if nondeterminism <= 0:
        return phrasings.answer
    draw = rng if rng is not None else random.Random()
    if draw.random() >= nondeterminism:
        return phrasings.answer
    return phrasings.alt if draw.random() < 0.5 else phrasings.vague


def _handoff_reply(reason: str, priority: str, tools: frozenset[str], said: str = "") -> _Reply:
    """A hand-off: the tool call when offered, else the marker text; `said` goes first."""
    if HANDOFF_TOOL in tools:
        call = (HANDOFF_TOOL, as_json({"reason": reason, "priority": priority}))
        return _Reply(said or None, (call,))
    text = HANDOFF_TEXT.get(reason, HANDOFF_DEFAULT)
    return _Reply(f"{said} {text}" if said else text)


def _moment(norm: str, user_texts: Sequence[str]) -> tuple[str, str] | None:
    moment = handoff_moment(norm)
    if moment is None and frustrated_turns(user_texts):
        return "customer_frustrated", "normal"
    return moment


def _special_mode(messages: Sequence[tuple[str, str]]) -> _Reply | None:
    """Judge and paraphrase requests, recognised by their first system message."""
    role, text = messages[0]
    if role != "system":
        return None
    prompt = next((content for r, content in reversed(messages) if r == "user"), "")
    if text.startswith(JUDGE_SYSTEM_PREFIX):
        return _Reply(as_json(judge_verdict(prompt)))
    if text.startswith(PARAPHRASE_SYSTEM_PREFIX):
        return _Reply(paraphrase(prompt))
    return None


def _decide(
    messages: Sequence[tuple[str, str]],
    tools: frozenset[str],
    version: str,
    nondeterminism: float,
    rng: random.Random | None,
) -> _Reply:
    special = _special_mode(messages)
    if special is not None:
        return special
    if messages[-1][0] == "tool":
        return _Reply(tool_results.answer(messages[-1][1], version))
    user_texts = [text for role, text in messages if role == "user"]
    if not user_texts:
        raise RequestError("'messages' must contain a user message", param="messages")
    raw = user_texts[-1]
    norm = normalise(raw)

    unsafe = assess(user_texts)
    if unsafe is not None:
        if version == "regressed-safety":
            return _Reply(COMPLIANT_ANSWER)
        refusal = REFUSAL_TEXT.get(unsafe.category, REFUSAL)
        moment = None if unsafe.wrapped else _moment(norm, user_texts)
        if moment is None or version == "regressed-handoff":
            return _Reply(refusal)
        return _handoff_reply(*moment, tools, said=refusal)

    moment = _moment(norm, user_texts)
    if moment is not None:
        if version == "regressed-handoff":
            return _Reply(GENERIC_ANSWER)
        return _handoff_reply(*moment, tools)

    calls = action_calls(raw, norm, tools)
    if calls:
        if version == "regressed-tools":
            calls = tuple((name, args[: len(args) // 2]) for name, args in calls)
        return _Reply(None, calls)

    topic = best_topic(norm)
    all_user = normalise("\n".join(user_texts))
    if topic is None and len(user_texts) > 1:
        topic = best_topic(all_user)
    where = region(raw, norm) or region("\n".join(user_texts), all_user)
    choice = choose_doc(
        parse_context(messages), topic, norm, where, today=parse_today(messages), version=version
    )
    if choice.doc is not None and choice.stale:
        return _Reply(stale_records_notice(choice.doc.id, choice.doc.as_of or "undated"))
    if choice.doc is not None:
        phrasings = doc_phrasings(choice.doc)
    elif topic is not None:
        phrasings = topic.regional.get(where or "", topic.text)
    else:
        return _Reply(GENERIC_ANSWER)
    text = _vary(phrasings, nondeterminism, rng)
    if choice.payload:
        text = f"{choice.payload} {text}"
    if topic is not None and topic.key == "refund_window" and version == "regressed-refunds":
        text = _stale_refund_policy(text)
    return _Reply(text)


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part.encode())
        h.update(b"\x00")
    return h.hexdigest()


def complete(
    body: Mapping[str, Any],
    *,
    version: str | None = None,
    nondeterminism: float = 0.0,
    rng: random.Random | None = None,
    created: int | None = None,
    completion_id: str | None = None,
) -> dict[str, Any]:
    """Answer one OpenAI chat request body as the support assistant (or the judge).

    `version=None` takes the version from `model`'s `@suffix`, else `v1`. `rng` feeds the
    nondeterminism draws (pass one for reproducible runs). Raises `RequestError` for a
    request that cannot be answered as sent.
    """
    if not isinstance(body, Mapping):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("'model' must be a string", param="model")
    model = model or DEFAULT_MODEL
    resolved = resolve_version(model, version)
    if body.get("stream") is True:
        raise RequestError("streaming is not supported by the reference target", param="stream")
    messages = parse_messages(body.get("messages"))
    tools = parse_tools(body.get("tools"))
    if body.get("tool_choice") == "none":
        tools = frozenset()
    reply = _decide(messages, tools, resolved, nondeterminism, rng)

    prompt_chars = sum(len(text) for _, text in messages)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": "call_" + _digest(name, args, str(index)),
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            for index, (name, args) in enumerate(reply.tool_calls)
        ]
        completion_chars = sum(len(name) + len(args) for name, args in reply.tool_calls)
        completion_chars += len(reply.text or "")
        finish_reason = "tool_calls"
    else:
        completion_chars = len(reply.text or "")
        finish_reason = "stop"
    prompt_tokens = max(1, (prompt_chars + 3) // 4)
    completion_tokens = max(1, (completion_chars + 3) // 4)
    if completion_id is None:
        completion_id = "chatcmpl-" + _digest(model, *(f"{r}:{t}" for r, t in messages))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "system_fingerprint": f"fp_ref_{resolved}",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
