"""Slack's Block Kit limits, written once: the digest renderer fits its content within
them and the local fake Slack refuses messages that break them, so both hold to the same
numbers.

`block_errors` lists what breaks them in Slack's own wording (the `invalid_blocks`
details with their `[json-pointer:...]`); it checks the common limits, not the whole
schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ACTIONS_MAX_ELEMENTS",
    "ACTION_ID_MAX",
    "BLOCK_ID_MAX",
    "BLOCK_TYPES",
    "BUTTON_TEXT_MAX",
    "BUTTON_VALUE_MAX",
    "CONTEXT_MAX_ELEMENTS",
    "FALLBACK_TEXT_MAX",
    "FIELD_TEXT_MAX",
    "HEADER_TEXT_MAX",
    "MARKDOWN_TEXT_MAX",
    "MAX_BLOCKS",
    "SECTION_MAX_FIELDS",
    "SECTION_TEXT_MAX",
    "block_errors",
]

MAX_BLOCKS = 50
"""Blocks in one message."""
SECTION_TEXT_MAX = 3000
SECTION_MAX_FIELDS = 10
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
MARKDOWN_TEXT_MAX = 12_000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
ACTIONS_MAX_ELEMENTS = 25
CONTEXT_MAX_ELEMENTS = 10
FALLBACK_TEXT_MAX = 40_000
"""A message's `text` (the notification's fallback when it has blocks); Slack cuts a
longer one on posting and refuses it on an update."""

BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


def block_errors(blocks: Sequence[Any], *, max_blocks: int | None = MAX_BLOCKS) -> list[str]:
    """What in one message's `blocks` breaks Slack's limits, as Slack words it; empty
    when they keep them. `max_blocks=None` checks every block of a list that is still to
    be split into messages."""
    if max_blocks is not None and len(blocks) > max_blocks:
        return [f"no more than {max_blocks} items allowed [json-pointer:/blocks]"]
    errors: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        pointer = f"/blocks/{index}"
        if not isinstance(block, dict):
            errors.append(f"must provide an object [json-pointer:{pointer}]")
            continue
        kind = block.get("type")
        if not isinstance(kind, str) or not kind:
            errors.append(f"missing required field: type [json-pointer:{pointer}]")
            continue
        if kind not in BLOCK_TYPES:
            errors.append(f"unsupported type: {kind} [json-pointer:{pointer}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= BLOCK_ID_MAX:
                errors.append(
                    f"must be 1-{BLOCK_ID_MAX} characters [json-pointer:{pointer}/block_id]"
                )
            elif block_id in block_ids:
                errors.append(f"duplicate block_id: {block_id} [json-pointer:{pointer}/block_id]")
            else:
                block_ids.add(block_id)
        errors += _kind_errors(kind, block, pointer)
    return errors


def _kind_errors(kind: str, block: dict[str, Any], pointer: str) -> list[str]:
    """The limits of one block's own type."""
    errors: list[str] = []
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            errors.append(f"must provide either text or fields [json-pointer:{pointer}]")
        if text is not None:
            errors += _text_object_errors(
                text, f"{pointer}/text", SECTION_TEXT_MAX, plain_only=False
            )
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > SECTION_MAX_FIELDS:
                errors.append(
                    f"no more than {SECTION_MAX_FIELDS} items allowed "
                    f"[json-pointer:{pointer}/fields]"
                )
            else:
                for i, item in enumerate(fields):
                    errors += _text_object_errors(
                        item, f"{pointer}/fields/{i}", FIELD_TEXT_MAX, plain_only=False
                    )
    elif kind == "header":
        errors += _text_object_errors(
            block.get("text"), f"{pointer}/text", HEADER_TEXT_MAX, plain_only=True
        )
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        most = ACTIONS_MAX_ELEMENTS if kind == "actions" else CONTEXT_MAX_ELEMENTS
        if not isinstance(elements, list) or not elements:
            errors.append(f"missing required field: elements [json-pointer:{pointer}]")
        elif len(elements) > most:
            errors.append(f"no more than {most} items allowed [json-pointer:{pointer}/elements]")
        elif kind == "actions":
            for i, element in enumerate(elements):
                errors += _button_errors(element, f"{pointer}/elements/{i}")
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str):
            errors.append(f"missing required field: text [json-pointer:{pointer}]")
        elif len(text) > MARKDOWN_TEXT_MAX:
            errors.append(
                f"must be less than {MARKDOWN_TEXT_MAX + 1} characters "
                f"[json-pointer:{pointer}/text]"
            )
    return errors


def _button_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"missing required field: type [json-pointer:{pointer}]"]
    if element["type"] != "button":
        return []
    errors = _text_object_errors(
        element.get("text"), f"{pointer}/text", BUTTON_TEXT_MAX, plain_only=True
    )
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > ACTION_ID_MAX):
        errors.append(
            f"must be less than {ACTION_ID_MAX + 1} characters [json-pointer:{pointer}/action_id]"
        )
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > BUTTON_VALUE_MAX):
        errors.append(
            f"must be less than {BUTTON_VALUE_MAX + 1} characters [json-pointer:{pointer}/value]"
        )
    return errors


def _text_object_errors(obj: Any, pointer: str, limit: int, *, plain_only: bool) -> list[str]:
    """A text object's type (plain_text, or mrkdwn where allowed) and length."""
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    errors: list[str] = []
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        errors.append(f"must be one of {', '.join(kinds)} [json-pointer:{pointer}/type]")
    text = obj.get("text")
    if not isinstance(text, str):
        errors.append(f"missing required field: text [json-pointer:{pointer}]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]")
    return errors
