"""Which traces are failures: the export marks them, or the user names them.

A trace is taken in when one of its evaluations fails: in OTLP a `gen_ai.evaluation.result`
span event (`gen_ai.evaluation.name`, `.score.value`, `.score.label`, `.explanation`) or a
user-feedback span attribute (`user.feedback` unless told otherwise: a number is a score,
text a label, true/false a thumbs up/down); in Langfuse a score (`value`, `stringValue`,
`comment`). An evaluation fails when its score is at or under `below` (default 0: a
thumbs-down recorded as 0 of 0/1, or -1 of OpenTelemetry's -1..1 user-feedback range; a
neutral 0 counts too, so pass e.g. `--below -0.5` for that scale) or its label is one of
`FAILING_LABELS` (compared case-insensitively, `-` and spaces read as `_`).

Given trace ids, exactly those traces are taken in, marked or not: the user chose them.

`what_was_wrong` comes from the failing evaluation's explanation (or Langfuse comment),
else from its label, else from its score; a trace named by id with no failing evaluation
says so. The item's provenance records which (`what_was_wrong_from`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_BELOW = 0.0
DEFAULT_FEEDBACK_ATTRIBUTE = "user.feedback"
FAILING_LABELS = frozenset(
    {
        "fail",
        "failed",
        "failure",
        "bad",
        "incorrect",
        "wrong",
        "thumbs_down",
        "thumbsdown",
        "negative",
        "not_relevant",
        "unhelpful",
    }
)


def label_key(label: str) -> str:
    """A label as compared: case-folded, `-` and spaces as `_`."""
    return "_".join(label.strip().casefold().replace("-", " ").split())


def trace_id_key(trace_id: str) -> str:
    return trace_id.strip().lower()


@dataclass(frozen=True)
class Selection:
    """What marks a trace as failed, or the traces the user named."""

    below: float = DEFAULT_BELOW
    trace_ids: tuple[str, ...] = ()
    feedback_attribute: str = DEFAULT_FEEDBACK_ATTRIBUTE
    labels: frozenset[str] = FAILING_LABELS

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(trace_id_key(t) for t in self.trace_ids)

    def describe(self, naming: str = "--trace-id") -> str:
        """The rule in words, for "no trace is marked failed (...)"; `naming` is how the
        user names traces where they are (an option, a query parameter)."""
        return (
            f"score <= {_number(self.below)}, labels {', '.join(sorted(self.labels))}, or {naming}"
        )


@dataclass(frozen=True)
class Evaluation:
    """One judgement of a trace's output, wherever the export recorded it."""

    kind: str  # "evaluation" (OTLP event), "feedback" (span attribute) or "score" (Langfuse)
    name: str | None
    score: float | None
    label: str | None
    explanation: str | None
    at: str | None = None  # the span or observation it was recorded on, if any
    response_id: str | None = None  # the completion it judges, when it names one

    def fails(self, selection: Selection) -> bool:
        if self.score is not None and self.score <= selection.below:
            return True
        return self.label is not None and label_key(self.label) in selection.labels

    def as_json(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "name": self.name,
            "score": self.score,
            "label": self.label,
            "explanation": self.explanation,
        }
        return {key: value for key, value in data.items() if value is not None}


def score_of(value: object) -> float | None:
    """A finite number (a boolean as 1/0, numeric text parsed), else None."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def first_failing(evaluations: Iterable[Evaluation], selection: Selection) -> Evaluation | None:
    return next((e for e in evaluations if e.fails(selection)), None)


def selected(
    evaluations: Sequence[Evaluation], selection: Selection, trace_key: str
) -> tuple[bool, Evaluation | None]:
    """Whether a trace is taken in, and the evaluation that says why. With `--trace-id`
    only the named traces are, with their failing evaluation (else their first, else
    none); otherwise every trace with a failing evaluation."""
    failing = first_failing(evaluations, selection)
    if selection.wanted:
        if trace_key not in selection.wanted:
            return False, None
        return True, failing or (evaluations[0] if evaluations else None)
    return failing is not None, failing


def what_was_wrong(evaluation: Evaluation | None, selection: Selection) -> tuple[str, str]:
    """(text, where it came from: explanation, label, score or trace_id)."""
    if evaluation is not None and evaluation.fails(selection):
        if evaluation.explanation and evaluation.explanation.strip():
            return evaluation.explanation.strip(), "explanation"
        what = _describe(evaluation)
        if evaluation.label is not None and label_key(evaluation.label) in selection.labels:
            return f"{what} labelled {evaluation.label!r}", "label"
        assert evaluation.score is not None
        return (
            f"{what} scored {_number(evaluation.score)} "
            f"(at or under {_number(selection.below)}, a failure)",
            "score",
        )
    text = "taken in by trace id; the trace records no failing evaluation"
    if evaluation is not None:
        text += f" ({_describe(evaluation)}: {_verdict(evaluation)})"
    return text, "trace_id"


def _describe(evaluation: Evaluation) -> str:
    noun = {"evaluation": "evaluation", "feedback": "user feedback", "score": "score"}
    what = noun.get(evaluation.kind, evaluation.kind)
    return f"{what} {evaluation.name!r}" if evaluation.name else what


def _verdict(evaluation: Evaluation) -> str:
    parts = []
    if evaluation.score is not None:
        parts.append(f"score {_number(evaluation.score)}")
    if evaluation.label is not None:
        parts.append(f"label {evaluation.label!r}")
    return ", ".join(parts) or "no score"


def _number(value: float) -> str:
    number = float(value)  # an int is a float to the type checker, not to is_integer
    return str(int(number)) if number.is_integer() else f"{number:g}"
