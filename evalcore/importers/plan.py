"""The steps every format shares once a converter has read its source: each converted
test gets an id, a set and a `source`, is validated as a case, and is checked against the
suite and the rest of the import; the result says exactly what would be written and why
anything is left out. Nothing is written here (`evalcore.importers.write` does that).

- **Ids** are `<prefix>-<the source's own id>` when it has one (Inspect's `id`, a
  spreadsheet's `id` column), else `<prefix>-<10 hex digits>` of the converted test, so
  the same test imported again gets the same id.
- **Set**: `--into` (backlog by default), or a spreadsheet row's own `set`; never
  blocking unless `--into blocking` was said.
- **Already there**: an id the suite holds from an earlier import of the same file is
  skipped as already imported (its owner may have edited it since); any other holder of
  the id is a collision, refused with both places named.
- **Duplicates**: a case whose input and expectation equal a case in the suite, or an
  earlier one of this import, is skipped and counted, naming the case it repeats.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from evalcore.importers.conversion import Conversion, Draft, ImportRefused, Origin
from evalcore.suite import Suite
from evalcore.suite.models import FIELD_LIMIT_BYTES, Case, SourceKind
from evalcore.suite.sets import EvalSet

MAX_ID = 128
ERRORS_SHOWN = 20
DEFAULT_PREFIX = {"promptfoo": "pf", "openai-evals": "oaievals", "inspect": "inspect", "csv": "csv"}
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:\-]+")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


@dataclass(frozen=True)
class Skipped:
    """A converted test not written: `why` is `already imported` or `duplicate`, and
    `of` the case id it repeats."""

    id: str
    origin: Origin
    why: str
    of: str


@dataclass
class ImportPlan:
    """What an import writes (`bodies`, in source order, each as its case file holds it)
    and what it leaves out, with the reason for each."""

    conversion: Conversion
    into: str
    prefix: str
    out: Path
    bodies: list[dict[str, Any]] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [body["id"] for body in self.bodies]


def check_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ImportRefused(
            f"--prefix {prefix!r} cannot start a case id: letters, digits and _ . : - only, "
            "starting with a letter or digit, at most 64"
        )
    return prefix


def check_into(into: str) -> EvalSet:
    try:
        return EvalSet(into)
    except ValueError:
        known = ", ".join(s.value for s in EvalSet)
        raise ImportRefused(f"--into {into!r} is not a set (known: {known})") from None


def check_out(suite_root: Path, out: Path) -> Path:
    """`out` must be a .yaml/.yml/.jsonl file under the suite's cases/ folder, so the suite
    loads what was imported."""
    cases = (suite_root / "cases").resolve()
    resolved = out.resolve()
    if not resolved.is_relative_to(cases):
        raise ImportRefused(
            f"--out {out} is not inside {suite_root / 'cases'}: the suite loads cases only "
            "from there"
        )
    if resolved.suffix not in (".yaml", ".yml", ".jsonl"):
        raise ImportRefused(f"--out {out}: a case file ends in .yaml, .yml or .jsonl")
    if resolved.is_dir():
        raise ImportRefused(f"--out {out} is a directory; name a case file")
    return out


def default_out(suite_root: Path, format_name: str, source: Path) -> Path:
    stem = _ID_CHARS.sub("-", source.stem).strip("-") or "cases"
    return suite_root / "cases" / f"imported-{format_name}-{stem}.yaml"


def plan_import(
    suite: Suite,
    conversion: Conversion,
    *,
    into: EvalSet,
    prefix: str,
    out: Path,
) -> ImportPlan:
    """Give every draft an id, set and source, validate it, and sort out what the suite
    already has. Raises `ImportRefused` listing every invalid case and every id collision
    (file:line of both places); nothing is planned then."""
    plan = ImportPlan(conversion, into.value, prefix, out)
    problems: list[str] = []
    seen_ids: dict[str, tuple[Origin, bytes]] = {}
    seen_content: dict[bytes, str] = _suite_fingerprints(suite)
    for draft in conversion.drafts:
        body = _body(draft, conversion.format, prefix, into, problems)
        if body is None:
            continue
        case_id = body["id"]
        try:
            case = Case.model_validate(body)
        except ValidationError as exc:
            problems.extend(f"{draft.origin}: {line}" for line in _validation_lines(exc))
            continue
        fingerprint = _fingerprint(case)
        existing = suite.get(case_id)
        if existing is not None:
            if _same_import(existing, conversion.format, draft.origin):
                plan.skipped.append(Skipped(case_id, draft.origin, "already imported", case_id))
            else:
                where = _where_in_suite(suite, case_id)
                problems.append(
                    f"{draft.origin}: id {case_id!r} is already used by the case at {where}; "
                    "give --prefix to import under other ids"
                )
            continue
        earlier = seen_ids.get(case_id)
        if earlier is not None:
            if earlier[1] != fingerprint:
                problems.append(
                    f"{draft.origin}: id {case_id!r} is also the id of a different case at "
                    f"{earlier[0]}"
                )
            else:
                plan.skipped.append(Skipped(case_id, draft.origin, "duplicate", case_id))
            continue
        repeated = seen_content.get(fingerprint)
        if repeated is not None:
            plan.skipped.append(Skipped(case_id, draft.origin, "duplicate", repeated))
            continue
        seen_ids[case_id] = (draft.origin, fingerprint)
        seen_content[fingerprint] = case_id
        plan.bodies.append(body)
        plan.origins.append(draft.origin)
    if problems:
        shown = "\n  ".join(problems[:ERRORS_SHOWN])
        more = len(problems) - ERRORS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise ImportRefused(
            f"{len(problems)} problem(s), nothing written:\n  {shown}{tail}",
        )
    return plan


def case_id(prefix: str, draft: Draft) -> str:
    """`<prefix>-<own id>` (characters a case id cannot hold become `-`), or
    `<prefix>-<digest of the converted test>`; cut with a hash when too long."""
    if draft.own_id is not None and draft.own_id.strip():
        tail = _ID_CHARS.sub("-", draft.own_id.strip()).strip("-") or _digest(draft.own_id)
    else:
        tail = _digest(draft.key)
    whole = f"{prefix}-{tail}"
    if len(whole) <= MAX_ID:
        return whole
    return whole[: MAX_ID - 9] + "-" + _digest(whole, 8)


def _digest(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _body(
    draft: Draft, format_name: str, prefix: str, into: EvalSet, problems: list[str]
) -> dict[str, Any] | None:
    """The case as its file will hold it: keys in the example suite's order, defaults left
    out. None (with the problem noted) for a row asking for blocking without `--into
    blocking`, or a field over the size limit."""
    set_name = (draft.set or into.value).strip().lower()
    if set_name == EvalSet.blocking.value and into is not EvalSet.blocking:
        problems.append(
            f"{draft.origin}: set blocking needs --into blocking said explicitly (a case "
            "gates releases only when someone chose that)"
        )
        return None
    body: dict[str, Any] = {"id": case_id(prefix, draft), "set": set_name}
    if draft.severity:
        body["severity"] = draft.severity.strip().lower()
    if draft.tags:
        body["tags"] = sorted(set(draft.tags))
    source: dict[str, Any] = {"kind": SourceKind.imported.value}
    if draft.ticket:
        source["ref"] = draft.ticket
    source["format"] = format_name
    source["file"] = draft.origin.file
    if draft.origin.line is not None:
        source["line"] = draft.origin.line
    body["source"] = source
    case_input: dict[str, Any] = {"messages": draft.messages}
    if draft.context:
        case_input["context"] = draft.context
    if draft.tools:
        case_input["tools"] = draft.tools
    body["input"] = case_input
    expect = dict(draft.expect)
    if draft.outcome and "outcome" not in expect:
        expect = {"outcome": draft.outcome, **expect}
    body["expect"] = expect
    if draft.notes:
        body["notes"] = draft.notes
    oversized = next(_oversized(body), None)
    if oversized is not None:
        problems.append(
            f"{draft.origin}: {oversized} holds more than {FIELD_LIMIT_BYTES:,} bytes, the "
            "limit for one field of a case"
        )
        return None
    return body


def _oversized(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, str):
        if len(value) * 4 > FIELD_LIMIT_BYTES and len(value.encode()) > FIELD_LIMIT_BYTES:
            yield path or "a value"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _oversized(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _oversized(item, f"{path}[{index}]")


def _validation_lines(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        lines.append(f"{where}: {error['msg']}" if where else error["msg"])
    return lines


def _fingerprint(case: Case) -> bytes:
    """What two cases must share to be the same check: the input and the expectation."""
    content = case.model_dump(mode="json", include={"input", "expect"})
    return hashlib.blake2b(
        orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


def _suite_fingerprints(suite: Suite) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for case in suite.cases:
        found.setdefault(_fingerprint(case), case.id)
    return found


def _same_import(existing: Case, format_name: str, origin: Origin) -> bool:
    source = existing.source
    return (
        source.kind is SourceKind.imported
        and source.format == format_name
        and source.file == origin.file
    )


def _where_in_suite(suite: Suite, case_id: str) -> str:
    """`file:line` of the case in the suite (the line of its `id`, when it can be found)."""
    path = suite.case_files.get(case_id)
    if path is None:
        return "the suite"
    line = _id_line(path, case_id)
    return f"{path}:{line}" if line is not None else str(path)


def _id_line(path: Path, case_id: str) -> int | None:
    quoted = re.escape(case_id)
    pattern = re.compile(
        rf"""(^\s*-?\s*id:\s*["']?{quoted}["']?\s*(#.*)?$)|("id"\s*:\s*"{quoted}")"""
    )
    try:
        with path.open(encoding="utf-8-sig") as stream:
            for number, line in enumerate(stream, start=1):
                if pattern.search(line):
                    return number
    except OSError:
        return None
    return None
