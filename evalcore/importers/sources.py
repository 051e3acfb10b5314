"""Reading the files a converter is pointed at: JSON Lines and CSV records with their line
numbers, text with a refusal that names the file. Every converter reads through these, so
a broken line is named the same way in every format."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from evalcore.importers.conversion import ImportRefused

# A spreadsheet cell may hold a long document; csv's default limit (128 KiB) would refuse it.
_CSV_FIELD_LIMIT = 16 << 20


def read_text(path: Path, shown: str | None = None) -> str:
    """The file's text (UTF-8, a byte-order mark dropped), or a refusal naming it."""
    name = shown or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportRefused(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImportRefused(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise ImportRefused(f"{name}: cannot read it: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRefused(f"{name}:{line}: not UTF-8 text ({exc.reason})") from None


def jsonl_records(text: str, shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each non-blank line as a JSON object, with its 1-based line number; a line that is
    not a JSON object is refused with its number."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ImportRefused(f"{shown}:{number}: not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ImportRefused(
                f"{shown}:{number}: each line must be a JSON object, got {type(record).__name__}"
            )
        yield number, record


def csv_rows(text: str, shown: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header row and each following row with the line it starts on (a quoted cell
    may span lines). The delimiter is sniffed among comma, semicolon and tab, as
    spreadsheets export in different locales. Blank rows are skipped."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    if not text.strip():
        raise ImportRefused(f"{shown}: empty file: a header row naming the columns comes first")
    sample = text[:65536]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ImportRefused(f"{shown}:1: not CSV: {exc}") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield start, row
                start = reader.line_num + 1
        except csv.Error as exc:
            raise ImportRefused(f"{shown}:{reader.line_num}: not CSV: {exc}") from None

    return [cell.strip() for cell in header], rows()


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def json_array_records(text: str, shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each object of a JSON array (or a lone JSON object) with the 1-based line it starts
    on, so that a `.json` dataset names its entries as JSON Lines does. Text that is not
    such JSON is refused with the line of the fault."""
    decoder = json.JSONDecoder()

    def decode(position: int) -> tuple[Any, int]:
        try:
            return decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ImportRefused(f"{shown}:{exc.lineno}: not JSON: {exc.msg}") from None

    def refused(position: int, problem: str) -> ImportRefused:
        return ImportRefused(f"{shown}:{text.count(chr(10), 0, position) + 1}: {problem}")

    position = _skip_space(text, 0)
    if position == len(text):
        return
    line = text.count("\n", 0, position) + 1
    if text[position] == "{":
        record, end = decode(position)
        if _skip_space(text, end) != len(text):
            raise refused(
                _skip_space(text, end),
                "not JSON: more follows the first object (one object a line is JSON Lines: "
                "name the file .jsonl)",
            )
        yield line, record
        return
    if text[position] != "[":
        raise refused(position, f"not a JSON array of objects (it starts with {text[position]!r})")
    counted = position
    position = _skip_space(text, position + 1)
    closed = text.startswith("]", position)
    while not closed:
        record, end = decode(position)
        line += text.count("\n", counted, position)
        counted = position
        if not isinstance(record, dict):
            raise ImportRefused(
                f"{shown}:{line}: each entry must be a JSON object, got {type(record).__name__}"
            )
        yield line, record
        position = _skip_space(text, end)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
        elif text.startswith("]", position):
            closed = True
        else:
            raise refused(position, "not JSON: expected ',' or ']' after an entry")
    rest = _skip_space(text, position + 1)
    if rest != len(text):
        raise refused(rest, "not JSON: more follows the closing ']'")


def _skip_space(text: str, position: int) -> int:
    space = _JSON_SPACE.match(text, position)
    return space.end() if space else position
