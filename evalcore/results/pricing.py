"""Which of a run's costs are known.

A call is priced by the scorecard's `prices` entry for the model that answered it: the
target's `model` for the route's own calls, the judge's `model` for the judge's. A model
with no entry there, or a target that names no model, leaves that cost unknown. Unknown
is never shown as $0: the summary, the verdict, the stats, trends and the digest say
"unknown" and why, and a cost budget over an unknown cost cannot be checked (its
criterion is not measurable, which makes the verdict inconclusive).

A run records what it could not price when it starts (`UNPRICED_KEY` in its settings,
from the scorecard and the `--model` it ran with, the judge counted only when one of its
cases asks for it). A run stored before that is read from the scorecard stored with it,
its judge counted whenever the scorecard names one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalcore.store.tables import RunRow

# In a run's settings: {"target": why, "judge": why} for each cost the run cannot know;
# {} when every call it makes is priced.
UNPRICED_KEY = "unpriced"


@dataclass(frozen=True)
class Pricing:
    """Why the route's cost (`target`) and the judge's cost (`judge`) are unknown; None
    where the cost is known."""

    target: str | None = None
    judge: str | None = None

    @property
    def cost_known(self) -> bool:
        return self.target is None

    @property
    def judge_cost_known(self) -> bool:
        return self.judge is None

    def as_json(self) -> dict[str, str]:
        """What a run's settings and stats keep: only the costs that are unknown."""
        return {name: why for name, why in (("target", self.target), ("judge", self.judge)) if why}

    @classmethod
    def from_json(cls, recorded: Mapping[str, Any] | None) -> Pricing:
        recorded = recorded or {}
        target, judge = recorded.get("target"), recorded.get("judge")
        return cls(
            target=str(target) if target else None,
            judge=str(judge) if judge else None,
        )


PRICED = Pricing()


def no_price(model: str | None, *, role: str = "target") -> str:
    """Why a call of `model` cannot be priced."""
    if model is None:
        return f"the {role} names no model, so no entry under `prices` applies"
    return f"model {model!r} has no price under `prices`"


def missing_prices(
    prices: Mapping[str, Any],
    *,
    target_model: str | None,
    judge_model: str | None = None,
    judged: bool = False,
) -> Pricing:
    """What a run of `target_model` (and, when `judged`, the judge `judge_model`) cannot
    price with these `prices`."""
    target_priced = target_model is not None and target_model in prices
    judge_priced = not judged or (judge_model is not None and judge_model in prices)
    return Pricing(
        target=None if target_priced else no_price(target_model, role="target"),
        judge=None if judge_priced else no_price(judge_model, role="judge"),
    )


def run_pricing(run: RunRow) -> Pricing:
    """What the run could not price: as it recorded when it started, else from the
    scorecard stored with it (nothing, for a run stored without a target or prices)."""
    settings = run.settings or {}
    recorded = settings.get(UNPRICED_KEY)
    if isinstance(recorded, Mapping):
        return Pricing.from_json(recorded)
    snapshot = run.scorecard or {}
    prices = snapshot.get("prices")
    target = run.target_config or snapshot.get("target")
    if not isinstance(prices, Mapping) or not isinstance(target, Mapping):
        return PRICED
    judge = snapshot.get("judge")
    judge_model = judge.get("model") if isinstance(judge, Mapping) else None
    return missing_prices(
        prices,
        target_model=target.get("model"),
        judge_model=judge_model,
        judged=isinstance(judge, Mapping),
    )
