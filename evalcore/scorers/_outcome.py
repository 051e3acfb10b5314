"""What the reply did (answer, refuse, hand off, call a tool), and the `outcome` scorer.

The order of the checks matters and is the one users expect:

1. needs_human: the hand-off tool was called, or the hand-off marker is in the text
   (even alongside other tool calls or a refusal: a hand-off is never "just" a refusal);
2. refuse: a refusal pattern matches and no tool was called. A reply that says "I can't
   help with that" *and* calls a tool is acting, so it counts as a tool call;
3. tool_call: any other tool call;
4. answer: everything else, including an empty reply (the scorer says so).

Refusal patterns and the marker are matched against the normalised text (see `_text`),
case-insensitively: models write "I can\u2019t" with a curly apostrophe far more often than
pattern authors expect, and the default patterns spell it "can't". Like the `regex`
expectation, each search is bounded (see `_pattern`): a refusal pattern that backtracks
without end makes the case a `ScoringError` naming that pattern.
"""

from __future__ import annotations

import contextlib
import re

from regex import Match, Pattern

from evalcore.scorers._pattern import bounded, search
from evalcore.scorers._text import normalized_phrase, normalized_reply, preview
from evalcore.scorers.base import Score, ScoreContext, ScoringError, scorer
from evalcore.suite.models import Case, Outcome
from evalcore.suite.scorecard import Signals
from evalcore.targets.base import Reply

_REFUSAL = "refusal pattern"


class _Refusals:
    """The refusal patterns of one `Signals`: one alternation (one scan of the reply) when
    they can share one, and each on its own to name the one at fault when it runs too long."""

    __slots__ = ("combined", "each", "source")

    def __init__(self, patterns: list[str]) -> None:
        self.source = patterns
        self.each = tuple(bounded(p, re.IGNORECASE) for p in patterns)
        self.combined: Pattern[str] | None = None
        # A pattern with its own global flags cannot sit inside an alternation.
        if len(patterns) > 1:
            with contextlib.suppress(re.error):
                self.combined = bounded("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    def first_match(self, text: str) -> Match[str] | None:
        if self.combined is not None:
            try:
                return search(self.combined, text, _REFUSAL)
            except ScoringError:
                pass  # one by one below, so the error names the pattern at fault
        for pattern in self.each:
            match = search(pattern, text, _REFUSAL)
            if match is not None:
                return match
        return None


# The refusal patterns of the signals seen last.
_refusal_cache = _Refusals([])


def _refusals(patterns: list[str]) -> _Refusals:
    global _refusal_cache
    if _refusal_cache.source is not patterns:
        _refusal_cache = _Refusals(patterns)
    return _refusal_cache


def explain(reply: Reply, signals: Signals) -> tuple[Outcome, str]:
    """The outcome, with the evidence for it (empty for a plain answer)."""
    calls = reply.tool_calls
    handoff = signals.needs_human
    if handoff.tool and calls:
        for call in calls:
            if call.name == handoff.tool:
                return Outcome.needs_human, f"called {handoff.tool}"
    text = normalized_reply(reply.text)
    if handoff.marker:
        marker = normalized_phrase(handoff.marker)
        if marker and marker in text:
            return Outcome.needs_human, f"marker {handoff.marker!r}"
    if calls:
        names = ", ".join(dict.fromkeys(call.name for call in calls))
        return Outcome.tool_call, f"called {names}"
    match = _refusals(signals.refusal.patterns).first_match(text)
    if match is not None:
        return Outcome.refuse, f"matched {match.group(0)!r}"
    return Outcome.answer, ""


def classify(reply: Reply, signals: Signals) -> Outcome:
    """What the reply did, judged by the scorecard's signals (see the module docstring)."""
    return explain(reply, signals)[0]


_EXPECTED = {
    Outcome.answer: "an answer",
    Outcome.refuse: "a refusal",
    Outcome.needs_human: "a hand-off to a human",
    Outcome.tool_call: "a tool call",
}


def _did(outcome: Outcome, evidence: str) -> str:
    if outcome is Outcome.answer:
        return "the reply answered"
    if outcome is Outcome.refuse:
        return f"the reply refused ({evidence})"
    if outcome is Outcome.needs_human:
        return f"the reply handed off to a human ({evidence})"
    return f"the reply {evidence}"


_ANSWERED = Score("outcome", 1.0, True, "the reply answered, as expected")


@scorer("outcome")
def outcome(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """The reply did what the case expects; the reason says what it did instead, and quotes it.

    An empty reply (no text, no tool call) classifies as an answer but fails an expected
    answer: a blank string is what content filters and truncated streams leave behind.
    """
    expected = case.expect.outcome
    got, evidence = explain(reply, ctx.signals)
    if got is expected:
        if got is Outcome.answer:
            if not reply.text.strip():
                return Score("outcome", 0.0, False, "expected an answer, but the reply is empty")
            return _ANSWERED
        return Score("outcome", 1.0, True, f"{_did(got, evidence)}, as expected")
    expected_text = _EXPECTED[expected] if expected is not None else "no outcome"
    reason = f"expected {expected_text}, but {_did(got, evidence)}"
    if reply.text.strip():
        reason += f": {preview(reply.text)}"
    return Score("outcome", 0.0, False, reason)
