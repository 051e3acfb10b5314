"""`evals/scorecard.yaml`: the route under test, how to reach it, what it costs, and the bar.

The thresholds and budgets declared here are what the release gate judges a run against;
the run engine reads the target, prices, signals and run settings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from evalcore.suite.models import SourceKind, patterns_that_compile


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _block_name(name: str) -> str:
    """Prefect's rule for block names, checked when the scorecard is read, not at the run."""
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(
            f"{name!r} is not a Prefect block name (lowercase letters, digits and dashes)"
        )
    return name


# The name of a Prefect Secret block holding an API key.
BlockName = Annotated[str, AfterValidator(_block_name)]


def _api_key_block() -> Any:
    """Left out of the dump when unset, so scorecards written before it keep their version."""
    return Field(default=None, exclude_if=lambda name: name is None)


def _one_key_source(config: BaseModel) -> None:
    """The key comes from a variable or a block, never from both."""
    if getattr(config, "api_key_env", None) and getattr(config, "api_key_block", None):
        raise ValueError("give api_key_env or api_key_block, not both")


class OpenAIChatTarget(_Strict):
    """Any OpenAI-compatible `/chat/completions` endpoint."""

    kind: Literal["openai_chat"] = "openai_chat"
    base_url: str
    model: str
    api_key_env: str | None = None
    api_key_block: BlockName | None = _api_key_block()
    temperature: float | None = None
    max_tokens: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_key(self) -> OpenAIChatTarget:
        _one_key_source(self)
        return self


class HttpJsonTarget(_Strict):
    """Any HTTP service taking JSON: the body is a Jinja2 template, the answer is picked by path."""

    kind: Literal["http_json"] = "http_json"
    url: str
    method: Literal["POST", "PUT"] = "POST"
    body_template: str
    answer_path: str
    prompt_tokens_path: str | None = None
    completion_tokens_path: str | None = None
    tool_calls_path: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    api_key_block: BlockName | None = _api_key_block()
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_key(self) -> HttpJsonTarget:
        _one_key_source(self)
        return self


class PythonTarget(_Strict):
    """A `module:function` taking the case input dict, sync or async."""

    kind: Literal["python"] = "python"
    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    model: str | None = None
    threaded: bool = False  # run a sync callable in a worker thread (for blocking I/O)


TargetConfig = Annotated[
    OpenAIChatTarget | HttpJsonTarget | PythonTarget, Field(discriminator="kind")
]


class Price(_Strict):
    """USD per one million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class RefusalSignal(_Strict):
    """How a refusal shows in a reply: any of these case-insensitive regexes."""

    patterns: list[str] = Field(
        default_factory=lambda: [
            r"\bI can(?:no|')t help with\b",
            r"\bI(?: am|'m) (?:not able|unable) to (?:help|assist)\b",
            r"\bI won'?t (?:help|assist)\b",
            r"\bI can(?:no|')t (?:provide|assist|do that)\b",
        ]
    )

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        # Checked here, not at the first reply: a bad pattern would otherwise fail every
        # case of a run at scoring time.
        return patterns_that_compile(value)


class NeedsHumanSignal(_Strict):
    """How the route hands off to a person: a named tool call, a marker in the text, or both."""

    tool: str | None = "handoff_to_human"
    marker: str | None = None


class Signals(_Strict):
    refusal: RefusalSignal = Field(default_factory=RefusalSignal)
    needs_human: NeedsHumanSignal = Field(default_factory=NeedsHumanSignal)


class JudgeConfig(_Strict):
    """The LLM judge: any OpenAI-compatible endpoint; its cost is counted apart."""

    base_url: str
    model: str
    api_key_env: str | None = None
    api_key_block: BlockName | None = _api_key_block()
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_key(self) -> JudgeConfig:
        _one_key_source(self)
        return self


class RunSettings(_Strict):
    concurrency: int = Field(default=16, ge=1, le=10_000)
    rps: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    # Split a run's (case, sample) pairs over this many `run-shard` flow runs. Left out of
    # the dump at 1, so scorecards written before it keep their version (hash).
    shards: int = Field(default=1, ge=1, le=256, exclude_if=lambda shards: shards == 1)


class SetThresholds(_Strict):
    min_pass_rate: float = Field(ge=0.0, le=1.0)
    owner: str | None = None


class SetBudget(_Strict):
    """Limits on one set's results in a run, on top of the route-wide budgets."""

    latency_p50_ms: float | None = Field(default=None, gt=0)
    latency_p95_ms: float | None = Field(default=None, gt=0)
    cost_per_case_usd: float | None = Field(default=None, ge=0)
    cost_per_run_usd: float | None = Field(default=None, ge=0)


class Budgets(_Strict):
    latency_p50_ms: float | None = Field(default=None, gt=0)
    latency_p95_ms: float | None = Field(default=None, gt=0)
    cost_per_case_usd: float | None = Field(default=None, ge=0)
    cost_per_run_usd: float | None = Field(default=None, ge=0)
    max_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    owner: str | None = None
    # Left out of the dump when empty, so a scorecard without per-set budgets keeps the
    # version (hash) it had before they existed and its runs can still be resumed.
    sets: dict[str, SetBudget] = Field(default_factory=dict, exclude_if=lambda sets: not sets)


def _kept_unless(default: Any, **constraints: Any) -> Any:
    """A field left out of the dump at its default: a scorecard written before it existed
    keeps its version (hash), and its runs can still be resumed."""
    return Field(default=default, exclude_if=lambda value: value == default, **constraints)


class SampleRule(_Strict):
    """How the samples of one case combine: all must pass, or at least `min_passes`.

    On a route marked `nondeterministic`, a blocking case that fails in a gate is
    re-sampled with Wald's sequential probability ratio test between `required` (the pass
    probability a healthy case has) and `broken` (the one that means broken), with error
    rates `alpha` (failing a healthy case) and `beta` (passing a broken one), for at most
    `max_extra` more samples; when they run out the case is undecided.
    """

    mode: Literal["all", "at_least"] = "all"
    min_passes: int | None = Field(default=None, ge=1)
    nondeterministic: bool = _kept_unless(False)
    required: float = _kept_unless(0.95, gt=0.0, lt=1.0)
    broken: float = _kept_unless(0.5, gt=0.0, lt=1.0)
    alpha: float = _kept_unless(0.05, gt=0.0, lt=0.5)
    beta: float = _kept_unless(0.05, gt=0.0, lt=0.5)
    max_extra: int = _kept_unless(10, ge=1, le=1000)

    @model_validator(mode="after")
    def _min_needed(self) -> SampleRule:
        if self.mode == "at_least" and self.min_passes is None:
            raise ValueError("mode at_least needs min_passes")
        if self.broken >= self.required:
            raise ValueError(
                f"broken ({self.broken}) must be below required ({self.required}): a broken "
                "case passes less often than a healthy one must"
            )
        return self


class RegressionCheck(_Strict):
    """The gate's cases against the same cases in an earlier run of the route: the last
    passing gate run (`last_pass`) or a run id. Newly failing and newly fixed cases are
    listed; more than `max_new_failures` newly failing blocking cases fail the gate."""

    against: str = Field(default="last_pass", min_length=1)
    max_new_failures: int | None = Field(default=None, ge=0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)

    @field_validator("against", mode="before")
    @classmethod
    def _run_id_read_as_a_number(cls, value: Any) -> Any:
        """A run id of digits only, written unquoted, is the id it spells, not an error
        (YAML reads it as a number; ids made since start with a letter)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class Sensitivity(_Strict):
    """What a set can show: the smallest drop in pass rate detectable at `power` with
    `alpha` (default: drift.alpha), given its cases and samples."""

    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    alpha: float | None = Field(default=None, gt=0.0, lt=1.0)


class DriftSettings(_Strict):
    """Nightly monitoring against the accepted baseline.

    `method: sequential` (the default) tests set and tag pass rates, paired over the cases
    in both runs, with an anytime-valid e-process over every night since the baseline was
    accepted, the comparisons of a night combined by e-BH at min(`alpha`, `fdr`), so the
    chance of any false alarm over the baseline's life stays at that level; `per_night`
    tests each night alone (BH at `fdr`). Case flips, latency, cost and the error rate are
    tested per night.
    A latency or cost alarm needs significance and a change that matters: at least
    `min_latency_change_ms` / `min_cost_change_usd`, and at least `min_budget_fraction` of
    the route's budget for it when there is one.
    """

    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    fdr: float = Field(default=0.1, gt=0.0, lt=1.0)
    min_effect: float = Field(default=0.05, ge=0.0, le=1.0)
    timezone: str = "UTC"
    method: Literal["sequential", "per_night"] = _kept_unless("sequential")
    min_latency_change_ms: float = _kept_unless(50.0, ge=0.0)
    min_cost_change_usd: float = _kept_unless(0.0, ge=0.0)
    min_budget_fraction: float = _kept_unless(0.1, ge=0.0, le=1.0)


class Freshness(_Strict):
    """How old a document may be before the route must not rely on it: the fixture
    generator's stale records are dated past this limit."""

    max_age_days: int = Field(default=365, ge=1)


class ToMonitoring(_Strict):
    """Backlog cases (generated fixtures among them) proposed for the monitoring set."""

    sources: list[SourceKind] = Field(default_factory=lambda: [SourceKind.fixture])
    max_per_digest: int = Field(default=10, ge=0)


class ToBlocking(_Strict):
    """Monitoring cases proposed for the blocking set once stable and passing: every
    sample of every nightly run passed on each of the last `nights` nights that had one,
    with the case as it is written now."""

    nights: int = Field(default=7, ge=1)
    max_per_digest: int = Field(default=10, ge=0)


class Graduation(_Strict):
    """When a case is *proposed* for promotion. An owner of the case's scope decides in the
    weekly digest; nothing moves on its own."""

    to_monitoring: ToMonitoring = Field(default_factory=ToMonitoring)
    to_blocking: ToBlocking = Field(default_factory=ToBlocking)
    owner: str | None = None  # may decide every promotion, beside the owners of its scope


def _is_default(value: BaseModel) -> bool:
    return value == type(value)()


class Scorecard(_Strict):
    route: str = Field(min_length=1)
    owner: str | None = None
    target: TargetConfig
    prices: dict[str, Price] = Field(default_factory=dict)
    signals: Signals = Field(default_factory=Signals)
    judge: JudgeConfig | None = None
    run: RunSettings = Field(default_factory=RunSettings)
    thresholds: dict[str, SetThresholds] = Field(default_factory=dict)
    tag_thresholds: dict[str, SetThresholds] = Field(default_factory=dict)
    budgets: Budgets = Field(default_factory=Budgets)
    samples: SampleRule = Field(default_factory=SampleRule)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    # Left out of the dump at their defaults: a scorecard written before these sections
    # existed keeps its version (hash).
    regression: RegressionCheck | None = Field(default=None, exclude_if=lambda v: v is None)
    sensitivity: Sensitivity = Field(default_factory=Sensitivity, exclude_if=_is_default)
    freshness: Freshness = Field(default_factory=Freshness, exclude_if=_is_default)
    graduation: Graduation = Field(default_factory=Graduation, exclude_if=_is_default)

    def price_for(self, model: str | None) -> Price | None:
        if model is None:
            return None
        return self.prices.get(model)
