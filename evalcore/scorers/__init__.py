"""Scoring a reply against a case's expectation.

Each key of a case's `expect` names one scorer, registered in `SCORERS` under that key:

- `outcome`: what the reply did (answer, refuse, needs_human, tool_call), see `classify`;
- `exact`: the trimmed reply equals the expected text, case-sensitive;
- `contains` / `not_contains`: phrases present / absent after normalisation (case, Unicode
  compatibility forms, typographic quotes and dashes, whitespace runs);
- `regex`: every pattern is found with `re.search` semantics, exactly as written, within a
  time limit (`ScoringError` when a pattern backtracks past it: an error, not a failure);
- `json_schema`: the reply text is JSON valid against the schema;
- `tool_call`: the named tool was called with JSON arguments valid against the schema;
- `judge`: an LLM grades the reply against a rubric (async; raises `JudgeError` when the
  judge itself fails, so the case is recorded as an error and not as a failure).

Every `Score` carries a reason a person can act on. `score_reply` runs a case's scorers,
`passed` combines them. Importing this package registers all scorers.
"""

from evalcore.scorers import _judge, _match, _outcome, _pattern, _schema  # noqa: F401  (registers)
from evalcore.scorers._judge import JUDGE_SYSTEM_PREFIX
from evalcore.scorers._outcome import classify
from evalcore.scorers._score import passed, plan_scorers, score_reply
from evalcore.scorers._text import normalize
from evalcore.scorers.base import (
    SCORERS,
    JudgeError,
    RetryableJudgeError,
    Score,
    ScoreContext,
    ScorerFn,
    ScoringError,
    scorer,
)

__all__ = [
    "JUDGE_SYSTEM_PREFIX",
    "SCORERS",
    "JudgeError",
    "RetryableJudgeError",
    "Score",
    "ScoreContext",
    "ScorerFn",
    "ScoringError",
    "classify",
    "normalize",
    "passed",
    "plan_scorers",
    "score_reply",
    "scorer",
]
