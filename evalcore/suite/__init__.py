"""The versioned dataset a team keeps in git: cases, scorecard, owners."""

from evalcore.suite.errors import SuiteError, SuiteIssue
from evalcore.suite.loader import Suite, load_suite
from evalcore.suite.models import Case, EvalSet, Outcome, Severity
from evalcore.suite.owners import Owners
from evalcore.suite.scorecard import Scorecard
from evalcore.suite.version import (
    DatasetVersion,
    case_hash,
    dataset_version,
    scorecard_version,
)

__all__ = [
    "Case",
    "DatasetVersion",
    "EvalSet",
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
