"""Actions the customer asks for, taken through their tool when it is offered: a refund
(`create_refund`), a shipment's tracking (`track_shipment`), an order's status
(`lookup_order`). Arguments are read from the customer's own words: order ids in their
canonical `LH-NNNNNN` form, the reason, the amount when one is named.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["ACTION_TOOLS", "action_calls", "as_json"]

ACTION_TOOLS = ("create_refund", "track_shipment", "lookup_order")

_ORDER_ID = re.compile(r"\bLH[-\s]?(\d{6})\b", re.I)
_TRACKING = re.compile(r"\b(1Z[0-9A-Z]{16}|[A-Z]{2}\d{9}[A-Z]{2}|\d{12,22})\b")
_REFUND_REQUEST = re.compile(r"\b(?:refund|money back|reimburs|erstatt|rembours|reembols)")
_REFUND_STATUS = re.compile(
    r"\b(?:where(?:'s| is) my refund|status of (?:my |the )?refund|refund status|"
    r"when will (?:i get )?(?:my |the )?refund)"
)
_STATUS = re.compile(
    r"\b(?:where|status|track|update|shipped|ship|arriv|deliver|happen|progress|eta|late|"
    r"delayed|check|look ?up|wo ist|ou est|exception|mean)"
)
_REFUND_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "damaged",
        re.compile(r"\b(?:damaged?|broken|cracked|smashed|shattered|dented|defective|faulty)\b"),
    ),
    ("wrong_item", re.compile(r"\bwrong (?:size|item|colou?r|product|model|one|thing)\b")),
    (
        "not_delivered",
        re.compile(
            r"\b(?:never (?:arrived|came|delivered)|didn'?t (?:arrive|come)|not delivered|lost)\b"
        ),
    ),
    (
        "item_returned",
        re.compile(r"\b(?:returned|sent (?:it |them )?back|dropped (?:it |them )?off|scanned)\b"),
    ),
)
_MONEY = re.compile(
    r"[$€£]\s?(\d{1,6}(?:[.,]\d{1,2})?)\b|\b(\d{1,6}(?:[.,]\d{1,2})?)\s?(?:usd|eur|gbp|dollars|euros?|pounds)\b",
    re.I,
)


def as_json(value: Any) -> str:
    """Compact JSON text, as tool-call arguments are sent."""
    return orjson.dumps(value).decode()


def action_calls(raw: str, norm: str, tools: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """Tool calls for an action the customer asks for, when the matching tool is offered."""
    order_ids = list(dict.fromkeys(f"LH-{m}" for m in _ORDER_ID.findall(raw)))
    refund_asked = _REFUND_REQUEST.search(norm) and not _REFUND_STATUS.search(norm)
    if "create_refund" in tools and order_ids and refund_asked:
        reason = next((r for r, p in _REFUND_REASONS if p.search(norm)), "customer_request")
        args: dict[str, Any] = {"order_id": order_ids[0], "reason": reason}
        money = _MONEY.search(raw)
        if money:
            args["amount"] = float((money.group(1) or money.group(2)).replace(",", "."))
        return (("create_refund", as_json(args)),)
    if "track_shipment" in tools and _STATUS.search(norm):
        numbers = [n for n in _TRACKING.findall(raw.upper()) if not n.startswith("LH")]
        if numbers:
            return (("track_shipment", as_json({"tracking_number": numbers[0]})),)
    if "lookup_order" in tools and order_ids and _STATUS.search(norm):
        return tuple(("lookup_order", as_json({"order_id": oid})) for oid in order_ids[:5])
    return ()
