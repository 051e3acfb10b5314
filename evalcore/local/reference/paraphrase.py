"""Paraphrase mode: the reference target answers the fixture generator's rewrite requests
deterministically, so `fixtures generate --paraphrase` can be tested offline.

The request's user message is `<voice>\\n---\\n<message>`: the parent case's original text,
whose habits to imitate, then the message to rewrite. The answer is the message with the
voice's greeting and sign-off put in place of its own (or added); every other character is
left as it was, so whatever the message plants still reads the same to a classifier.
"""

from __future__ import annotations

import re

__all__ = ["PARAPHRASE_SYSTEM_PREFIX", "paraphrase"]

PARAPHRASE_SYSTEM_PREFIX = "You rewrite customer messages."

_SEPARATOR = re.compile(r"\n-{3,}[ \t]*\n")
_GREETING = re.compile(
    r"^\s*(?:hi+|hiya|hey+|hello|howdy|yo|morning|evening|afternoon|good (?:morning|afternoon|"
    r"evening)|dear [\w ]{1,30}|bonjour|salut|hallo|guten tag|hola|buenos d[ií]as|ciao|hej)"
    r"(?: there| all| team| folks| guys)?\b[ \t]*[,!.:;-]*[ \t]*",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"\s*\b(?:cheers(?: mate)?|thanks(?: a lot| so much| in advance)?|thank you(?: so much)?|"
    r"thx|ta|many thanks|best(?: wishes| regards)?|regards|kind regards|merci|danke|gracias|grazie)"
    r"[ \t]*[.!]*\s*$",
    re.IGNORECASE,
)


def _greeting(text: str) -> str | None:
    match = _GREETING.match(text)
    return match.group(0).strip() if match else None


def _sign_off(text: str) -> str | None:
    match = _SIGN_OFF.search(text)
    if match is None:
        return None
    return match.group(0).strip() or None


def paraphrase(prompt: str) -> str:
    """The rewritten message for a `<voice>\\n---\\n<message>` prompt (see the docstring)."""
    parts = _SEPARATOR.split(prompt, maxsplit=1)
    if len(parts) != 2:
        return prompt
    voice, message = parts
    greeting, sign_off = _greeting(voice), _sign_off(voice)
    text = message
    if greeting is not None:
        own = _GREETING.match(text)
        body = text[own.end() :] if own else text.lstrip()
        text = f"{greeting} {body}"
    if sign_off is not None:
        own_end = _SIGN_OFF.search(text)
        body = text[: own_end.start()] if own_end else text.rstrip()
        text = f"{body} {sign_off}"
    return text
