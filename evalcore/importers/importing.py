"""`evalcore import`: a converter reads the source, the common steps plan the cases, and
the plan is written, all or nothing. Bad input is refused before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalcore.importers.conversion import (
    BudgetFound,
    Conversion,
    ConvertOptions,
    ImportRefused,
    NotConverted,
)
from evalcore.importers.plan import (
    DEFAULT_PREFIX,
    ImportPlan,
    check_into,
    check_out,
    check_prefix,
    default_out,
    plan_import,
)
from evalcore.importers.write import write_import
from evalcore.suite import Suite

Converter = Callable[[Path, ConvertOptions], Conversion]
FORMATS = ("promptfoo", "openai-evals", "inspect", "csv")

# Where a limit found in a source belongs in the scorecard; promptfoo's limits are per
# call, the nearest budget is named and the owner decides.
BUDGET_FIELDS = {"cost": "cost_per_case_usd", "latency": "latency_p95_ms"}


def converter(format_name: str) -> Converter:
    """The format's converter, imported only when asked for."""
    if format_name == "promptfoo":
        from evalcore.importers.promptfoo import convert_promptfoo

        return convert_promptfoo
    if format_name == "openai-evals":
        from evalcore.importers.openai_evals import convert_openai_evals

        return convert_openai_evals
    if format_name == "inspect":
        from evalcore.importers.inspect_samples import convert_inspect

        return convert_inspect
    if format_name == "csv":
        from evalcore.importers.spreadsheet import convert_csv

        return convert_csv
    raise ImportRefused(f"unknown format {format_name!r} (known: {', '.join(FORMATS)})")


@dataclass(frozen=True)
class BudgetLine:
    """One distinct limit found, how often, where first, and the scorecard budget it
    belongs to with the value set there now."""

    kind: str
    limit: float
    count: int
    first: str
    field: str
    current: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "limit": self.limit,
            "tests": self.count,
            "first": self.first,
            "scorecard": f"budgets.{self.field}",
            "scorecard_now": self.current,
        }


@dataclass(frozen=True)
class ImportResult:
    plan: ImportPlan
    source: str
    dry_run: bool
    budgets: list[BudgetLine]

    @property
    def not_converted(self) -> list[NotConverted]:
        return self.plan.conversion.not_converted

    def as_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "format": plan.conversion.format,
            "source": self.source,
            "out": str(plan.out),
            "into": plan.into,
            "dry_run": self.dry_run,
            "converted": len(plan.conversion.drafts),
            "written": len(plan.bodies),
            "ids": plan.ids,
            "skipped": [
                {"id": s.id, "at": str(s.origin), "why": s.why, "of": s.of} for s in plan.skipped
            ],
            "not_converted": [
                {"at": str(n.origin), "what": n.what, "reason": n.reason, "dropped": n.dropped}
                for n in self.not_converted
            ],
            "budgets": [b.as_json() for b in self.budgets],
        }


def import_cases(
    suite: Suite,
    format_name: str,
    source: Path,
    *,
    into: str = "backlog",
    prefix: str | None = None,
    out: Path | None = None,
    strict: bool = False,
    dry_run: bool = False,
    options: ConvertOptions | None = None,
) -> ImportResult:
    """Convert `source`, plan its cases against `suite`, and (unless `dry_run`) append
    them to `out`. Raises `ImportRefused` for bad input, invalid cases, id collisions and,
    with `strict`, anything not converted; nothing is written then."""
    convert = converter(format_name)
    wanted_set = check_into(into)
    chosen_prefix = check_prefix(prefix if prefix is not None else DEFAULT_PREFIX[format_name])
    target = check_out(suite.root, out or default_out(suite.root, format_name, source))
    conversion = convert(source, options or ConvertOptions())
    if strict and conversion.not_converted:
        listed = "\n  ".join(
            f"{n.origin}: {n.what}: {n.reason}" for n in conversion.not_converted[:20]
        )
        more = len(conversion.not_converted) - 20
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise ImportRefused(
            f"--strict: {len(conversion.not_converted)} thing(s) cannot be converted, "
            f"nothing written:\n  {listed}{tail}"
        )
    plan = plan_import(suite, conversion, into=wanted_set, prefix=chosen_prefix, out=target)
    if not dry_run:
        write_import(suite.root, plan, str(source))
    return ImportResult(plan, str(source), dry_run, _budget_lines(suite, conversion.budgets))


def _budget_lines(suite: Suite, found: list[BudgetFound]) -> list[BudgetLine]:
    grouped: dict[tuple[str, float], list[BudgetFound]] = {}
    for budget in found:
        grouped.setdefault((budget.kind, budget.limit), []).append(budget)
    budgets = suite.scorecard.budgets
    lines = []
    for (kind, limit), items in sorted(grouped.items()):
        field = BUDGET_FIELDS[kind]
        lines.append(
            BudgetLine(
                kind, limit, len(items), str(items[0].origin), field, getattr(budgets, field)
            )
        )
    return lines
