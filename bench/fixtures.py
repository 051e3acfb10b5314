"""The fixture generator on a large suite: 10,000 fixtures from 5,000 cases.

5,000 cases resembling `evals/cases` (the intake benchmark's varied customer messages) are
written as a suite: 40% answer cases with a dated knowledge-base document and the fact
they must state, 5% tool-call cases (`lookup_order` with the order id; in the blocking and
monitoring sets, whose expectations a fixture may keep), the rest answer cases with no
document, a third of them in each set. `evalcore fixtures generate --count 2250` then
writes 2,250 cases for each of bad_sources, stale_records, unsafe_requests and
needs_human, and every tool-call fixture there is (4 variants x 250), 10,000 in all.
Timed as a user waits for it: loading the suite, generating, de-duplicating against the
suite and within the run, and writing the five files.

`python -m bench --only fixtures`
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.intake import case_texts
from bench.suites import OWNERS

CASES = 5_000
COUNT = 2_250
SEED = 20_261_202
DOCS = [
    ("kb-112", "EU customers may withdraw from a purchase within {n} days of delivery.", "{n} days"),
    ("kb-210", "Standard shipping is free for orders of ${n} or more.", "${n}"),
    ("kb-318", "Assembly is free for furniture orders over ${n}.", "${n}"),
    ("kb-405", "Refunds reach the original payment method within {n} business days.", "{n} business days"),
]  # fmt: skip
TOOL = {
    "name": "lookup_order",
    "description": "Look up an order's status, items and delivery estimate.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^LH-[0-9]{6}$"}},
        "required": ["order_id"],
    },
}


def write_suite(root: Path, count: int = CASES, seed: int = SEED) -> Path:
    rng = random.Random(seed)
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "owners.yaml").write_text(OWNERS)
    (root / "scorecard.yaml").write_text(
        "route: bench\nowner: bench\ntarget: {kind: python, callable: 'bench.callables:answer', "
        "model: stub}\n"
    )
    with (root / "cases" / "production.jsonl").open("wb") as out:
        for i, text in enumerate(case_texts(count, seed)):
            case: dict[str, Any] = {
                "id": f"prod-{i:06d}",
                "set": ("monitoring", "blocking", "backlog")[i % 3],
                "tags": ["generated"],
                "source": {
                    "kind": "production",
                    "ref": f"ZD-{200_000 + i}",
                    "captured": "2026-06-01",
                },
                "input": {"messages": [{"role": "user", "content": text}]},
                "expect": {"outcome": "answer"},
            }
            kind = i % 20
            if kind < 8:
                doc_id, doc, fact = rng.choice(DOCS)
                n = rng.choice([14, 30, 49, 75, 90, 120])
                case["input"]["context"] = [
                    {
                        "id": doc_id,
                        "text": doc.format(n=n),
                        "as_of": f"2026-0{rng.randint(1, 5)}-01",
                    }
                ]
                case["expect"]["contains"] = [fact.format(n=n)]
            elif kind == 8:
                order = f"LH-{rng.randint(100_000, 999_999)}"
                case["set"] = ("monitoring", "blocking")[i % 2]
                case["tags"] = ["tools", "orders"]
                case["input"]["messages"][0]["content"] = f"{text} (order {order})"
                case["input"]["tools"] = [TOOL]
                case["expect"] = {
                    "outcome": "tool_call",
                    "tool_call": {
                        "name": "lookup_order",
                        "arguments_schema": {
                            "type": "object",
                            "properties": {"order_id": {"const": order}},
                            "required": ["order_id"],
                        },
                    },
                }
            out.write(orjson.dumps(case) + b"\n")
    return root


def fixtures_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    """Print the figures through `line(label, value, goal)`."""
    from evalcore.fixtures.generate import generate_fixtures
    from evalcore.suite import load_suite
    from evalcore.triage.dedup import normalise

    root = write_suite(work / "fixtures-suite")
    normalise("warm")  # the folding table is built once per process, as in any command
    started = time.perf_counter()
    load_suite(root)
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    result = generate_fixtures(root, count=COUNT, seed=0)
    total_s = time.perf_counter() - started

    print(
        f"\n[fixture generation: {CASES:,}-case suite, --count {COUNT:,} per family; "
        f"{result.written:,} written, {result.skipped_duplicate:,} near-duplicates skipped]"
    )
    for family in result.families:
        line(f"  {family.family}", f"{len(family.written):,} written", "")
    line("suite load alone (load_suite, for comparison)", f"{load_s:.2f} s", "")
    line(
        f"generate {result.written:,}: load + generate + dedup + write",
        f"{total_s:.2f} s",
        "goal < 5 s",
    )


if __name__ == "__main__":
    import tempfile

    from bench.__main__ import line as print_line

    with tempfile.TemporaryDirectory(prefix="evalcore-bench-") as folder:
        fixtures_bench(Path(folder), print_line)
