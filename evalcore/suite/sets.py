"""The three sets a case can belong to, in a module of its own: command-line options name
them, and `evalcore --help` must not pay for importing the case models to list them."""

from __future__ import annotations

from enum import StrEnum


class EvalSet(StrEnum):
    """Which role a case plays: gate releases, watch for drift, or wait for judgement."""

    blocking = "blocking"
    monitoring = "monitoring"
    backlog = "backlog"
