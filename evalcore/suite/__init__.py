"""The versioned dataset a team keeps in git: cases, scorecard, owners.

The names below are imported on first use: a command that only needs `EvalSet` (from
`evalcore.suite.sets`) does not load the case models, the YAML reader or jsonschema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalcore.suite.errors import SuiteError, SuiteIssue
    from evalcore.suite.loader import KnownDataset, Suite, load_suite
    from evalcore.suite.models import Case, Outcome, Severity
    from evalcore.suite.owners import Owners
    from evalcore.suite.scorecard import Scorecard
    from evalcore.suite.sets import EvalSet
    from evalcore.suite.version import (
        DatasetVersion,
        case_hash,
        dataset_version,
        scorecard_version,
    )

_HOME = {
    "SuiteError": "errors",
    "SuiteIssue": "errors",
    "KnownDataset": "loader",
    "Suite": "loader",
    "load_suite": "loader",
    "Case": "models",
    "Outcome": "models",
    "Severity": "models",
    "Owners": "owners",
    "Scorecard": "scorecard",
    "EvalSet": "sets",
    "DatasetVersion": "version",
    "case_hash": "version",
    "dataset_version": "version",
    "scorecard_version": "version",
}

__all__ = [
    "Case",
    "DatasetVersion",
    "EvalSet",
    "KnownDataset",
    "Outcome",
    "Owners",
    "Scorecard",
    "Severity",
    "Suite",
    "SuiteError",
    "SuiteIssue",
    "case_hash",
    "dataset_version",
    "load_suite",
    "scorecard_version",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
