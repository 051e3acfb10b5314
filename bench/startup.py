"""Start-up: `evalcore --help` and a one-case `evalcore run` as whole processes, beside a
bare Python script that makes the same chat-completions call with aiohttp.

Each round runs the four side by side against the same stub, in a rotating order: the bare
script, `--help`, `run` on a warm store and `run` on a fresh one (a new EVALCORE_HOME, so
the schema is created). Medians of the rounds are printed with their ratio to the bare
script. A short command is mostly imports, so an untimed first round writes the byte-code
cache, as installing a package does.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.suites import write_suite

ROUNDS = 9
HELP_GOAL = 1.5
RUN_GOAL = 2.5

BARE_SCRIPT = """\
import asyncio
import json
import sys

import aiohttp


async def call(url, body):
    async with aiohttp.ClientSession() as session:
        headers = {"content-type": "application/json"}
        async with session.post(url, data=body, headers=headers) as response:
            reply = json.loads(await response.read())
    return reply["choices"][0]["message"]["content"]


text = asyncio.run(call(sys.argv[1], sys.argv[2]))
print("pass" if "14 days" in text and "30 days" not in text else "fail")
"""


def startup_bench(work: Path, stub_url: str, line: Callable[..., None]) -> None:
    suite = write_suite(
        work / "startup-suite",
        cases=1,
        target_yaml=f"{{kind: openai_chat, base_url: '{stub_url}', model: stub}}",
    )
    case = orjson.loads((suite / "cases" / "generated.jsonl").read_bytes())
    body = orjson.dumps({"model": "stub", "messages": case["input"]["messages"]}).decode()
    bare = work / "bare.py"
    bare.write_text(BARE_SCRIPT)
    run = ["-m", "evalcore", "run", "--suite", str(suite)]
    warm_home = work / "startup-warm"
    fresh_homes = (work / f"startup-fresh-{i}" for i in range(ROUNDS + 1))
    commands: dict[str, Callable[[], float]] = {
        "bare": lambda: _seconds(
            [str(bare), f"{stub_url}/chat/completions", body], work, warm_home, "pass"
        ),
        "help": lambda: _seconds(["-m", "evalcore", "--help"], work, warm_home),
        "warm": lambda: _seconds(run, work, warm_home),
        "fresh": lambda: _seconds(run, work, next(fresh_homes)),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_no in range(ROUNDS + 1):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = commands[name]()
            if round_no:
                times[name].append(seconds)
    median = {name: statistics.median(values) for name, values in times.items()}

    def versus_bare(name: str, goal: float) -> str:
        return f"{median[name] / median['bare']:.2f}x bare (goal <= {goal}x)"

    print(f"\n[start-up, whole processes against the stub; median of {ROUNDS} interleaved rounds]")
    line("bare Python script, the same call with aiohttp", f"{median['bare']:.2f} s")
    line("`evalcore --help`", f"{median['help']:.2f} s", versus_bare("help", HELP_GOAL))
    line(
        "`evalcore run`, one case, warm store",
        f"{median['warm']:.2f} s",
        versus_bare("warm", RUN_GOAL),
    )
    line(
        "`evalcore run`, one case, fresh store (schema created)",
        f"{median['fresh']:.2f} s",
        versus_bare("fresh", RUN_GOAL),
    )


def _seconds(args: list[str], cwd: Path, home: Path, expected_output: str | None = None) -> float:
    """Wall time of `python ARGS` in a process of its own with EVALCORE_HOME=`home`; it
    must exit 0 (and print `expected_output` when given)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("EVALCORE_") and name != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(EVALCORE_HOME=str(home), CI="1")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or (
        expected_output is not None and done.stdout.strip() != expected_output
    ):
        raise RuntimeError(
            f"`python {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return seconds
