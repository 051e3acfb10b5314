"""Text normalisation shared by the lenient checks: contains, not_contains, refusal, marker.

Both the reply and the phrase go through `normalize`:

- Unicode NFKC: full-width digits and ligatures become plain letters, and the no-break
  spaces typesetters put in "60\u202f%" or "10\u00a0days" become ordinary spaces;
- typographic quotes and dashes are folded to ASCII, so the phrase "don't" is found in a
  reply that says "don\u2019t", and "14-day" in "14\u2011day";
- soft hyphens and zero-width spaces are dropped;
- case is folded ("Straße" contains "STRASSE");
- whitespace runs (newlines too) collapse to one space, and the ends are trimmed.

Whitespace is collapsed, never removed: "60%" does not contain "60 %" (nor the reverse),
while "60\u202f%" does contain "60 %". Matching stays a substring test, so "14 days" is
found in "114 days"; use `regex` with `\\b` when word boundaries matter.
"""

from __future__ import annotations

import re
import unicodedata

_FOLD = {
    # single quotes, apostrophes, primes
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    # double quotes
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    # hyphens, dashes, minus
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    # invisible characters
    "\u00ad": "",
    "\u200b": "",
    "\u2060": "",
    "\ufeff": "",
}
# A search and a few substitutions beat str.translate, which looks up every character.
_FOLDABLE = re.compile("[" + "".join(_FOLD) + "]")


def _fold(match: re.Match[str]) -> str:
    return _FOLD[match.group()]


_CACHE_LIMIT = 16_384


def normalize(text: str) -> str:
    """Fold `text` for lenient matching (see the module docstring for what that means)."""
    if text.isascii():
        # ASCII needs neither NFKC nor folding, and lower() equals casefold() here.
        return " ".join(text.lower().split())
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    if _FOLDABLE.search(text) is not None:
        text = _FOLDABLE.sub(_fold, text)
    return " ".join(text.casefold().split())


# The reply text is normalised once and shared by every lenient scorer of the same case.
_last_reply: tuple[str, str] = ("", "")


def normalized_reply(text: str) -> str:
    """`normalize(text)`, remembered for the reply being scored right now."""
    global _last_reply
    last = _last_reply
    if text == last[0]:
        return last[1]
    out = normalize(text)
    _last_reply = (text, out)
    return out


_phrases: dict[str, str] = {}


def normalized_phrase(phrase: str) -> str:
    """`normalize(phrase)`, cached: a suite's phrases are few and scored over and over."""
    out = _phrases.get(phrase)
    if out is None:
        if len(_phrases) >= _CACHE_LIMIT:
            _phrases.clear()
        out = _phrases[phrase] = normalize(phrase)
    return out


def preview(text: str, limit: int = 60) -> str:
    """A quoted one-line excerpt for a reason: whitespace collapsed, cut with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return repr(flat)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
