"""Generated suites for the benchmarks: many simple cases in one file, JSONL or YAML."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml

OWNERS = """\
owners:
  - id: bench
    name: Bench Owner
    slack_id: U0BENCH01
    owns: {release: true, sets: [monitoring, blocking], thresholds: ["*"]}
"""


DEFAULT_EXPECT = {"outcome": "answer", "contains": ["14 days"], "not_contains": ["30 days"]}


class _PlainDumper(yaml.CSafeDumper):
    """Writes a value shared by many cases out in full each time, as a person would."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


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
    case_format: Literal["jsonl", "yaml"] = "jsonl",
) -> Path:
    """A suite of `cases` cases of one set answered by `target_yaml` (a YAML mapping).

    The cases go to `cases/generated.jsonl`, or with `case_format="yaml"` to
    `cases/generated.yaml` in block style, the way people write case files by hand.
    """
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "owners.yaml").write_text(OWNERS)
    (root / "scorecard.yaml").write_text(
        "route: bench\n"
        "owner: bench\n"
        f"target: {target_yaml}\n"
        "prices:\n  stub: {input_per_mtok: 0.5, output_per_mtok: 1.5}\n"
        f"run: {run_yaml}\n" + scorecard_extra
    )
    generated = _cases(cases, set_name=set_name, samples=samples, expect=expect)
    if case_format == "yaml":
        with (root / "cases" / "generated.yaml").open("w", encoding="utf-8") as text:
            # Dumped a thousand at a time: one call per case would take longer than loading.
            while chunk := list(islice(generated, 1000)):
                yaml.dump(chunk, text, Dumper=_PlainDumper, sort_keys=False, width=200)
        return root
    with (root / "cases" / "generated.jsonl").open("wb") as out:
        for case in generated:
            out.write(orjson.dumps(case) + b"\n")
    return root


def _cases(
    count: int, *, set_name: str, samples: int, expect: Mapping[str, object] | None
) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {
            "id": f"gen-{i:06d}",
            "set": set_name,
            "severity": "medium",
            "tags": ["refunds", f"shard-{i % 10}"],
            "source": {"kind": "fixture", "ref": f"bench-{i}"},
            "input": {
                "messages": [{"role": "user", "content": f"Order {i}: can I still return my lamp?"}]
            },
            "expect": expect or DEFAULT_EXPECT,
            "samples": samples,
        }
