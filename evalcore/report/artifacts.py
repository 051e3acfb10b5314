"""What the release gate and the nightly monitor publish for a run on the Prefect server:
a Markdown page and, when it has rows, a table, each under a stable key so the server
shows the latest next to the earlier ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


def slug(text: str) -> str:
    """Lowercase letters, digits and dashes: what Prefect artifact keys accept."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "release"


@dataclass(frozen=True)
class Artifacts:
    key: str
    markdown: str
    description: str
    table: list[dict[str, Any]]  # published only when it has rows
    table_key: str
    table_description: str
