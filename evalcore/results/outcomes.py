"""Each case's outcome, as the verdict takes it: its samples combined by the scorecard's
`samples` rule, and on a nondeterministic route a failing blocking case judged by the
sequential test over all its samples.

One place for it, so that a "pass rate" means one thing wherever it is shown: the share
of cases that passed, among those the rule could decide (a case whose samples errored,
or that the sequential test left undecided, is not scored). `CaseJudge` decides one case
at a time, so a summary reading a run's results as a stream needs no second pass.

The gate draws the extra samples and records which cases it re-sampled, with their own
sample count, in the run's settings (`RESAMPLED_KEY`), so the samples beyond it are known
as extra wherever the run is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from evalcore.results.loader import CaseResults
from evalcore.results.sequential import CaseDecision, Decision, SequentialTest, decide_case
from evalcore.store.tables import RunRow
from evalcore.suite.scorecard import SampleRule

# The set whose failing cases a gate re-samples on a nondeterministic route.
RESAMPLED_SET = "blocking"
# In a run's settings: case id -> the case's own sample count, for each case the gate
# re-sampled (the samples past that count are extra).
RESAMPLED_KEY = "resampled"


def case_passed(case: CaseResults, rule: SampleRule) -> bool | None:
    """How the samples combine (the scorecard's `samples` rule); None when nothing scored.

    With `all`, an errored sample leaves the case undecided unless another sample already
    failed it. With `at_least m`, m is capped at the samples the case has.
    """
    scored = case.scored
    if rule.mode == "all":
        if not all(scored):
            return False
        return None if case.errors or not scored else True
    needed = min(rule.min_passes or 1, len(case.samples))
    passes = sum(scored)
    if passes >= needed:
        return True
    if passes + case.errors >= needed:
        return None  # the errored samples could still have made it
    return False


def resampled_cases(settings: Mapping[str, Any]) -> dict[str, int]:
    """The cases a gate re-sampled, each with its own sample count, from a run's settings."""
    recorded = settings.get(RESAMPLED_KEY) or {}
    return {str(case_id): int(planned) for case_id, planned in recorded.items()}


def sample_rule_of(run: RunRow) -> SampleRule:
    """The samples rule of the scorecard stored with the run (the default for a run stored
    without one)."""
    return SampleRule.model_validate((run.scorecard or {}).get("samples") or {})


class CaseJudge:
    """Decides cases one at a time, as `case_outcomes` does for a whole run."""

    def __init__(self, rule: SampleRule, resampled: Mapping[str, int] | None = None) -> None:
        self.rule = rule
        self.resampled = dict(resampled or {})
        self.test = SequentialTest.of(rule) if rule.nondeterministic else None

    @classmethod
    def of_run(cls, run: RunRow) -> CaseJudge:
        """Judging the run's cases by its own scorecard and re-sampled cases."""
        return cls(sample_rule_of(run), resampled_cases(run.settings or {}))

    def outcome(self, case: CaseResults) -> tuple[bool | None, CaseDecision | None]:
        """The case's outcome (None: undecided, by errors or by the sequential test) and,
        for a failing blocking case of a nondeterministic route, the sequential decision.

        A case in `resampled` failed with its own samples (that is why it was re-sampled)
        and is judged on all of them; any other case by the samples rule first.
        """
        planned = self.resampled.get(case.case_id)
        outcome = case_passed(case, self.rule) if planned is None else False
        if self.test is None or outcome is not False or case.set != RESAMPLED_SET:
            return outcome, None
        decision = decide_case(
            self.test,
            case.case_id,
            [s.passed for s in case.samples],
            len(case.samples) if planned is None else planned,
        )
        return {Decision.healthy: True, Decision.broken: False}.get(decision.decision), decision


def case_outcomes(
    cases: Iterable[CaseResults], rule: SampleRule, resampled: Mapping[str, int] | None = None
) -> tuple[dict[str, bool | None], list[CaseDecision]]:
    """Each case's outcome (None: undecided, by errors or by the sequential test), and the
    sequential decisions of the failing blocking cases of a nondeterministic route."""
    judge = CaseJudge(rule, resampled)
    outcomes: dict[str, bool | None] = {}
    decisions: list[CaseDecision] = []
    for case in cases:
        outcome, decision = judge.outcome(case)
        outcomes[case.case_id] = outcome
        if decision is not None:
            decisions.append(decision)
    return outcomes, sorted(decisions, key=lambda d: d.case_id)
