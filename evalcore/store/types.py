"""Column types shared by the tables."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class JSONText(TypeDecorator[Any]):
    """JSON stored as text, (de)serialised with orjson.

    The generic JSON type costs a `json.dumps` per value; result rows are written by the
    thousand per second, so this keeps the hot path cheap and behaves the same on
    SQLite and PostgreSQL.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return orjson.dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(value)
