"""Plain-text expectations: `exact`, `contains` and `not_contains`.

`exact` is strict on purpose: only surrounding whitespace and Windows line endings are
forgiven, so a change of case or an inner double space fails it. `contains` and
`not_contains` are lenient (see `_text.normalize`) and match substrings, so "14 days" is
found in "114 days"; reach for `regex` with `\\b` when that matters.
"""

from __future__ import annotations

from evalcore.scorers._text import normalize, normalized_phrase, normalized_reply, plural, preview
from evalcore.scorers.base import Score, ScoreContext, scorer
from evalcore.suite.models import Case
from evalcore.targets.base import Reply

_WINDOW = 30

_EXACT_PASS = Score("exact", 1.0, True, "reply equals the expected text")


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def _snippet(text: str, start: int, end: int) -> str:
    head = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    return repr(head + text[start:end] + tail)


def _diff_reason(expected: str, got: str) -> str:
    """Where the reply first departs from the expected text, with a little context."""
    if not got:
        return f"reply is empty; expected {preview(expected)}"
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    start = max(0, at - _WINDOW // 2)
    end = at + _WINDOW
    reason = (
        f"reply differs from the expected text at char {at}: "
        f"expected {_snippet(expected, start, end)}, got {_snippet(got, start, end)}"
    )
    if normalize(expected) == normalize(got):
        reason += " (equal ignoring case and spacing; exact is strict, contains is lenient)"
    return reason


@scorer("exact")
def exact(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """The reply, trimmed, equals the expected text, case and inner spacing included."""
    expected = _clean(case.expect.exact or "")
    got = _clean(reply.text)
    if got == expected:
        return _EXACT_PASS
    return Score("exact", 0.0, False, _diff_reason(expected, got))


@scorer("contains")
def contains(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """Every phrase appears in the reply, after normalisation; the reason lists those missing."""
    phrases = case.expect.contains
    text = normalized_reply(reply.text)
    missing = [p for p in phrases if normalized_phrase(p) not in text]
    total = len(phrases)
    if not missing:
        reason = f"contains {phrases[0]!r}" if total == 1 else f"contains all {total} phrases"
        return Score("contains", 1.0, True, reason)
    listed = ", ".join(repr(p) for p in missing)
    reason = (
        f"missing {listed}; reply: {preview(reply.text)}"
        if total == 1
        else f"missing {len(missing)} of {total} phrases: {listed}; reply: {preview(reply.text)}"
    )
    return Score("contains", 1.0 - len(missing) / total, False, reason)


@scorer("not_contains")
def not_contains(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """No phrase appears in the reply, after normalisation; the reason quotes each one found.

    A phrase that normalises to nothing (only spaces) is ignored rather than found everywhere.
    """
    phrases = case.expect.not_contains
    text = normalized_reply(reply.text)
    found: list[str] = []
    for phrase in phrases:
        needle = normalized_phrase(phrase)
        if needle and needle in text:
            found.append(phrase)
    total = len(phrases)
    if not found:
        reason = (
            f"does not contain {phrases[0]!r}"
            if total == 1
            else f"contains none of the {total} phrases"
        )
        return Score("not_contains", 1.0, True, reason)
    parts = []
    for phrase in found:
        needle = normalized_phrase(phrase)
        at = text.find(needle)
        context = _snippet(text, max(0, at - 20), at + len(needle) + 20)
        parts.append(f"{phrase!r} (in {context})")
    reason = f"contains {plural(len(found), 'forbidden phrase')}: " + "; ".join(parts)
    return Score("not_contains", 1.0 - len(found) / total, False, reason)
