"""Two `evalcore gate` processes for the same release at once, as two CI jobs or a retried
event start them: one run in the store, the target called once per pair, both commands
exiting with the same verdict and naming the same run, the second saying it attached. A
holder killed with SIGKILL: the gates started after it wait, one takes the lease over at
its expiry and resumes the run, the other attaches to that one; no pair stored twice.

Each of those gates is a process of its own against the reference target behind a proxy
that counts the target's calls, on SQLite and PostgreSQL, the flows recorded on the shared
Prefect server. Then, in this process: a gate after a finished one is a new run, and a
gate started while another holds the release prints that gate's verdict.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from sqlalchemy import distinct, func, select, tuple_

from evalcore.gate.lease import claim_lease, record_lease_run
from evalcore.gate.steps import GateRequest, gate_lease_key
from evalcore.local.reference import Knobs, ReferenceServer
from evalcore.store.engine import get_engine
from evalcore.store.repository import RESULT_TABLE, list_runs
from evalcore.suite import load_suite
from tests.cli_helpers import evalcore, process_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "evals"
TARGET_MODEL = "support-assistant"


class CountingProxy:
    """Forwards every call to the reference target and counts them by the model asked
    for: how often the route under test was really called, whichever gate called it."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.calls: Counter[str] = Counter()
        lock = threading.Lock()
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    proxy.calls[str(orjson.loads(body).get("model"))] += 1
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                try:
                    upstream.request("POST", self.path, body, {"Content-Type": "application/json"})
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # a caller killed meanwhile
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def slow_suite(tmp_path: Path) -> Path:
    """The example suite calling one pair at a time, so a gate takes seconds to run."""
    suite = tmp_path / "suite"
    shutil.copytree(EXAMPLE, suite)
    scorecard = suite / "scorecard.yaml"
    scorecard.write_text(scorecard.read_text().replace("concurrency: 16", "concurrency: 1"))
    return suite


def start_gate(
    release: str, suite: Path, target: str, *, home: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "evalcore", "gate", "--release", release),
            *("--suite", str(suite), "--target-url", target, "--judge-url", target, "--json"),
        ],
        cwd=ROOT,
        env=process_env(home, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    """Its exit code, the JSON it printed and its log."""
    out, err = process.communicate(timeout=240)
    assert out.strip(), f"exit {process.returncode}, no JSON; log:\n{err}"
    return process.returncode, json.loads(out), err


def stored_pairs(db_url: str, run_id: str) -> tuple[int, int]:
    """Result rows of the run, and distinct (case, sample) pairs among them."""
    t = RESULT_TABLE.c
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(select(func.count()).where(t.run_id == run_id)).scalar_one()
        pairs = conn.execute(
            select(func.count(distinct(tuple_(t.case_id, t.sample)))).where(t.run_id == run_id)
            if conn.dialect.name == "postgresql"
            else select(func.count()).select_from(
                select(t.case_id, t.sample).where(t.run_id == run_id).distinct().subquery()
            )
        ).scalar_one()
    return rows, pairs


@pytest.fixture
def regressed_target() -> Iterator[CountingProxy]:
    """A regressed release (a fail verdict, exit 1) answering in 300 ms, behind the proxy."""
    with (
        ReferenceServer(Knobs(version="regressed-refunds", latency_ms=300)) as server,
        CountingProxy(server.base_url) as proxy,
    ):
        yield proxy


def test_two_gates_started_together_run_once_and_exit_with_the_same_verdict(
    db_url: str,
    prefect_api: str,
    slow_suite: Path,
    regressed_target: CountingProxy,
    tmp_path: Path,
) -> None:
    # A lease of 4 s on a run of about 6 s: the holder must renew it, or the waiting gate
    # would take it over and call the target again.
    env = {
        "PREFECT_API_URL": prefect_api,
        "EVALCORE_DATABASE_URL": db_url,
        "EVALCORE_GATE_LEASE_SECONDS": "4",
    }
    gates = [
        start_gate("rc-7", slow_suite, regressed_target.base_url, home=tmp_path / name, env=env)
        for name in ("ci-a", "ci-b")
    ]
    (code_a, json_a, log_a), (code_b, json_b, log_b) = [finish(gate) for gate in gates]

    assert (code_a, code_b) == (1, 1), log_a + log_b
    assert json_a["run_id"] == json_b["run_id"]
    for field in ("verdict", "exit_code", "reason", "failed_cases", "criteria", "results"):
        assert json_a[field] == json_b[field], field
    assert json_a["verdict"] == "fail" and "refund-window-eu-001" in json_a["failed_cases"]
    by_role = {
        json_a["attached"]: (json_a, log_a, gates[0]),
        json_b["attached"]: (json_b, log_b, gates[1]),
    }
    assert set(by_role) == {True, False}, "exactly one gate attached"
    attached, attached_log, _ = by_role[True]
    holder, holder_log, holder_process = by_role[False]
    assert holder["held_by"] is None and not holder["resumed"]
    assert attached["held_by"].startswith(f"pid {holder_process.pid} on ")
    run_id = holder["run_id"]
    assert (
        f"attached to run {run_id[:12]} of release rc-7, held by pid {holder_process.pid} on "
        in attached_log
    )
    assert "new results in" in holder_log and "new results in" not in attached_log

    (run,) = list_runs(get_engine(db_url), release="rc-7")
    assert (run.id, run.status) == (run_id, "finished")
    # The planned pairs and the failing cases' extra samples (the route is nondeterministic),
    # each stored once and the target called once for each.
    drawn = run.planned + holder["extra_samples"]
    assert holder["extra_samples"] > 0 and holder["results"] == drawn
    assert stored_pairs(db_url, run.id) == (drawn, drawn)
    assert regressed_target.calls[TARGET_MODEL] == drawn


def test_a_killed_holder_is_taken_over_at_expiry_by_one_waiting_gate_which_resumes_its_run(
    db_url: str,
    prefect_api: str,
    slow_suite: Path,
    regressed_target: CountingProxy,
    tmp_path: Path,
) -> None:
    # Long enough for the gates started after the kill to find the lease still held.
    env = {
        "PREFECT_API_URL": prefect_api,
        "EVALCORE_DATABASE_URL": db_url,
        "EVALCORE_GATE_LEASE_SECONDS": "10",
    }
    target = regressed_target.base_url
    killed = start_gate("rc-9", slow_suite, target, home=tmp_path / "killed", env=env)
    deadline = time.monotonic() + 120
    stored = 0
    while stored < 3 and time.monotonic() < deadline and killed.poll() is None:
        runs = list_runs(get_engine(db_url), release="rc-9")
        stored = stored_pairs(db_url, runs[0].id)[0] if runs else 0
        time.sleep(0.05)
    assert killed.poll() is None, "the gate ended before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    (run,) = list_runs(get_engine(db_url), release="rc-9")
    assert run.status == "running" and 3 <= stored_pairs(db_url, run.id)[0] < run.planned

    # Started at once, before the lease expires: both wait, one takes it over.
    waiting = [
        start_gate("rc-9", slow_suite, target, home=tmp_path / name, env=env)
        for name in ("retry-a", "retry-b")
    ]
    (code_a, json_a, log_a), (code_b, json_b, log_b) = [finish(gate) for gate in waiting]

    assert (code_a, code_b) == (1, 1), log_a + log_b
    assert json_a["run_id"] == json_b["run_id"] == run.id  # the killed gate's run
    assert json_a["verdict"] == json_b["verdict"] == "fail"
    taker, follower = (json_a, json_b) if not json_a["attached"] else (json_b, json_a)
    assert (taker["attached"], taker["resumed"], follower["attached"]) == (False, True, True)
    taken_over = [log for log in (log_a, log_b) if "stopped renewing its lease: taking over" in log]
    assert len(taken_over) == 1, log_a + "\n=====\n" + log_b
    # Named with the killed gate's pid: also when both came after the expiry.
    assert f"(pid {killed.pid} on " in taken_over[0]
    assert f"attached to run {run.id[:12]} of release rc-9, held by pid " in (log_a + log_b)

    (again,) = list_runs(get_engine(db_url), release="rc-9")  # still the one run
    assert (again.id, again.status) == (run.id, "finished")
    drawn = run.planned + taker["extra_samples"]
    assert taker["results"] == follower["results"] == drawn
    assert stored_pairs(db_url, run.id) == (drawn, drawn)


def test_a_gate_after_a_finished_one_for_the_same_target_gets_a_new_run(
    prefect_api: str, tmp_path: Path
) -> None:
    """A finished gate holds nothing: the same release and target gated again is a new
    run, as before the lease, not an attachment to the old one."""
    home = tmp_path / "home"
    with ReferenceServer() as server:
        args = ["gate", "--release", "again-1", "--suite", str(EXAMPLE)]
        args += ["--target-url", server.base_url, "--judge-url", server.base_url, "--json"]
        env = {"PREFECT_API_URL": prefect_api}
        first, second = [evalcore(*args, cwd=ROOT, home=home, env=env) for _ in range(2)]
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    gated = [json.loads(done.stdout) for done in (first, second)]
    assert [(g["attached"], g["resumed"]) for g in gated] == [(False, False), (False, False)]
    runs = list_runs(get_engine(f"sqlite:///{home / 'evalcore.db'}"), release="again-1")
    assert sorted(r.id for r in runs) == sorted(g["run_id"] for g in gated)
    assert len(runs) == 2


def test_a_gate_started_while_another_holds_the_release_prints_that_gates_verdict(
    prefect_api: str, tmp_path: Path
) -> None:
    """The attached gate's own output: which run it attached to and who holds it, then
    the verdict and exit code that gate stored, without calling the target."""
    home = tmp_path / "home"
    engine_url = f"sqlite:///{home / 'evalcore.db'}"
    env = {"PREFECT_API_URL": prefect_api}
    with ReferenceServer(Knobs(version="regressed-refunds")) as server:
        args = ["gate", "--release", "held-1", "--suite", str(EXAMPLE)]
        args += ["--target-url", server.base_url, "--judge-url", server.base_url]
        done = evalcore(*args, "--json", cwd=ROOT, home=home, env=env)
        assert done.returncode == 1, done.stderr
        run_id = json.loads(done.stdout)["run_id"]
        # As another CI job's gate leaves the store while it still holds the release.
        key = gate_lease_key(
            load_suite(EXAMPLE),
            GateRequest("held-1", target_url=server.base_url, judge_url=server.base_url),
        )
        engine = get_engine(engine_url)
        assert claim_lease(engine, key, holder="pid 4242 on ci-runner-7", ttl_s=600).won
        record_lease_run(engine, key, holder="pid 4242 on ci-runner-7", run_id=run_id)
        attached = evalcore(*args, cwd=ROOT, home=home, env=env)
    assert attached.returncode == 1, attached.stdout + attached.stderr
    assert (
        f"attached to run {run_id[:12]} of release held-1, held by pid 4242 on ci-runner-7: "
        "this is its verdict" in attached.stderr
    )
    assert "Verdict: fail" in attached.stdout
    assert "new results in" not in attached.stderr
    assert [r.id for r in list_runs(get_engine(engine_url), release="held-1")] == [run_id]
