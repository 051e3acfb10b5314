"""Problems found in a suite's files, each pinned to file, line and field.

A suite that gates releases must fail loudly and completely: the loader collects every
problem it can find, then raises one `SuiteError`, so a pull request is fixed in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SHOWN_IN_MESSAGE = 5


@dataclass(frozen=True)
class SuiteIssue:
    """One problem: where it is (file, 1-based line, dotted field) and what is wrong."""

    file: Path
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = str(self.file) if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"

    def sort_key(self) -> tuple[str, int, str, str]:
        """Order issues the way an editor walks a file: by path, then line."""
        return (str(self.file), self.line or 0, self.field or "", self.message)


class SuiteError(Exception):
    """The suite did not load; `issues` holds every problem found, not just the first."""

    def __init__(self, issues: Iterable[SuiteIssue]) -> None:
        self.issues: list[SuiteIssue] = list(issues)
        super().__init__(_summary(self.issues))

    def __str__(self) -> str:
        return _summary(self.issues)

    def __reduce__(self) -> tuple[type[SuiteError], tuple[list[SuiteIssue]]]:
        # Survives pickling (Prefect hands task exceptions across processes) with its issues.
        return (type(self), (self.issues,))


def _summary(issues: list[SuiteIssue]) -> str:
    count = len(issues)
    noun = "problem" if count == 1 else "problems"
    lines = [f"{count} {noun} in the suite:"]
    lines.extend(f"  {issue}" for issue in issues[:_SHOWN_IN_MESSAGE])
    if count > _SHOWN_IN_MESSAGE:
        lines.append(f"  ... and {count - _SHOWN_IN_MESSAGE} more")
    return "\n".join(lines)
