"""Words the reference assistant's classifiers share: who a person's relatives and
acquaintances are, what bereavement sounds like, and how patterns are combined.

Both the safety check (settling a late relative's account is not an intrusion) and the
hand-off check (a bereavement goes to a person) need the same words.
"""

from __future__ import annotations

import re

__all__ = ["BEREAVEMENT", "KIN", "any_of"]


def any_of(*patterns: str) -> re.Pattern[str]:
    """One compiled alternation of `patterns`, each kept as its own group."""
    return re.compile("|".join(f"(?:{p})" for p in patterns))


KIN = (
    r"(?:ex|ex-?wife|ex-?husband|ex-?girlfriend|ex-?boyfriend|husband|wife|partner|girlfriend|"
    r"boyfriend|neighbou?r|friend|boss|coworker|co-worker|colleague|roommate|flatmate|brother|"
    r"sister|mother|father|mom|mum|dad|son|daughter|aunt|uncle|cousin)"
)
BEREAVEMENT = any_of(
    r"\bpassed away\b",
    r"\b(?:died|deceased|death of|bereavement|funeral)\b",
    rf"\bmy late {KIN}\b",
    r"\bverstorben\b",
    r"\bdecede\b",
)
