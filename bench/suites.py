"""Generated suites for the benchmarks: many simple cases, one JSONL file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson

OWNERS = """\
owners:
  - id: bench
    name: Bench Owner
    slack_id: U0BENCH01
    owns: {release: true, sets: [monitoring, blocking], thresholds: ["*"]}
"""


DEFAULT_EXPECT = {"outcome": "answer", "contains": ["14 days"], "not_contains": ["30 days"]}


def write_suite(
    root: Path,
    *,
    cases: int,
    target_yaml: str,
    samples: int = 1,
    expect: Mapping[str, object] | None = None,
    run_yaml: str = "{concurrency: 100, timeout_s: 30, retries: 2}",
    set_name: str = "monitoring",
    scorecard_extra: str = "",
) -> Path:
    """A suite of `cases` cases of one set answered by `target_yaml` (a YAML mapping)."""
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "owners.yaml").write_text(OWNERS)
    (root / "scorecard.yaml").write_text(
        "route: bench\n"
        "owner: bench\n"
        f"target: {target_yaml}\n"
        "prices:\n  stub: {input_per_mtok: 0.5, output_per_mtok: 1.5}\n"
        f"run: {run_yaml}\n" + scorecard_extra
    )
    with (root / "cases" / "generated.jsonl").open("wb") as out:
        for i in range(cases):
            case = {
                "id": f"gen-{i:06d}",
                "set": set_name,
                "severity": "medium",
                "tags": ["refunds", f"shard-{i % 10}"],
                "source": {"kind": "fixture", "ref": f"bench-{i}"},
                "input": {
                    "messages": [
                        {"role": "user", "content": f"Order {i}: can I still return my lamp?"}
                    ]
                },
                "expect": expect or DEFAULT_EXPECT,
                "samples": samples,
            }
            out.write(orjson.dumps(case) + b"\n")
    return root
