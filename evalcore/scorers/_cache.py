"""Memos for the hot path, keyed by the identity of objects a loaded suite keeps alive.

A case's phrase list or schema is a list or dict: unhashable, and costly to canonicalise on
every reply. Its identity is free to look up, and stable for as long as the memo holds a
reference to it, which it does; each memo is cleared wholesale when it grows past `limit`,
so a long-lived process that reloads suites does not accumulate them.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """A map from an object (by `is`, not `==`) to a value computed from it."""

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int = 65_536) -> None:
        self._entries: dict[int, tuple[K, V]] = {}
        self._limit = limit

    def get(self, key: K) -> V | None:
        hit = self._entries.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        return None

    def put(self, key: K, value: V) -> V:
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
