"""Reading a trace export's bytes: one JSON document, or JSON Lines (one document per line,
as the OpenTelemetry Collector's file exporter writes), with a broken line named.

The whole file is tried as one document first. Only when that fails and its first line is
a JSON object of its own is it read as JSON Lines, so an error in a pretty-printed file
is reported where orjson found it (line and column), not as "line 1".
"""

from __future__ import annotations

from typing import Any

import orjson

from evalcore.triage.intake import IntakeError

_BOM = b"\xef\xbb\xbf"


def read_documents(data: bytes) -> list[tuple[int | None, Any]]:
    """(line, document) pairs: one pair with line None for a single JSON document, one per
    non-blank line for JSON Lines. Not JSON: `IntakeError` (kind `not_json`) with the line."""
    data = data.removeprefix(_BOM)
    try:
        return [(None, orjson.loads(data))]
    except orjson.JSONDecodeError as whole:
        lines = data.split(b"\n")
        first = next((n for n, line in enumerate(lines) if line.strip()), None)
        if first is None or not _is_object(lines[first]):
            raise IntakeError("not_json", f"not JSON: {whole}") from None
    documents: list[tuple[int | None, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            documents.append((number, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            raise IntakeError(
                "not_json", f"not JSON: line {number} (of JSON Lines): {exc.msg}"
            ) from None
    return documents


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def kind_of(value: object) -> str:
    """What a JSON value is, for a message: "a string", "an object", "null"..."""
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), "a number")


def nonblank(value: object) -> str | None:
    """A string with something in it, else None."""
    return value if isinstance(value, str) and value.strip() else None
