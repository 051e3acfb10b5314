"""Appending an import's cases to its case file: every byte already there kept, the file
replaced atomically, one writer per suite at a time (the apply package's lock)."""

from __future__ import annotations

from pathlib import Path

import orjson

from evalcore.files import write_atomic
from evalcore.fixtures.errors import FixtureError
from evalcore.fixtures.write import appended
from evalcore.fixtures.yaml_text import case_yaml
from evalcore.importers.conversion import ImportRefused
from evalcore.importers.plan import ImportPlan
from evalcore.report.rendering import render
from evalcore.triage.apply.files import decode, encode, read_bytes, suite_lock


def new_text(plan: ImportPlan, source: str) -> bytes:
    """The case file's bytes with the plan's cases appended (YAML or JSON Lines, by the
    file's suffix)."""
    before = read_bytes(plan.out)
    bom, text = decode(before) if before is not None else (False, "")
    if plan.out.suffix == ".jsonl":
        lines = b"".join(orjson.dumps(body) + b"\n" for body in plan.bodies)
        head = text.encode()
        if head and not head.endswith(b"\n"):
            head += b"\n"
        return (b"\xef\xbb\xbf" if bom else b"") + head + lines
    header = render(
        "import_header.yaml.j2", format=plan.conversion.format, source=source, into=plan.into
    )
    try:
        after = appended(text, [case_yaml(body) for body in plan.bodies], header)
    except FixtureError as exc:
        raise ImportRefused(f"{plan.out}: {exc}") from None
    return encode(after, bom)


def write_import(suite_root: Path, plan: ImportPlan, source: str) -> None:
    """Write the plan's cases; nothing when it has none."""
    if not plan.bodies:
        return
    with suite_lock(suite_root):
        data = new_text(plan, source)
        plan.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(plan.out, data)
