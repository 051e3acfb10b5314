"""The digest as Markdown and as Slack Block Kit messages, both from Jinja2 templates.

`digest.blocks.j2` renders one JSON list of blocks; here it is parsed, checked (a list of
objects, each with a `type`), held to Slack's limits and split into messages:

- at most 50 blocks per message; a header's text at most 150 characters, a section's
  3000, a button's 75, an actions block at most 25 elements, a message's fallback `text`
  at most 40,000;
- an item (its section and its actions block) is never cut apart: blocks whose
  `block_id` share the part before the first `.` (`item-3.text`, `item-3.decide`) travel
  together, and a block whose id ends in `.lead` (a heading) goes with what follows it;
- every message after the first starts with the header again, and with several
  messages each header says which part it is, `(2/3)`.

User-controlled text (backlog reports, case ids, finding details) is escaped for Slack
mrkdwn (`&`, `<`, `>`), so it can neither mention anyone nor forge a link, and cut
before the limits; cutting never splits an entity such as `&amp;`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from evalcore.report.rendering import render
from evalcore.slack.blockkit import (
    ACTIONS_MAX_ELEMENTS,
    BUTTON_TEXT_MAX,
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_TEXT_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    block_errors,
)
from evalcore.slack.text import slack_escape
from evalcore.triage.digest.gather import Digest, DigestItem, format_effect, format_value

__all__ = [
    "ACTIONS_MAX_ELEMENTS",
    "BUTTON_TEXT_MAX",
    "FALLBACK_TEXT_MAX",
    "HEADER_TEXT_MAX",
    "MAX_BLOCKS",
    "SECTION_TEXT_MAX",
    "SlackMessage",
    "action_label",
    "button_value",
    "digest_blocks",
    "fit",
    "render_markdown",
    "render_slack",
    "slack_escape",
    "split_messages",
]

LIST_LIMIT = 15  # entries per informational part in Slack; the Markdown lists them all

_LABELS: dict[tuple[str, str], str] = {
    ("backlog", "block"): "Block (make it a blocking case)",
    ("backlog", "monitor"): "Monitor",
    ("backlog", "keep"): "Keep in backlog",
    ("backlog", "dismiss"): "Dismiss",
    ("drift", "accept_baseline"): "Accept as new baseline",
    ("drift", "investigate"): "Investigate",
    ("flaky", "demote"): "Demote from blocking",
    ("flaky", "keep"): "Keep as is",
    ("graduation", "promote"): "Promote",
    ("graduation", "keep"): "Keep where it is",
}
_STYLES: dict[str, str] = {"block": "danger", "accept_baseline": "primary", "promote": "primary"}


class SlackMessage(BaseModel):
    """One chat message of the digest: its fallback text and blocks."""

    part: int
    text: str
    blocks: list[dict[str, Any]]

    @property
    def content_hash(self) -> str:
        canonical = json.dumps(
            {"text": self.text, "blocks": self.blocks}, sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def item_numbers(self) -> list[int]:
        numbers = []
        for block in self.blocks:
            found = _ITEM_ID.fullmatch(str(block.get("block_id", "")))
            if found and block.get("type") == "section":
                numbers.append(int(found[1]))
        return numbers


_ITEM_ID = re.compile(r"item-(\d+)\.text")


# --------------------------------------------------------------------------- text helpers


def oneline(text: object, limit: int | None = None) -> str:
    """Whitespace (newlines included) collapsed to single spaces, cut at `limit`."""
    flat = " ".join(str(text).split())
    if limit is not None and len(flat) > limit:
        return flat[: max(limit - 1, 0)] + "…"
    return flat


def fit(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in `…`, never inside an entity
    (`&amp;`) or an angle-bracket token (`<@U123>`)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    bracket = cut.rfind("<")
    if bracket != -1 and ">" not in cut[bracket:]:
        cut = cut[:bracket]
    return cut + "…"


def md_escape(text: object, limit: int | None = None) -> str:
    """User text for one Markdown line: collapsed, cut, Markdown characters escaped, and
    `&` and `<` as entities (no HTML gets through; a lone `>` is harmless mid-line)."""
    flat = oneline(text, limit)
    flat = re.sub(r"([\\`*_\[\]|#])", r"\\\1", flat)
    return flat.replace("&", "&amp;").replace("<", "&lt;")


def action_label(kind: str, action: str) -> str:
    return fit(_LABELS.get((kind, action), action.replace("_", " ").capitalize()), BUTTON_TEXT_MAX)


def button_value(ref: str, action: str) -> str:
    """The button's value, read back by the interactivity receiver."""
    return json.dumps({"ref": ref, "action": action}, separators=(",", ":"), ensure_ascii=False)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _k_figure(value: float | None, k: int | None) -> str:
    """pass^k or pass@k with its k; "n/a" for a set without cases of two or more samples."""
    return "n/a" if value is None or k is None else f"{value:.1%} (k={k})"


def _budget_value(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} ms" if metric == "latency_p95_ms" else f"${value:.4f}"


def _title(digest: Digest) -> str:
    return f"Weekly triage digest · {digest.route} · {digest.week}"


def _helpers() -> dict[str, Callable[..., Any]]:
    return {
        "esc": slack_escape,
        "oneline": oneline,
        "fit": fit,
        "md": md_escape,
        "label": action_label,
        "button_value": button_value,
        "value": format_value,
        "effect": format_effect,
        "percent": _percent,
        "k_figure": _k_figure,
        "budget_value": _budget_value,
    }


def _context(digest: Digest) -> dict[str, Any]:
    return {
        "digest": digest,
        "title": _title(digest),
        "list_limit": LIST_LIMIT,
        "styles": _STYLES,
        "limits": {
            "section": SECTION_TEXT_MAX,
            "header": HEADER_TEXT_MAX,
            "button": BUTTON_TEXT_MAX,
        },
        **_helpers(),
    }


# --------------------------------------------------------------------------- Markdown


def render_markdown(digest: Digest) -> str:
    return render("digest.md.j2", **_context(digest))


# --------------------------------------------------------------------------- Block Kit


def digest_blocks(digest: Digest) -> list[dict[str, Any]]:
    """Every block of the digest in one list (before splitting), parsed and checked."""
    raw = render("digest.blocks.j2", **_context(digest))
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"digest.blocks.j2 did not render valid JSON: {exc}") from None
    if not isinstance(parsed, list) or not all(
        isinstance(b, dict) and isinstance(b.get("type"), str) and b["type"] for b in parsed
    ):
        raise ValueError("digest.blocks.j2 must render a JSON list of objects with a `type`")
    blocks = [_within_limits(b) for b in parsed]
    problems = block_errors(blocks, max_blocks=None)
    if problems:
        raise ValueError("digest blocks break Slack's limits: " + "; ".join(problems))
    return blocks


def _within_limits(block: dict[str, Any]) -> dict[str, Any]:
    """The last guard: texts the template left too long are cut (never mid-entity)."""
    kind = block["type"]
    text = block.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        limit = HEADER_TEXT_MAX if kind == "header" else SECTION_TEXT_MAX
        text["text"] = fit(text["text"], limit)
    for field in block.get("fields") or []:
        if isinstance(field, dict) and isinstance(field.get("text"), str):
            field["text"] = fit(field["text"], FIELD_TEXT_MAX)
    if kind == "actions":
        for element in block.get("elements") or []:
            label = element.get("text") if isinstance(element, dict) else None
            if isinstance(label, dict) and isinstance(label.get("text"), str):
                label["text"] = fit(label["text"], BUTTON_TEXT_MAX)
    if kind == "context":
        for element in block.get("elements") or []:
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                element["text"] = fit(element["text"], SECTION_TEXT_MAX)
    return block


def _unit_key(block: dict[str, Any]) -> str | None:
    block_id = block.get("block_id")
    if isinstance(block_id, str) and "." in block_id:
        return block_id.split(".", 1)[0]
    return None


def _units(blocks: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Blocks grouped into what must stay in one message."""
    units: list[list[dict[str, Any]]] = []
    lead = False  # the previous unit ends in a heading that belongs to what follows
    for block in blocks:
        key = _unit_key(block)
        if units and (lead or (key is not None and _unit_key(units[-1][-1]) == key)):
            units[-1].append(block)
        else:
            units.append([block])
        lead = str(block.get("block_id", "")).endswith(".lead")
    return units


def split_messages(
    blocks: Sequence[dict[str, Any]], *, max_blocks: int = MAX_BLOCKS
) -> list[list[dict[str, Any]]]:
    """`blocks` in as many messages as Slack's block limit needs, never cutting a unit
    (an item's section and buttons) apart. When the first block is a header, every later
    message starts with a copy of it, and each header then says `(k/n)`."""
    if not blocks:
        return []
    header = blocks[0] if blocks[0].get("type") == "header" else None
    body = list(blocks[1:] if header is not None else blocks)
    room = max_blocks - (1 if header is not None else 0)
    messages: list[list[dict[str, Any]]] = [[]]
    for unit in _units(body):
        if len(unit) > room:
            ids = ", ".join(str(b.get("block_id")) for b in unit)
            raise ValueError(f"{len(unit)} blocks that belong together ({ids}) exceed a message")
        if len(messages[-1]) + len(unit) > room:
            messages.append([])
        messages[-1].extend(unit)
    if header is None:
        return messages
    total = len(messages)
    out = []
    for number, message in enumerate(messages, 1):
        top = json.loads(json.dumps(header))
        if total > 1:
            suffix = f" ({number}/{total})"
            top["text"]["text"] = fit(top["text"]["text"], HEADER_TEXT_MAX - len(suffix)) + suffix
        out.append([top, *message])
    return out


def _fallback(digest: Digest, message: list[dict[str, Any]], number: int, total: int) -> str:
    """The message's `text`: what notifications and screen readers show."""
    part = f" ({number}/{total})" if total > 1 else ""
    overdue = len(digest.overdue)
    proposed = len(digest.proposals)
    lines = [
        f"{_title(digest)}{part}: {len(digest.pending)} decision(s) pending"
        + (f", {overdue} waiting over a week" if overdue else "")
        + (f", {proposed} promotion(s) proposed" if proposed else "")
    ]
    by_number = {item.number: item for item in digest.items}
    probe = SlackMessage(part=number - 1, text="", blocks=message)
    for item_number in probe.item_numbers():
        item = by_number.get(item_number)
        if item is not None:
            lines.append(f"#{item.number} {item.ref}: {oneline(item.title, 200)}")
    return fit(slack_escape("\n".join(lines)), FALLBACK_TEXT_MAX)


def render_slack(digest: Digest, *, max_blocks: int = MAX_BLOCKS) -> list[SlackMessage]:
    """The digest as Slack messages (part 0, 1, ...), each within Slack's limits."""
    split = split_messages(digest_blocks(digest), max_blocks=max_blocks)
    return [
        SlackMessage(part=i, text=_fallback(digest, blocks, i + 1, len(split)), blocks=blocks)
        for i, blocks in enumerate(split)
    ]


def item_text_preview(item: DigestItem) -> str:
    """One line naming an item, for logs and the command's summary."""
    return f"#{item.number} {item.ref}: {oneline(item.title, 120)}"
