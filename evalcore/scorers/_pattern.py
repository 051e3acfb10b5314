"""The `regex` expectation: every pattern is found somewhere in the reply text.

Patterns run with `re.search` exactly as written, against the raw reply text: no flags are
added and nothing is normalised, so write `(?i)` for case-insensitivity and `\\s+` where
the model may break a line. A pattern need not match the whole reply; anchor it with `^`
and `$` (plus `(?m)` for per-line anchors) when it should.
"""

from __future__ import annotations

import re

from evalcore.scorers._text import preview
from evalcore.scorers.base import Score, ScoreContext, scorer
from evalcore.suite.models import Case
from evalcore.targets.base import Reply

_CACHE_LIMIT = 4_096
_compiled: dict[str, re.Pattern[str]] = {}


def compiled(pattern: str) -> re.Pattern[str]:
    """`re.compile(pattern)`, once per distinct pattern string."""
    found = _compiled.get(pattern)
    if found is None:
        if len(_compiled) >= _CACHE_LIMIT:
            _compiled.clear()
        found = _compiled[pattern] = re.compile(pattern)
    return found


@scorer("regex")
def regex(case: Case, reply: Reply, ctx: ScoreContext) -> Score:
    """Each pattern matches somewhere in the reply; the reason names those that do not."""
    patterns = case.expect.regex
    text = reply.text
    failed = [p for p in patterns if compiled(p).search(text) is None]
    total = len(patterns)
    if not failed:
        reason = f"matches /{patterns[0]}/" if total == 1 else f"matches all {total} patterns"
        return Score("regex", 1.0, True, reason)
    listed = ", ".join(f"/{p}/" for p in failed)
    head = "no match for" if total == 1 else f"{len(failed)} of {total} patterns do not match:"
    return Score(
        "regex", 1.0 - len(failed) / total, False, f"{head} {listed}; reply: {preview(text)}"
    )
