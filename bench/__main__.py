"""`make bench`: the run engine measured side by side with bare loops, the peak memory of
`validate` and `run` over 100,000 cases, the gate flow's overhead, drift analysis,
trends, and the start-up of `evalcore --help` and a one-case `evalcore run` beside a bare
script, in one run (`--only` picks one part).

Absolute times on a shared 2-core machine mean little; the ratios printed here compare
the engine with the ideal and with a bare aiohttp loop against the same stub, measured
minutes apart at most.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import orjson

from bench.digest import digest_bench
from bench.drift import drift_bench
from bench.fixtures import fixtures_bench
from bench.gate import LATENCY_MS as GATE_LATENCY_MS
from bench.gate import gate_overhead
from bench.imports import import_bench
from bench.intake import intake_bench
from bench.resample import resample_bench
from bench.rss import measure_child
from bench.startup import startup_bench
from bench.suites import write_suite
from bench.trends import trends_bench
from evalcore import aio

ROOT = Path(__file__).resolve().parent.parent
REQUEST = orjson.dumps(
    {"model": "stub", "messages": [{"role": "user", "content": "Can I still return my lamp?"}]}
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def stub(delay_ms: float) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.stub_server", str(port), str(delay_ms)], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the stub server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def bare_aiohttp(url: str, n: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        todo = iter(range(n))
        started = time.perf_counter()

        async def worker() -> None:
            for _ in todo:
                async with session.post(
                    f"{url}/chat/completions",
                    data=REQUEST,
                    headers={"content-type": "application/json"},
                ) as response:
                    orjson.loads(await response.read())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def bare_httpx_loop(
    url: str, n: int, concurrency: int, *, transport: httpx.AsyncBaseTransport | None = None
) -> float:
    """httpx's default pool, or the `httpx-aiohttp` transport when given."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60, transport=transport) as client:
        todo = iter(range(n))
        started = time.perf_counter()

        async def worker() -> None:
            for _ in todo:
                response = await client.post(
                    f"{url}/chat/completions",
                    content=REQUEST,
                    headers={"content-type": "application/json"},
                )
                orjson.loads(response.content)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def _httpx_aiohttp(concurrency: int) -> httpx.AsyncBaseTransport:
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits)
    return transport


def engine_run(suite_dir: Path, db_url: str, *, concurrency: int) -> tuple[float, int]:
    """The engine's run phase (call, score, persist) on a prepared run; returns (s, rows)."""
    from evalcore.run import RunRequest, execute_run, prepare_run
    from evalcore.store.engine import get_engine
    from evalcore.suite import EvalSet, load_suite

    suite = load_suite(suite_dir)
    engine = get_engine(db_url)
    run = prepare_run(
        engine, suite, RunRequest(sets=(EvalSet.monitoring,), concurrency=concurrency)
    )
    report = aio.run(execute_run(engine, suite, run))
    if report.totals.results != run.planned or report.totals.errors:
        raise RuntimeError(f"bench run incomplete: {report.totals}")
    return report.elapsed_s, report.written


def memory_bench(cases: int, workdir: Path) -> None:
    """Peak RSS of `evalcore validate` and `evalcore run` over a generated suite written as
    JSONL and as YAML, each command in a child of its own; `run` calls an in-process stub.
    """
    print(f"\n[{cases:,}-case generated suite, each command in a child process]")
    env = {**os.environ, "CI": "1"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    for case_format in ("jsonl", "yaml"):
        suite = write_suite(
            workdir / f"memory-{case_format}",
            cases=cases,
            target_yaml="{kind: python, callable: 'bench.callables:answer', model: stub}",
            case_format=case_format,
        )
        env["EVALCORE_DATABASE_URL"] = f"sqlite:///{workdir}/memory-{case_format}.db"
        for command in ("validate", "run"):
            child = measure_child(
                [sys.executable, "-m", "evalcore", command, "--suite", str(suite), "--json"], env
            )
            if child.exit_code != 0:
                raise RuntimeError(f"evalcore {command} exited {child.exit_code}:\n{child.output}")
            line(
                f"`evalcore {command}`, one {case_format.upper()} file, peak RSS",
                f"{child.peak_mb:,.0f} MB",
                f"goal <= 400 MB ({child.seconds:.1f} s wall)",
            )


def line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<58} {value:>16}   {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rss-cases", type=int, default=100_000)
    parser.add_argument("--skip-httpx-default", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs at 100 ms")
    parser.add_argument(
        "--only",
        choices=[
            "all",
            "engine",
            "memory",
            "gate",
            "resample",
            "drift",
            "trends",
            "digest",
            "intake",
            "fixtures",
            "import",
            "traces",
            "scale",
            "startup",
        ],
        default="all",
        help="which benchmarks",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="evalcore-bench-") as tmp:
        work = Path(tmp)
        if args.only in ("all", "engine"):
            engine_benchmarks(args, work)
        if args.only in ("all", "memory"):
            memory_bench(args.rss_cases, work)
        if args.only in ("all", "gate"):
            with stub(GATE_LATENCY_MS) as url:
                gate_overhead(work, url, repeats=args.repeats, free_port=free_port, line=line)
        if args.only in ("all", "resample"):
            resample_bench(work, line)
        if args.only in ("all", "drift"):
            drift_bench(work, line)
        if args.only in ("all", "trends"):
            trends_bench(work, line)
        if args.only in ("all", "digest"):
            digest_bench(work, line)
        if args.only in ("all", "intake"):
            intake_bench(work, line)
        if args.only in ("all", "fixtures"):
            fixtures_bench(work, line)
        if args.only in ("all", "import"):
            import_bench(work, line)
        if args.only in ("all", "traces"):
            from bench.traces import traces_bench

            traces_bench()
        if args.only in ("all", "scale"):
            from bench.scale import scale_bench

            scale_bench(work, line, stub, free_port)
        if args.only in ("all", "startup"):
            with stub(0) as url:
                startup_bench(work, url, line)


def engine_benchmarks(args: argparse.Namespace, work: Path) -> None:
    n, c = args.cases, args.concurrency
    print(f"run engine: {n} cases, concurrency {c}, stub = bare ASGI on uvicorn")

    with stub(100) as url:
        ideal = n / c * 0.1
        suite = write_suite(
            work / "s100",
            cases=n,
            target_yaml=f"{{kind: openai_chat, base_url: '{url}', model: stub}}",
        )
        aio.run(bare_aiohttp(url, 200, c))  # warm the stub
        # Interleaved repeats, medians reported: the machine is shared and noisy.
        aiohttp_times, engine_times = [], []
        for i in range(args.repeats):
            aiohttp_times.append(aio.run(bare_aiohttp(url, n, c)))
            engine_times.append(
                engine_run(suite, f"sqlite:///{work}/b100-{i}.db", concurrency=c)[0]
            )
        t_aiohttp = statistics.median(aiohttp_times)
        t_engine = statistics.median(engine_times)
        t_httpx_aiohttp = aio.run(bare_httpx_loop(url, n, c, transport=_httpx_aiohttp(c)))
        t_httpx = None
        if not args.skip_httpx_default:
            t_httpx = aio.run(bare_httpx_loop(url, n, c))
    print(
        f"\n[100 ms target latency; engine and aiohttp: median of {args.repeats} interleaved runs]"
    )
    line("ideal (cases / concurrency x 100 ms)", f"{ideal:.2f} s")
    line("bare aiohttp loop", f"{t_aiohttp:.2f} s", f"{t_aiohttp / ideal:.2f}x ideal")
    line(
        "bare httpx loop on httpx-aiohttp's transport (not used)",
        f"{t_httpx_aiohttp:.2f} s",
        f"{t_httpx_aiohttp / ideal:.2f}x ideal",
    )
    if t_httpx is not None:
        line(
            "bare httpx loop, default pool (not used)",
            f"{t_httpx:.2f} s",
            f"{t_httpx / ideal:.2f}x ideal",
        )
    line(
        "evalcore run phase (call + score + persist, SQLite)",
        f"{t_engine:.2f} s",
        f"{t_engine / ideal:.2f}x ideal (goal <= 1.20), "
        f"{t_engine / t_aiohttp:.2f}x aiohttp (goal <= 1.10)",
    )

    n0 = max(n, 10_000)  # long enough that connection set-up and start-up do not dominate
    with stub(0) as url:
        suite = write_suite(
            work / "s0",
            cases=n0,
            target_yaml=f"{{kind: openai_chat, base_url: '{url}', model: stub}}",
        )
        aio.run(bare_aiohttp(url, 200, c))
        t_httpx_aiohttp0 = aio.run(bare_httpx_loop(url, n0, c, transport=_httpx_aiohttp(c)))
        aiohttp_rates, engine_rates = [], []
        for i in range(args.repeats):
            aiohttp_rates.append(n0 / aio.run(bare_aiohttp(url, n0, c)))
            seconds, rows = engine_run(suite, f"sqlite:///{work}/b0-{i}.db", concurrency=c)
            engine_rates.append(rows / seconds)
        rate_aiohttp0 = statistics.median(aiohttp_rates)
        rate_engine0 = statistics.median(engine_rates)
    print(f"\n[0 ms target latency, over HTTP, {n0:,} cases; median of {args.repeats}]")
    line("bare aiohttp loop", f"{rate_aiohttp0:,.0f} calls/s")
    line("bare httpx loop on httpx-aiohttp's transport", f"{n0 / t_httpx_aiohttp0:,.0f} calls/s")
    line(
        "evalcore, scored and persisted to SQLite",
        f"{rate_engine0:,.0f} results/s",
        f"goal >= 2,000/s (promptfoo ~210, Inspect ~80); "
        f"{rate_aiohttp0 / rate_engine0:.2f}x aiohttp time",
    )

    n_inproc = max(n, 20_000)
    suite = write_suite(
        work / "sin",
        cases=n_inproc,
        target_yaml="{kind: python, callable: 'bench.callables:answer', model: stub}",
    )
    t_in, rows_in = engine_run(suite, f"sqlite:///{work}/bin.db", concurrency=c)
    print("\n[in-process zero-latency callable]")
    line(
        f"evalcore, {n_inproc:,} cases scored and persisted",
        f"{rows_in / t_in:,.0f} results/s",
        "goal >= 5,000/s",
    )


if __name__ == "__main__":
    main()
