"""Rows the triage tests start from, built one way."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from evalcore.store.tables import BacklogItemRow


def backlog_item(
    item_id: str = "BL-000001",
    *,
    ticket: str | None = "ZD-48213",
    tags: tuple[str, ...] = ("shipping",),
    question: str = "Where is my parcel?",
    **overrides: Any,
) -> BacklogItemRow:
    """An open backlog item of the example route, as intake would have stored it."""
    values: dict[str, Any] = {
        "id": item_id,
        "ticket": ticket,
        "reporter": "support@lumenhome.example",
        "route": "support-assistant",
        "messages": [{"role": "user", "content": question}],
        "observed_output": "It was delivered yesterday.",
        "what_was_wrong": "Tracking says it is still in transit.",
        "tags": list(tags),
        "normalized_text": question.lower().strip("?"),
        "fingerprint": item_id.ljust(64, "0"),
        **overrides,
    }
    return BacklogItemRow(**values)


def add(engine: Engine, *rows: Any) -> None:
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
