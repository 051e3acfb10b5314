"""Production failures from trace exports: OTLP/JSON (OpenTelemetry GenAI conventions) and
Langfuse, read into the intake's payload.

An export holds many traces; the ones taken in are those the export marks failed (an
evaluation or user feedback at or under a score, or with a failing label) or those the
user names by trace id (see `selection`). Every selected trace is converted and validated
before anything is stored, so a bad export is refused whole, naming where (e.g.
`resourceSpans[0].scopeSpans[1].spans[4].traceId: missing`).

An export may be much larger than one JSON payload: up to 64 MiB is read (the 256 KiB
limit of a single failure still holds over HTTP).
"""

from __future__ import annotations

from typing import Literal

from evalcore.collector import collector_paused
from evalcore.triage.intake import IntakeError
from evalcore.triage.traces.failures import TraceBatch, TraceFailure
from evalcore.triage.traces.selection import DEFAULT_BELOW, FAILING_LABELS, Selection

TraceFormat = Literal["otlp", "langfuse"]
TRACE_FORMATS: tuple[TraceFormat, ...] = ("otlp", "langfuse")
MAX_EXPORT_BYTES = 64 * 1024 * 1024
MAX_EXPORT_LABEL = "64 MiB"

__all__ = [
    "DEFAULT_BELOW",
    "FAILING_LABELS",
    "MAX_EXPORT_BYTES",
    "TRACE_FORMATS",
    "Selection",
    "TraceBatch",
    "TraceFailure",
    "TraceFormat",
    "export_too_large",
    "read_trace_failures",
]


def export_too_large(size: int, *, over: bool = False) -> IntakeError:
    """`over`: the size is where reading stopped, not the whole export's."""
    return IntakeError(
        "too_large",
        f"trace export too large: {'over ' if over else ''}{size} bytes (limit {MAX_EXPORT_LABEL})",
    )


def read_trace_failures(
    trace_format: TraceFormat,
    data: bytes,
    selection: Selection,
    *,
    reporter: str | None = None,
    route: str | None = None,
) -> TraceBatch:
    """The export's selected traces as validated failures, or `IntakeError`."""
    if len(data) > MAX_EXPORT_BYTES:
        raise export_too_large(len(data))
    with collector_paused():
        if trace_format == "otlp":
            from evalcore.triage.traces.otlp import read_otlp

            return read_otlp(data, selection, reporter=reporter, route=route)
        from evalcore.triage.traces.langfuse import read_langfuse

        return read_langfuse(data, selection, reporter=reporter, route=route)
