"""A spreadsheet export (CSV) as drafts: `evalcore import csv FILE`.

The first row names the columns; each is matched by name, whatever its case, with spaces
and dashes read as underscores (`Expected answer` is `expected_answer`). A column that
names no field can be given one with `--map COLUMN=FIELD`; one left without a field is
listed once. Each later row is one case:

- `question` (or `input`, `prompt`) is the user message, after `system` when given;
- `expected` (or `answer`, `ideal`, `reference`) is the reference answer, checked the way
  `--match` says; `outcome` is what the route should do (answer, refuse, needs_human);
  a row needs one of the two;
- `tags` (split on `,` `;` `|` or spaces), `set`, `severity`, `ticket`, `id` and `notes`
  (or `description`, `comment`) go to the case's fields of those names.

Excel's exports (a byte-order mark, `;` between cells, CRLF line ends) read the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalcore.importers.conversion import (
    Conversion,
    ConvertOptions,
    Draft,
    ImportRefused,
    NotConverted,
    Origin,
    reference_expect,
    stable_key,
)
from evalcore.importers.sources import csv_rows, read_text
from evalcore.suite.models import Severity
from evalcore.suite.sets import EvalSet

FORMAT = "csv"
CSV_FIELDS = (
    "question",
    "system",
    "expected",
    "outcome",
    "tags",
    "set",
    "severity",
    "ticket",
    "id",
    "notes",
)
# Column names read as a field without --map, compared `_loosely`.
_NAMES = {
    "question": "question",
    "input": "question",
    "prompt": "question",
    "system": "system",
    "system_prompt": "system",
    "expected": "expected",
    "expected_answer": "expected",
    "answer": "expected",
    "ideal": "expected",
    "reference": "expected",
    "reference_answer": "expected",
    "outcome": "outcome",
    "tags": "tags",
    "tag": "tags",
    "set": "set",
    "severity": "severity",
    "ticket": "ticket",
    "id": "id",
    "case_id": "id",
    "notes": "notes",
    "description": "notes",
    "comment": "notes",
    "comments": "notes",
}
# A spreadsheet row has no tool to call, so `tool_call` cannot be expressed.
OUTCOMES = ("answer", "refuse", "needs_human")
_SEVERITIES = tuple(severity.value for severity in Severity)
_SETS = tuple(eval_set.value for eval_set in EvalSet)
_TAG_SEPARATORS = re.compile(r"[,;|\s]+")
_NAME_SEPARATORS = re.compile(r"[\s\-]+")
_SHOWN_CELL = 40


def _loosely(name: str) -> str:
    """A column name or a value as compared: lower case, spaces and dashes as `_`."""
    return _NAME_SEPARATORS.sub("_", name.strip().lower())


@dataclass(frozen=True)
class _Columns:
    """Which column (by index) gives each field, and what the header row holds."""

    header: list[str]
    fields: dict[str, int]

    def name(self, field: str) -> str:
        return self.header[self.fields[field]]


def convert_csv(path: Path, options: ConvertOptions) -> Conversion:
    """Every row with a question and an expectation as a draft; the rest listed."""
    shown = str(path)
    header, rows = csv_rows(read_text(path, shown), shown)
    conversion = Conversion(FORMAT)
    columns = _columns(header, options.mapping, shown, conversion)
    unnamed = [index for index, name in enumerate(header) if not name]
    stray_cells_listed = False
    for line, row in rows:
        origin = Origin(shown, line)
        if not stray_cells_listed and _stray_cells(row, len(header), unnamed):
            stray_cells_listed = True
            conversion.not_converted.append(
                NotConverted(
                    origin,
                    "cells without a column name",
                    f"the header row names {len(header) - len(unnamed)} columns; cells "
                    "under no name are left out",
                )
            )
        draft, problems = _draft(origin, row, columns, options)
        if draft is None:
            conversion.not_converted.append(NotConverted(origin, "row", "; ".join(problems), True))
        else:
            conversion.drafts.append(draft)
    return conversion


def _columns(
    header: list[str], mapping: dict[str, str], shown: str, conversion: Conversion
) -> _Columns:
    """The field of each column: `--map` first, then the names read without it. Columns
    with no field are listed; a header that names nothing is refused."""
    names = [_loosely(name) for name in header]
    fields: dict[str, int] = {}
    for column, field in mapping.items():
        wanted = _loosely(field)
        if wanted not in CSV_FIELDS:
            raise ImportRefused(
                f"{shown}: unknown --map field '{field}' for column '{column}' "
                f"(known: {', '.join(CSV_FIELDS)})"
            )
        if _loosely(column) not in names:
            raise ImportRefused(
                f"{shown}:1: --map names column '{column}', which the header row does not "
                f"have (columns: {', '.join(header)})"
            )
        if wanted in fields:
            raise ImportRefused(
                f"{shown}: --map gives field '{wanted}' two columns "
                f"('{header[fields[wanted]]}' and '{column}'); map only one of them"
            )
        fields[wanted] = names.index(_loosely(column))
    mapped = set(fields.values())
    unused: list[tuple[int, str]] = []
    for index, name in enumerate(names):
        known = _NAMES.get(name)
        if index in mapped or not name:
            continue
        if known is not None and known not in fields:
            fields[known] = index
        elif known is not None:
            unused.append(
                (
                    index,
                    f"column '{header[index]}' is not read: the {known} comes from column "
                    f"'{header[fields[known]]}'; --map {header[index]}=FIELD to use it otherwise",
                )
            )
        else:
            unused.append(
                (
                    index,
                    f"column '{header[index]}' has no case field; "
                    f"--map {header[index]}=FIELD to use it",
                )
            )
    if not fields:
        got = ", ".join(repr(_shortened(cell)) for cell in header[:4])
        raise ImportRefused(
            f"{shown}:1: no header row: the first line must name the columns (question, "
            f"expected, ...); got {got}"
        )
    columns = _Columns(header, fields)
    if "question" not in fields:
        raise ImportRefused(
            f"{shown}:1: no column gives the question (question, input or prompt; columns: "
            f"{', '.join(header)}); name one with --map COLUMN=question"
        )
    if "expected" not in fields and "outcome" not in fields:
        raise ImportRefused(
            f"{shown}:1: no column gives the expected answer or the outcome (expected, answer, "
            f"outcome; columns: {', '.join(header)}); name one with --map COLUMN=expected"
        )
    conversion.not_converted.extend(
        NotConverted(Origin(shown, 1), f"column '{header[index]}'", reason)
        for index, reason in unused
    )
    return columns


def _draft(
    origin: Origin, row: list[str], columns: _Columns, options: ConvertOptions
) -> tuple[Draft | None, list[str]]:
    """The row's draft, or None and every reason it cannot be one."""
    cells = {
        field: _cell(row[index]) if index < len(row) else ""
        for field, index in columns.fields.items()
    }
    question = cells["question"]
    expected = cells.get("expected", "")
    problems: list[str] = []
    if not question:
        problems.append(f"no question (column '{columns.name('question')}' is empty)")
    outcome = _choice(cells, "outcome", columns, OUTCOMES, problems)
    severity = _choice(cells, "severity", columns, _SEVERITIES, problems)
    set_name = _choice(cells, "set", columns, _SETS, problems)
    if not expected and not cells.get("outcome"):
        empty = [f"'{columns.name(f)}'" for f in ("expected", "outcome") if f in columns.fields]
        which = f"column {empty[0]} is" if len(empty) == 1 else f"columns {' and '.join(empty)} are"
        problems.append(f"no expectation: {which} empty")
    if problems:
        return None, problems
    system = cells.get("system", "")
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    expect: dict[str, Any] = {"outcome": outcome} if outcome else {}
    if expected:
        expect.update(reference_expect([expected], options.match))
    tags = [tag for tag in _TAG_SEPARATORS.split(cells.get("tags", "")) if tag]
    draft = Draft(
        origin=origin,
        key=stable_key(FORMAT, question, system, expected, outcome),
        messages=messages,
        expect=expect,
        own_id=cells.get("id") or None,
        tags=list(dict.fromkeys(tags)),
        set=set_name,
        severity=severity,
        ticket=cells.get("ticket") or None,
        notes=cells.get("notes") or None,
    )
    return draft, []


def _choice(
    cells: dict[str, str],
    field: str,
    columns: _Columns,
    allowed: tuple[str, ...],
    problems: list[str],
) -> str | None:
    """The cell's value as one of `allowed` (case, spaces and dashes forgiven), None when
    empty; a value outside them is noted in `problems`."""
    given = cells.get(field, "")
    if not given:
        return None
    value = _loosely(given)
    if value in allowed:
        return value
    if field == "outcome" and value == "tool_call":
        problems.append(
            "outcome tool_call needs the tool the route should call, which a row cannot name"
        )
    else:
        problems.append(
            f"{field} {given!r} (column '{columns.name(field)}') is not one of "
            + ", ".join(allowed)
        )
    return None


def _shortened(cell: str) -> str:
    return cell if len(cell) <= _SHOWN_CELL else cell[: _SHOWN_CELL - 3] + "..."


def _stray_cells(row: list[str], named: int, unnamed: list[int]) -> bool:
    """Whether the row has text past the header's columns or under a column with no name."""
    return any(cell.strip() for cell in row[named:]) or any(
        row[index].strip() for index in unnamed if index < len(row)
    )


def _cell(text: str) -> str:
    """The cell stripped, with a multi-line cell's CRLF line ends read as new lines."""
    return text.strip().replace("\r\n", "\n")
