"""A run's stored results, read once: what the verdict, drift, the summary and the run's
stats all compute from.

Nightly runs hold tens of thousands of results, so the rows go straight from the driver's
cursor (as `insert_results` writes them) and become `CaseResults` in one pass, in case
order from the (run, case, sample) unique index; tags are parsed once per distinct JSON
text. A plain cursor also reads without opening a write transaction on SQLite (the
engine's `BEGIN IMMEDIATE`), so it never waits on writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy.engine import Engine

from evalcore.collector import collector_paused
from evalcore.store.repository import get_run
from evalcore.store.tables import RunRow


class SampleResult(NamedTuple):
    """One sample of a case (a tuple: runs build tens of thousands of them at a time)."""

    passed: bool | None  # None: the sample is an error
    latency_ms: float | None
    cost_usd: float
    judge_cost_usd: float


class CaseResults(NamedTuple):
    """All samples of one case in a run, with what the verdict needs to know of the case."""

    case_id: str
    set: str
    severity: str
    tags: tuple[str, ...]
    samples: tuple[SampleResult, ...]

    @property
    def scored(self) -> list[bool]:
        return [s.passed for s in self.samples if s.passed is not None]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if s.passed is None)

    @property
    def flaky(self) -> bool:
        """Mixed results at a fixed dataset version and target."""
        scored = self.scored
        return bool(scored) and any(scored) and not all(scored)


@dataclass(frozen=True)
class FailedSample:
    """A failed sample with its scores, for the lines that say why it failed."""

    case_id: str
    sample: int
    scores: dict[str, Any]


@dataclass(frozen=True)
class ErroredSample:
    """A sample that got no verdict: the target's (or a scorer's) error, by class."""

    case_id: str
    sample: int
    error_class: str
    message: str


@dataclass(frozen=True)
class RunResults:
    """A run's results by case, with each case's hash in the run's dataset version.

    Equal when the same results were read: `run` is the row they belong to, not compared.
    """

    run: RunRow = field(compare=False, repr=False)
    cases: list[CaseResults]
    # case id -> case hash for every case of the dataset version, when asked for (drift
    # compares them; nothing else needs 100,000 hashes in memory)
    hashes: dict[str, str] | None
    errors_by_class: dict[str, int] = field(default_factory=dict)
    failures: list[FailedSample] = field(default_factory=list)  # the first ones, if asked
    errored: list[ErroredSample] = field(default_factory=list)  # the first ones, if asked

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def dataset_hash(self) -> str:
        return self.run.dataset_hash


@dataclass
class StreamedResults:
    """A run's results read case by case in one pass, for what only sums them (the summary,
    the run's stats): `errors_by_class` is complete once `cases` is exhausted."""

    run: RunRow
    cases: Iterator[CaseResults]
    errors_by_class: dict[str, int]
    failures: list[FailedSample]
    errored: list[ErroredSample] = field(default_factory=list)


_HASHES_SQL = "SELECT case_id, case_hash FROM dataset_case WHERE dataset_hash = {marker}"
# Each result with its case's severity and tags from the run's dataset version (NULL for a
# case no longer in it), in (case, sample) order from the unique index.
_RESULTS_SQL = (
    'SELECT r.case_id, r."set", r.passed, r.latency_ms, r.cost_usd, r.judge_cost_usd, '
    "r.error_class, d.severity, d.tags FROM case_result r LEFT JOIN dataset_case d "
    "ON d.dataset_hash = {marker} AND d.case_id = r.case_id "
    "WHERE r.run_id = {marker} ORDER BY r.case_id, r.sample"
)
_FAILURES_SQL = (
    "SELECT case_id, sample, scores FROM case_result WHERE run_id = {marker} AND NOT passed "
    "ORDER BY case_id, sample LIMIT {marker}"
)
_ERRORED_SQL = (
    "SELECT case_id, sample, error_class, error_message FROM case_result "
    "WHERE run_id = {marker} AND passed IS NULL ORDER BY case_id, sample LIMIT {marker}"
)
_PASSED: dict[object, bool | None] = {None: None, 0: False, 1: True}  # SQLite's 0/1, PG's bools


def load_results(
    engine: Engine, run: RunRow | str, *, failures: int = 0, hashes: bool = False
) -> RunResults:
    """The results of `run` (a row already read, or an id or unique id prefix) by case, plus
    the scores of its first `failures` failed samples, the errors of as many errored ones,
    and its dataset's case hashes, when asked. An unknown run is a KeyError."""
    with collector_paused(), read_results(engine, run, failures=failures) as streamed:
        case_hashes = _case_hashes(engine, streamed.run) if hashes else None
        cases = list(streamed.cases)
    return RunResults(
        streamed.run,
        cases,
        case_hashes,
        streamed.errors_by_class,
        streamed.failures,
        streamed.errored,
    )


@contextmanager
def read_results(
    engine: Engine, run: RunRow | str, *, failures: int = 0
) -> Iterator[StreamedResults]:
    """The results of `run` as they are read, case by case, in one query: the rows are
    fetched in batches and grouped as they come, so summing a run of 100,000 results needs
    no more memory than one batch. `failures`: how many failed samples (with their scores)
    and errored ones (with their class and message) to read first."""
    if isinstance(run, str):
        found = get_run(engine, run)
        if found is None:
            raise KeyError(run)
        run = found
    marker = _marker(engine)
    with engine.connect() as conn, closing(conn.connection.cursor()) as cursor:
        failed: list[FailedSample] = []
        if failures > 0:
            cursor.execute(_FAILURES_SQL.format(marker=marker), (run.id, failures))
            failed = [
                FailedSample(case_id, sample, orjson.loads(scores) if scores else {})
                for case_id, sample, scores in cursor.fetchall()
            ]
        errored: list[ErroredSample] = []
        if failures > 0:
            cursor.execute(_ERRORED_SQL.format(marker=marker), (run.id, failures))
            errored = [
                ErroredSample(case_id, sample, error_class or "error", message or "")
                for case_id, sample, error_class, message in cursor.fetchall()
            ]
        cursor.execute(_RESULTS_SQL.format(marker=marker), (run.dataset_hash, run.id))
        errors_by_class: dict[str, int] = {}
        yield StreamedResults(
            run, _cases(_batches(cursor), errors_by_class), errors_by_class, failed, errored
        )


def _marker(engine: Engine) -> str:
    return "?" if engine.dialect.name == "sqlite" else "%s"


def _case_hashes(engine: Engine, run: RunRow) -> dict[str, str]:
    with engine.connect() as conn, closing(conn.connection.cursor()) as cursor:
        cursor.execute(_HASHES_SQL.format(marker=_marker(engine)), (run.dataset_hash,))
        return {case_id: case_hash for case_id, case_hash in _batches(cursor)}


def _batches(cursor: Any, size: int = 5_000) -> Iterator[Sequence[Any]]:
    """The rows of the cursor's last query, fetched `size` at a time."""
    while batch := cursor.fetchmany(size):
        yield from batch


def _cases(rows: Iterable[Sequence[Any]], errors_by_class: dict[str, int]) -> Iterator[CaseResults]:
    """Result rows in case order grouped by case, counting the errors by class into
    `errors_by_class`. Tags are parsed once per distinct JSON text and severities shared,
    so a case costs only its own id and numbers."""
    new = tuple.__new__  # a NamedTuple built without its Python-level __new__: a third faster
    passed_of = _PASSED
    parsed_tags: dict[str | None, tuple[str, ...]] = {None: ()}
    shared: dict[str, str] = {}
    current: str | None = None
    head: tuple[str, str, str, tuple[str, ...]] = ("", "", "", ())
    samples: list[SampleResult] = []
    for row in rows:
        case_id, set_, passed, latency_ms, cost_usd, judge_cost_usd, error_class = row[:7]
        if case_id != current:
            if current is not None:
                yield new(CaseResults, (*head, tuple(samples)))
            raw_tags = row[8]
            tags = parsed_tags.get(raw_tags)
            if tags is None:
                tags = parsed_tags[raw_tags] = tuple(orjson.loads(raw_tags))
            severity = row[7] or "medium"  # a case no longer in the run's dataset
            head = (
                case_id,
                shared.setdefault(set_, set_),
                shared.setdefault(severity, severity),
                tags,
            )
            current, samples = case_id, []
        samples.append(new(SampleResult, (passed_of[passed], latency_ms, cost_usd, judge_cost_usd)))
        if error_class is not None:
            errors_by_class[error_class] = errors_by_class.get(error_class, 0) + 1
    if current is not None:
        yield new(CaseResults, (*head, tuple(samples)))
