"""OTLP/JSON attribute values as plain Python values.

OTLP/JSON writes every attribute as `{"key": ..., "value": AnyValue}`, the value an object
with one of `stringValue`, `boolValue`, `intValue` (a string, since it is 64-bit),
`doubleValue` (a number, or "NaN"/"Infinity" as strings), `arrayValue: {values: [...]}`,
`kvlistValue: {values: [{key, value}]}` or `bytesValue` (base64, kept as text). An empty
value object is an unset value (None). Anything else is refused with where it sits, so a
broken export is named rather than half read.
"""

from __future__ import annotations

from typing import Any

from evalcore.triage.traces.documents import kind_of as _kind

_SPECIAL_DOUBLES = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class BadValue(ValueError):
    """An attribute or value that is not OTLP/JSON; `where` continues the caller's path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def attributes(items: object, where: str = "attributes") -> dict[str, Any]:
    """The `[{key, value}]` list as a dict (a later key wins, as in the SDKs)."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise BadValue(where, f"must be a list of {{key, value}}, got {_kind(items)}")
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadValue(f"{where}[{index}]", f"must be an object, got {_kind(item)}")
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise BadValue(f"{where}[{index}].key", "missing or not a string")
        out[key] = any_value(item.get("value"), f"{where}[{key}]")
    return out


def any_value(value: object, where: str) -> Any:
    """One AnyValue as str, bool, int, float, list, dict or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadValue(where, f"must be an AnyValue object, got {_kind(value)}")
    if not value:
        return None
    if len(value) != 1:
        raise BadValue(where, f"must hold one value, got {', '.join(sorted(value))}")
    [(kind, inner)] = value.items()
    if kind == "stringValue":
        if not isinstance(inner, str):
            raise BadValue(f"{where}.stringValue", f"must be a string, got {_kind(inner)}")
        return inner
    if kind == "boolValue":
        if not isinstance(inner, bool):
            raise BadValue(f"{where}.boolValue", f"must be true or false, got {_kind(inner)}")
        return inner
    if kind == "intValue":
        return _integer(inner, f"{where}.intValue")
    if kind == "doubleValue":
        return _double(inner, f"{where}.doubleValue")
    if kind == "arrayValue":
        values = _values(inner, f"{where}.arrayValue")
        return [any_value(v, f"{where}.arrayValue.values[{i}]") for i, v in enumerate(values)]
    if kind == "kvlistValue":
        _values(inner, f"{where}.kvlistValue")
        assert isinstance(inner, dict)
        return attributes(inner.get("values"), f"{where}.kvlistValue.values")
    if kind == "bytesValue":
        if not isinstance(inner, str):
            raise BadValue(f"{where}.bytesValue", f"must be base64 text, got {_kind(inner)}")
        return inner
    raise BadValue(where, f"unknown value kind {kind!r}")


def _integer(inner: object, where: str) -> int:
    if isinstance(inner, bool):
        raise BadValue(where, "must be an integer, got a boolean")
    if isinstance(inner, int):
        return inner
    if isinstance(inner, str):
        try:
            return int(inner)
        except ValueError:
            pass
    if isinstance(inner, float) and inner.is_integer():
        return int(inner)
    raise BadValue(where, f"must be an integer, got {inner!r}")


def _double(inner: object, where: str) -> float:
    if isinstance(inner, bool):
        raise BadValue(where, "must be a number, got a boolean")
    if isinstance(inner, int | float):
        return float(inner)
    if isinstance(inner, str):
        if inner in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[inner]
        try:
            return float(inner)
        except ValueError:
            pass
    raise BadValue(where, f"must be a number, got {inner!r}")


def _values(inner: object, where: str) -> list[Any]:
    if not isinstance(inner, dict):
        raise BadValue(where, f"must be an object with values, got {_kind(inner)}")
    values = inner.get("values", [])
    if values is None:
        return []
    if not isinstance(values, list):
        raise BadValue(f"{where}.values", f"must be a list, got {_kind(values)}")
    return values
