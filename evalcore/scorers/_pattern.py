"""The `regex` expectation: every pattern is found somewhere in the reply text.

Patterns run with `re.search` semantics exactly as written, against the raw reply text: no
flags are added and nothing is normalised, so write `(?i)` for case-insensitivity and `\\s+`
where the model may break a line. A pattern need not match the whole reply; anchor it with
`^` and `$` (plus `(?m)` for per-line anchors) when it should.

Every search is bounded. `re` cannot be stopped once it starts, and a pattern such as
`(a|a)+$` backtracks for longer than any run lasts on a reply that almost matches; so
patterns are checked by `re` (what it rejects stays rejected) but run on the `regex`
package in its `re`-compatible mode, which gives up after `SEARCH_TIME_LIMIT_S`. The case
is then a `ScoringError` naming the pattern, not a failure, and the run goes on.

Where `regex` reads a pattern that `re` accepts differently (all rare in practice):

- a `[[:alpha:]]`-style POSIX class inside a set is a class to `regex` and a plain set
  of characters to `re` (which warns about it as a possible nested set);
- `{e<=1}`-style fuzzy constraints are literal text to `re`;
- `\\s` follows Unicode White_Space, so the separators `\\x1c`-`\\x1f` are not spaces,
  and `\\w` counts the zero-width joiners (U+200C, U+200D) as word characters.

Backtracking also costs less on `regex`: `(a+)+$` finishes at once where `re` never would.
"""

from __future__ import annotations

import re

import regex as bounded_re

from evalcore.scorers._text import preview
from evalcore.scorers.base import Score, ScoreContext, ScoringError, scorer
from evalcore.suite.models import Case
from evalcore.targets.base import Reply

# Thousands of times what a sane pattern takes on a long reply, yet short enough that a
# case with many samples does not hold up the run (scoring shares the event loop).
SEARCH_TIME_LIMIT_S = 0.5

_CACHE_LIMIT = 4_096
_compiled: dict[str, bounded_re.Pattern[str]] = {}


def bounded(pattern: str, flags: int = 0) -> bounded_re.Pattern[str]:
    """`pattern` ready for `search`: refused where `re` refuses it, read as `re` reads it.

    `flags` are `re`'s (`re.IGNORECASE`...): the `regex` package uses the same values.
    """
    re.compile(pattern, flags)
    return bounded_re.compile(pattern, flags | bounded_re.VERSION0)


def compiled(pattern: str) -> bounded_re.Pattern[str]:
    """`bounded(pattern)`, once per distinct pattern string."""
    found = _compiled.get(pattern)
    if found is None:
        if len(_compiled) >= _CACHE_LIMIT:
            _compiled.clear()
        found = _compiled[pattern] = bounded(pattern)
    return found


def search(
    pattern: bounded_re.Pattern[str], text: str, what: str = "regex"
) -> bounded_re.Match[str] | None:
    """`pattern.search(text)`, or a `ScoringError` naming the pattern once it runs too long.

    `what` says where the pattern comes from, for the message.
    """
    try:
        return pattern.search(text, timeout=SEARCH_TIME_LIMIT_S)
    except TimeoutError:
        raise ScoringError(
            f"{what} /{pattern.pattern}/ gave up after {SEARCH_TIME_LIMIT_S:g} s on a reply "
            f"of {len(text)} characters: it backtracks too much, so no verdict; rewrite it "
            "(a possessive quantifier such as `a++`, or fewer ways to match the same text)"
        ) from None


@scorer("regex")
def regex(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """Each pattern matches somewhere in the reply; the reason names those that do not."""
    patterns = case.expect.regex
    text = reply.text
    failed = [p for p in patterns if search(compiled(p), text) is None]
    total = len(patterns)
    if not failed:
        reason = f"matches /{patterns[0]}/" if total == 1 else f"matches all {total} patterns"
        return Score("regex", 1.0, True, reason)
    listed = ", ".join(f"/{p}/" for p in failed)
    head = "no match for" if total == 1 else f"{len(failed)} of {total} patterns do not match:"
    return Score(
        "regex", 1.0 - len(failed) / total, False, f"{head} {listed}; reply: {preview(text)}"
    )
