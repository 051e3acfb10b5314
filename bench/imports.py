"""`evalcore import promptfoo` of a 50,000-test config: wall time and peak memory.

The config has one chat-format prompt (a system message and a `{{question}}` template)
and `tests: file://tests.csv`, 50,000 rows of varied customer messages (the intake
benchmark's generator, each row numbered so none repeats) with two `__expected`
columns (`icontains:` and `not-icontains:`) and an `__description`. It is imported into
a copy of the example suite as a whole process, as a user waits for it: start-up,
loading the suite, converting, validating, de-duplicating and writing the YAML file.

`python -m bench --only import`
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.intake import case_texts
from bench.rss import measure_child

ROOT = Path(__file__).resolve().parent.parent
TESTS = 50_000
PHRASES = ["30 days", "refund", "order", "delivery", "help"]

CONFIG = """\
description: Support assistant, imported for the benchmark
prompts:
  - file://prompts/chat.json
providers:
  - id: openai:gpt-4o-mini
    config:
      temperature: 0
tests: file://tests.csv
"""


def write_config(folder: Path, tests: int = TESTS) -> Path:
    (folder / "prompts").mkdir(parents=True, exist_ok=True)
    (folder / "prompts" / "chat.json").write_bytes(
        orjson.dumps(
            [
                {"role": "system", "content": "You are the support assistant of Lumen Home."},
                {"role": "user", "content": "{{question}}"},
            ]
        )
    )
    with (folder / "tests.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["question", "__expected1", "__expected2", "__description"])
        for i, text in enumerate(case_texts(tests, seed=20_261_202)):
            writer.writerow(
                [
                    f"{text} (ref {i})",
                    f"icontains: {PHRASES[i % len(PHRASES)]}",
                    "not-icontains: as an AI",
                    f"row {i}",
                ]
            )
    config = folder / "promptfooconfig.yaml"
    config.write_text(CONFIG)
    return config


def import_bench(workdir: Path, line: Callable[..., None], tests: int = TESTS) -> None:
    print(f"import: a promptfoo config with {tests:,} CSV tests")
    with tempfile.TemporaryDirectory(prefix="import-", dir=workdir) as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "evals", work / "evals")
        config = write_config(work / "promptfoo", tests)
        env = {**os.environ, "EVALCORE_HOME": str(work / "home")}
        child = measure_child(
            [
                sys.executable,
                "-m",
                "evalcore",
                "import",
                "promptfoo",
                str(config),
                "--suite",
                str(work / "evals"),
                "--json",
            ],
            env,
        )
        if child.exit_code != 0:
            raise RuntimeError(f"evalcore import exited {child.exit_code}:\n{child.output[-2000:]}")
        written = orjson.loads(child.output[child.output.index("{") :])["written"]
        if written != tests:
            raise RuntimeError(f"expected {tests:,} cases written, got {written:,}")
        line(
            f"`evalcore import promptfoo`, {tests:,} CSV tests, wall",
            f"{child.seconds:.2f} s",
            "goal < 10 s",
        )
        line("  peak RSS", f"{child.peak_mb:,.0f} MB", "goal < 400 MB")


if __name__ == "__main__":

    def _line(label: str, value: str, goal: str = "") -> None:
        print(f"  {label:<58} {value:>16}   {goal}")

    with tempfile.TemporaryDirectory() as folder:
        import_bench(Path(folder), _line, int(sys.argv[1]) if len(sys.argv) > 1 else TESTS)
