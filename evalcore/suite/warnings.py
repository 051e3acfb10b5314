"""What `evalcore validate` warns about: patterns that load fine but may stall scoring, and
thresholds that ask for more than their cases can show.

A regex whose repeated part holds a repeat of its own, such as `(a+)+$` or `(\\w+\\s?)*$`,
can try exponentially many ways to split a reply that almost matches. Scoring gives up on
such a search after a time limit and records the case as an error; the warning asks for
the fix before a run does. Patterns are read by the standard library's own parser, so the
check sees exactly what `re` sees (verbose mode, escapes, sets). It looks for nested
quantifiers only; the time limit covers the rest, such as overlapping alternatives.

A model with no entry under the scorecard's `prices` (or a target that names no model)
leaves the cost of every call unknown: runs say "unknown", never $0, and a cost budget
cannot be checked (a gate with one is inconclusive). The target's model is warned about
always, the judge's when a case asks for the judge. A `--model` given on the command line
is not known here; a run against it reports an unpriced cost the same way.

A tag threshold of `1 - x` tolerates a drop of `x`; when the tag's cases cannot detect a
drop of `x` (`evalcore.suite.sensitivity`), the threshold promises more than a run of them
can tell. Likewise a `drift.min_effect` smaller than what the monitoring set can detect
asks the nightly monitor for drops it will mostly miss.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from evalcore.suite.errors import SuiteError, SuiteIssue
from evalcore.suite.loader import Suite
from evalcore.suite.sensitivity import DetectableDrop, suite_sensitivity
from evalcore.suite.yaml_lines import YamlDocument, YamlPath, parse_yaml

# `re`'s parser is private, but it is the one reading of a pattern that agrees with `re`.
_parser: Any = importlib.import_module("re._parser")
_BACKTRACKING_REPEATS = (_parser.MAX_REPEAT, _parser.MIN_REPEAT)

_ADVICE = (
    "repeats a part that itself repeats: where both can match the same text, a reply that "
    "almost matches makes it backtrack without end (scoring then gives up and records an "
    "error); make a quantifier possessive (`a++`), wrap the inner part in an atomic group "
    "`(?>...)`, or write it so the text can match one way only"
)


@functools.lru_cache(maxsize=4_096)
def nests_quantifiers(pattern: str) -> bool:
    """Whether a repeated part of `pattern` holds a quantifier that can give text back."""
    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return False  # the loader reports a pattern that does not compile
    return _nested(parsed, repeated=False)


def _repeats(low: int, high: int) -> bool:
    """`+`, `*` or `{2,5}`: more than one repetition, and a choice of how many."""
    return high > 1 and high > low


def _nested(items: Iterable[tuple[Any, Any]], *, repeated: bool) -> bool:
    """Whether `items` (parsed `re` opcodes) hold a backtracking repeat inside a repeat.

    `repeated`: `items` sit inside a backtracking repeat of more than one item. A possessive
    repeat, an atomic group or a lookaround gives nothing back once done, so it starts afresh.
    """
    for op, arg in items:
        if op in _BACKTRACKING_REPEATS:
            low, high, body = arg
            if repeated and _repeats(low, high):
                return True
            found = _nested(body, repeated=repeated or high > 1)
        elif op == _parser.POSSESSIVE_REPEAT:
            found = _nested(arg[2], repeated=False)
        elif op == _parser.ATOMIC_GROUP:
            found = _nested(arg, repeated=False)
        elif op in (_parser.ASSERT, _parser.ASSERT_NOT):
            found = _nested(arg[1], repeated=False)
        elif op == _parser.SUBPATTERN:
            found = _nested(arg[3], repeated=repeated)
        elif op == _parser.BRANCH:
            found = any(_nested(branch, repeated=repeated) for branch in arg[1])
        elif op == _parser.GROUPREF_EXISTS:
            found = any(_nested(branch, repeated=repeated) for branch in arg[1:] if branch)
        else:
            found = False
        if found:
            return True
    return False


def _warning(file: Path, line: int | None, field: str, pattern: str) -> SuiteIssue:
    return SuiteIssue(file, line, field, f"regex {pattern!r} {_ADVICE}")


def suite_warnings(suite: Suite) -> list[SuiteIssue]:
    """Every risky pattern of the cases and of the scorecard's refusal signal, and every
    model the scorecard cannot price, in file order."""
    warnings = pattern_warnings(suite) + price_warnings(suite)
    warnings.sort(key=SuiteIssue.sort_key)
    return warnings


def price_warnings(suite: Suite) -> list[SuiteIssue]:
    """The target's model, and the judge's when a case asks for the judge, where it has no
    entry under `prices`: named at its line in scorecard.yaml."""
    scorecard = suite.scorecard
    budgets = scorecard.budgets
    cost_budgets = [
        f"budgets.{name}"
        for name in ("cost_per_case_usd", "cost_per_run_usd")
        if getattr(budgets, name) is not None
    ] + [
        f"budgets.sets.{set_name}.{name}"
        for set_name, limits in sorted(budgets.sets.items())
        for name in ("cost_per_case_usd", "cost_per_run_usd")
        if getattr(limits, name) is not None
    ]
    found: list[tuple[YamlPath, str, str]] = []
    model = scorecard.target.model
    if model is None or model not in scorecard.prices:
        consequence = (
            f"the cost budgets ({', '.join(cost_budgets)}) cannot be checked, so a gate "
            "with them is inconclusive"
            if cost_budgets
            else "no cost budget is set, so no verdict depends on it"
        )
        if model is None:
            found.append(
                (
                    ("target",),
                    "target",
                    "the target names no model, so no entry under `prices` applies: runs "
                    f"will report their cost as unknown, not $0, and {consequence}; name the "
                    "model (`model:`) and give its price under `prices`",
                )
            )
        else:
            found.append(
                (
                    ("target", "model"),
                    "target.model",
                    f"model {model!r} has no price under `prices`: runs will report their "
                    f"cost as unknown, not $0, and {consequence}; add `{model}: "
                    "{input_per_mtok: ..., output_per_mtok: ...}` under `prices`",
                )
            )
    judge = scorecard.judge
    if (
        judge is not None
        and judge.model not in scorecard.prices
        and any(case.expect.judge for case in suite.cases)
    ):
        found.append(
            (
                ("judge", "model"),
                "judge.model",
                f"model {judge.model!r} has no price under `prices`: runs will report the "
                "judge's cost as unknown, not $0 (it is kept apart from the route's cost and "
                f"its budgets); add `{judge.model}: {{input_per_mtok: ..., output_per_mtok: "
                "...}` under `prices`",
            )
        )
    return _in_scorecard(suite, found)


def pattern_warnings(suite: Suite) -> list[SuiteIssue]:
    """Every risky pattern of the cases and of the scorecard's refusal signal, in file order.

    Lines are looked up in the files only for the patterns flagged, and left out when a
    file changed since the suite was loaded.
    """
    flagged: dict[Path, list[tuple[str, int, str]]] = {}
    for case in suite.cases:
        for index, pattern in enumerate(case.expect.regex):
            if nests_quantifiers(pattern):
                flagged.setdefault(suite.case_files[case.id], []).append((case.id, index, pattern))
    warnings = []
    for file, found in flagged.items():
        lines = _case_pattern_lines(file, found)
        for case_id, index, pattern in found:
            line = lines.get((case_id, index))
            warnings.append(_warning(file, line, "expect.regex", pattern))
    refusal = [
        (index, pattern)
        for index, pattern in enumerate(suite.scorecard.signals.refusal.patterns)
        if nests_quantifiers(pattern)
    ]
    if refusal:
        scorecard_file = suite.root / "scorecard.yaml"
        scorecard = _yaml(scorecard_file)
        for index, pattern in refusal:
            path = ("signals", "refusal", "patterns", index)
            line = None if scorecard is None else scorecard.lines.line_of(path)
            warnings.append(_warning(scorecard_file, line, "signals.refusal.patterns", pattern))
    warnings.sort(key=SuiteIssue.sort_key)
    return warnings


def sensitivity_warnings(
    suite: Suite, sensitivity: list[DetectableDrop] | None = None
) -> list[SuiteIssue]:
    """Tag thresholds and `drift.min_effect` that ask for a drop smaller than their cases
    can detect, at the scorecard's line (`sensitivity`: `suite_sensitivity(suite)`, if
    already computed)."""
    scorecard = suite.scorecard
    rows = suite_sensitivity(suite) if sensitivity is None else sensitivity
    by_scope = {row.scope: row for row in rows}
    found: list[tuple[YamlPath, str, str]] = []  # (yaml path, field, message)
    for tag, threshold in scorecard.tag_thresholds.items():
        allowed = 1.0 - threshold.min_pass_rate
        row = by_scope.get(f"tag:{tag}")
        if row is None or allowed <= 0.0 or row.can_detect(allowed):
            continue  # 1.0: every case must pass, which needs no statistics
        found.append(
            (
                ("tag_thresholds", tag, "min_pass_rate"),
                f"tag_thresholds.{tag}.min_pass_rate",
                f"{threshold.min_pass_rate:g} leaves room for a drop of {allowed * 100:.1f} "
                f"points, but {_cannot(row)}: add cases or samples with this tag",
            )
        )
    min_effect = scorecard.drift.min_effect
    monitoring = by_scope.get("set:monitoring")
    if monitoring is not None and min_effect > 0.0 and not monitoring.can_detect(min_effect):
        found.append(
            (
                ("drift", "min_effect"),
                "drift.min_effect",
                f"{min_effect:g} asks the nightly monitor for drops of {min_effect * 100:.1f} "
                f"points, but the monitoring set's {_cannot(monitoring)}: add cases or samples "
                "to it, or raise min_effect",
            )
        )
    return sorted(_in_scorecard(suite, found), key=SuiteIssue.sort_key)


def _in_scorecard(suite: Suite, found: list[tuple[YamlPath, str, str]]) -> list[SuiteIssue]:
    """Warnings about scorecard.yaml, each (YAML path, field, message) at its line; the
    file is read only when there is something to say."""
    if not found:
        return []
    scorecard_file = suite.root / "scorecard.yaml"
    document = _yaml(scorecard_file)
    return [
        SuiteIssue(
            scorecard_file,
            None if document is None else document.lines.line_of(path),
            field,
            message,
        )
        for path, field, message in found
    ]


def _cannot(row: DetectableDrop) -> str:
    """'8 cases x 1-3 samples can detect no drop smaller than 38.5 points (80% power, ...)'."""
    odds = f"{row.power:.0%} power, one-sided alpha {row.alpha:g}"
    if row.drop is None:
        return f"{row.size} cannot detect even a drop to a pass rate of 0 ({odds})"
    return f"{row.size} can detect no drop smaller than {row.drop_points:.1f} points ({odds})"


def _yaml(file: Path) -> YamlDocument | None:
    try:
        return parse_yaml(file.read_text(encoding="utf-8-sig"), file)
    except (OSError, UnicodeDecodeError, SuiteError):
        return None


def _case_pattern_lines(
    file: Path, found: list[tuple[str, int, str]]
) -> dict[tuple[str, int], int]:
    """The line of each (case id, pattern index) in `file`: a JSONL case has one line."""
    case_ids = {case_id for case_id, _, _ in found}
    if file.suffix == ".jsonl":
        by_id = _jsonl_lines(file, case_ids)
        return {(c, i): by_id[c] for c, i, _ in found if c in by_id}
    doc = _yaml(file)
    entries = doc.data if doc is not None and isinstance(doc.data, list) else []
    positions = {
        entry["id"]: position
        for position, entry in enumerate(entries)
        if isinstance(entry, dict) and entry.get("id") in case_ids
    }
    lines: dict[tuple[str, int], int] = {}
    for case_id, index, _ in found:
        position = positions.get(case_id)
        if doc is None or position is None:
            continue
        line = doc.lines.line_of((position, "expect", "regex", index))
        if line is not None:
            lines[(case_id, index)] = line
    return lines


def _jsonl_lines(file: Path, case_ids: set[str]) -> dict[str, int]:
    """The line of each of `case_ids` in a JSONL file (one case per line)."""
    found: dict[str, int] = {}
    try:
        with file.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    entry = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
                except orjson.JSONDecodeError:
                    continue
                case_id = entry.get("id") if isinstance(entry, dict) else None
                if case_id in case_ids and case_id not in found:
                    found[case_id] = number
    except OSError:
        pass
    return found
