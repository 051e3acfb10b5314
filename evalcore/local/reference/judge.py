"""Judge mode: the reference target grades rubrics too, so `expect.judge` runs offline.

A request whose first system message starts with `JUDGE_SYSTEM_PREFIX` is answered with
JSON `{"score", "reason"}` instead of a support reply.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["JUDGE_SYSTEM_PREFIX", "judge_verdict"]

JUDGE_SYSTEM_PREFIX = "You are an evaluation judge."

_QUOTED = re.compile(r"(?<![\w])'([^'\n]+?)'(?![\w])|\"([^\"\n]+)\"")


def judge_verdict(prompt: str) -> dict[str, Any]:
    """Score = share of the rubric's quoted phrases found (case-insensitively) in OUTPUT.

    The prompt holds `RUBRIC:\\n...\\n\\nINPUT:\\n...\\n\\nOUTPUT:\\n...`. A rubric that
    quotes nothing scores 1.0 for any non-empty output; an empty output scores 0.0.
    """
    start = prompt.find("RUBRIC:")
    rubric_start = start + len("RUBRIC:") if start >= 0 else 0
    input_at = prompt.find("\n\nINPUT:", rubric_start)
    output_at = prompt.find("\n\nOUTPUT:", input_at if input_at >= 0 else rubric_start)
    rubric_end = input_at if input_at >= 0 else (output_at if output_at >= 0 else len(prompt))
    rubric = prompt[rubric_start:rubric_end] if start >= 0 else ""
    output = prompt[output_at + len("\n\nOUTPUT:") :].strip() if output_at >= 0 else ""
    phrases = list(dict.fromkeys((a or b).strip() for a, b in _QUOTED.findall(rubric)))
    phrases = [p for p in phrases if p]
    if not output:
        return {"score": 0.0, "reason": "the output is empty"}
    if not phrases:
        return {"score": 1.0, "reason": "the rubric quotes no phrases and the output is not empty"}
    lowered = output.lower()
    missing = [p for p in phrases if p.lower() not in lowered]
    score = round((len(phrases) - len(missing)) / len(phrases), 4)
    if not missing:
        return {"score": score, "reason": f"all {len(phrases)} required phrases are present"}
    listed = ", ".join(f"'{p}'" for p in missing)
    return {
        "score": score,
        "reason": f"missing {listed} ({len(phrases) - len(missing)} of {len(phrases)} present)",
    }
