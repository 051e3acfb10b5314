"""Moments a person must take over: safety incidents, legal threats, compromised accounts,
payment disputes, bereavement, an explicit request for a person, and a customer whose
frustration has risen over three turns in a row.

Each moment carries the reason and priority the `handoff_to_human` call sends. The
patterns the assistant started with are tried first, so a message they already matched
keeps its reason; the broader ones only catch what those missed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evalcore.local.reference.knowledge import normalise
from evalcore.local.reference.lexicon import BEREAVEMENT, KIN, any_of

__all__ = ["frustrated_turns", "handoff_moment"]

_CLASSIC: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "safety_incident",
        "high",
        any_of(
            r"\b(?:caught|catches|catching|on|set) fire\b",
            r"\bflames?\b",
            r"\bsmok(?:e|es|ed|ing)\b",
            r"\bcut (?:myself|(?:my|his|her|their)(?: \w+'s)? (?:hand|finger|fingers|foot|arm|leg|face))\b",
            r"\bspark(?:s|ed|ing)\b",
            r"\belectric(?:al)? shock\b",
            r"\b(?:shocked|electrocuted) (?:me|my|him|her)\b",
            r"\bexplod(?:ed|ing|es)\b",
            r"\bmelt(?:ed|ing)\b",
            r"\bburn(?:ed|t|s)? (?:me|my|his|her|a hole)\b",
            r"\binjur(?:ed|y|ies)\b",
            r"\bhospital\b",
            r"\boverheat(?:ed|ing|s)\b",
            r"\bfeuer\b",
            r"\bincendie\b",
        ),
    ),
    (
        "legal_threat",
        "high",
        any_of(
            r"\b(?:lawyers?|attorneys?|solicitors?|legal action|lawsuit|sue|suing|small claims|court)\b",
            r"\b(?:trading standards|consumer protection)\b",
            r"\b(?:anwalt|avocat|abogado)\b",
        ),
    ),
    (
        "account_compromise",
        "high",
        any_of(
            r"\bhack(?:ed|er|ers)\b",
            r"\bcompromised\b",
            r"\b(?:someone|somebody) (?:else )?(?:got|logged|broke|has been|is|was) (?:into|in to|logging into) my account\b",
            r"\bchanged my (?:e-?mail|password)\b.{0,40}\b(?:without|not me|wasn'?t me)",
            r"\baccount takeover\b",
        ),
    ),
    (
        "payment_dispute",
        "high",
        any_of(
            r"\bcharge ?backs?\b",
            r"\bdisput(?:e|ed|ing) (?:the |a |this |that )?(?:charge|payment|transaction)",
            r"\bfraud",
            r"\bunauthori[sz]ed\b",
            r"\b(?:didn'?t|did not|never) authori[sz]e",
            r"\b(?:orders?|purchases?|charges?) (?:that )?i (?:didn'?t|did not|never) (?:make|made|place|placed)\b",
            r"\b(?:charged twice|double charged|double-charged)\b",
        ),
    ),
    ("bereavement", "normal", BEREAVEMENT),
    (
        "customer_requested_human",
        "normal",
        any_of(
            r"\b(?:real|actual|live) (?:person|human|agent|people)\b",
            r"\b(?:speak|talk|chat) (?:to|with) (?:a |an |your )?(?:human|person|agent|representative|rep|"
            r"manager|supervisor|someone|somebody|real)\b",
            r"\bhuman (?:agent|being|please)\b",
            r"\b(?:transfer|escalate|connect) me\b",
            r"\bescalat",
            r"\bmitarbeiter",
            r"\bmenschen?\b",
            r"\bconseiller\b",
            r"\bagente\b",
            r"\boperator\b",
        ),
    ),
)
_NEWER: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "safety_incident",
        "high",
        any_of(
            r"\b(?:burn(?:ed|t|s)?|scald(?:ed|s)?|bleed(?:ing|s)?|bled|choked|choking|electrocut\w*|"
            r"poisoned|concussion|stitches|bruised|fractured|broke (?:his|her|my|their) (?:arm|leg|"
            r"wrist|finger|nose|toe))\b",
            r"\b(?:emergency room|a&e|ambulance|paramedics?|fire brigade|fire department|911|999)\b",
            r"\b(?:gas leak|carbon monoxide|fumes|toxic smell)\b",
            r"\bswallow(?:ed|ing)\b",
            r"\b(?:fell|tipped|toppled|collapsed) (?:over )?(?:on(?:to)?|down on) (?:me|my|him|her|them|"
            r"our|the (?:baby|child|kid|dog|cat))\b",
            r"\b(?:hurt|injur\w*|wounded) (?:me|my|him|her|them|himself|herself|myself|ourselves)\b",
            r"\b(?:dangerous|unsafe|a (?:fire|safety) hazard)\b",
        ),
    ),
    (
        "legal_threat",
        "high",
        any_of(
            r"\blegal (?:action|proceedings|steps|team|advice|claim|department)\b",
            r"\b(?:ombudsman|regulator|better business bureau|bbb|lawyer(?:ed)? up)\b",
            r"\b(?:see you|take (?:you|this|it|them)(?: all the way)? to|taking (?:you|this|it) to) court\b",
            r"\b(?:report|reporting) (?:you|this|your company|lumen(?: home)?) to\b",
        ),
    ),
    (
        "payment_dispute",
        "high",
        any_of(
            r"\b(?:reverse|reversing|cancel|block|stop) (?:the|this|that|my) (?:charge|payment|"
            r"transaction)\b",
            r"\b(?:called|calling|call|contacted|contacting|contact|told) (?:my|the) (?:bank|card "
            r"(?:company|issuer|provider)|credit card company)\b",
            r"\b(?:bank|card issuer|card company) (?:dispute|claim|investigation)\b",
        ),
    ),
    (
        "bereavement",
        "normal",
        any_of(
            rf"\b(?:lost|losing) my (?:late )?{KIN}\b",
            r"\bpassed (?:on|last|recently|suddenly)\b",
            r"\b(?:widow(?:ed|er)?|condolences?|executor|probate|estate of|next of kin|memorial)\b",
            r"\b(?:has|had|just) died\b",
        ),
    ),
    (
        "customer_requested_human",
        "normal",
        any_of(
            r"\b(?:want|need|get me|put me through to|connect me (?:with|to)|give me|find me|"
            r"i'?d like|let me (?:speak|talk) (?:to|with)) (?:to (?:speak|talk) (?:to|with) )?(?:a |an |"
            r"your |one of your )?(?:human|real person|live (?:person|agent)|agent|representative|rep|"
            r"supervisor|manager|someone real|real human|staff member|member of staff|team member)\b",
            r"\bnot (?:a|this|the|your|another) (?:bot|robot|machine|chatbot|script|automated)\b",
            r"\b(?:speak|talk|chat) (?:to|with) (?:someone|somebody|anyone|a person|a human)\b",
            r"\bhuman beings?\b",
            r"\b(?:call|ring|phone) me(?: back)?\b",
            r"\b(?:customer service|support) (?:agent|rep|representative|person|team)\b",
        ),
    ),
)

# How a turn sounds when the customer is losing patience: exasperation, repetition,
# "still"/"again", shouting. Weighted; a turn at 2 or more is a frustrated one.
_EXASPERATION = any_of(
    r"\b(?:ridiculous|unacceptable|useless|pathetic|absurd|outrageous|terrible|awful|worst|"
    r"incompetent|hopeless|rubbish|appalling|disgraceful|shocking|infuriating|unbelievable)\b",
    r"\b(?:a )?(?:waste of (?:my )?time|fed up|sick (?:and tired )?of|had enough|enough is enough|"
    r"losing (?:my )?patience|lost (?:my )?patience|at (?:my|the) wits'? end)\b",
    r"\b(?:furious|angry|annoyed|frustrat\w*|livid|upset|fuming|pissed)\b",
    r"\b(?:seriously|for god'?s sake|wtf|are you (?:even|kidding|serious)|you'?re joking)\b",
    r"\b(?:not|isn'?t|aren'?t|doesn'?t|don'?t) (?:helpful|helping|help|listening|answering|working|"
    r"make sense)\b",
    r"\b(?:no help|going (?:round|around) in circles|same (?:answer|thing|reply|message|article|"
    r"response|script))\b",
    r"\b(?:how many|how often) (?:more )?times\b",
    r"\b(?:i|i'?ve|i have) (?:already |just )?(?:told|asked|said|explained|written)\b",
    r"\b(?:nobody|no one|noone) (?:is )?(?:helping|answers|answered|replied|cares|listens|gets back)\b",
    r"\b(?:last|final) (?:time|chance|warning)\b",
)
_INSISTENCE = any_of(r"\b(?:still|again|already|yet another|once more|repeat(?:ed|ing)?)\b")
_SHOUTING = re.compile(r"\b[A-Z]{4,}\b")
_PUNCTUATION = re.compile(r"[!?]{2,}|\?!|!\?")
_WORD = re.compile(r"[a-z0-9']{4,}")


def handoff_moment(norm: str) -> tuple[str, str] | None:
    """`(reason, priority)` of the moment in normalised text that needs a person, or None."""
    for table in (_CLASSIC, _NEWER):
        for reason, priority, pattern in table:
            if pattern.search(norm):
                return reason, priority
    return None


def _frustration(raw: str, earlier: Sequence[str]) -> int:
    norm = normalise(raw)
    score = 2 * len(_EXASPERATION.findall(norm))
    score += bool(_INSISTENCE.search(norm)) + bool(_PUNCTUATION.search(raw))
    score += bool(_SHOUTING.search(raw))
    words = set(_WORD.findall(norm))
    for before in earlier:
        seen = set(_WORD.findall(normalise(before)))
        if len(words) >= 3 and seen and len(words & seen) >= 0.6 * len(words):
            score += 2  # the same thing asked again
            break
    return score


def frustrated_turns(user_texts: Sequence[str]) -> bool:
    """Three user turns in a row with the customer's patience running out: at least three
    turns, and the last two each frustrated (the first is often the calm question)."""
    if len(user_texts) < 3:
        return False
    scores = [
        _frustration(text, user_texts[:index])
        for index, text in enumerate(user_texts[-2:], start=len(user_texts) - 2)
    ]
    return all(score >= 2 for score in scores)
