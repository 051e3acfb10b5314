"""Secrets stay out of everything a run leaves behind: an API key echoed in an error the
target or the judge cut short, and credentials in a target or judge URL (user info and
secret query parameters), searched for in the database files, the reports, the command's
output and, when a flow ran, Prefect's own database and the flow-run parameters.

The endpoint is a stub on loopback that, like a real gateway, answers 401 to a call
without the URL's credentials: a run that passes proves the full URL was used.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.suites import OWNERS
from evalcore.gate.announce import release_event_payload
from tests.cli_helpers import evalcore, evalcore_process

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

KEY = "sk-Zq7Kx9Lm2Np4Rt6Vw8Yb0Cd"
JUDGE_KEY = "jk-Hy5Tr8Pw3Qs6Uv9Xa2Bc4De"
PASSWORD = "pw-Fg7Hj2Kl9Zx4"
QUERY_SECRET = "qs-Mn3Bv8Cx1Lk6"
USER = "svc-evals"
API_MESSAGE_CUT = 299  # characters of the API's message kept before "…"
STORED_MESSAGE_CUT = 500  # characters of an error message a result row keeps
NO_CHOICES = "reply has no choices; error: "

Respond = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


def with_credentials(base_url: str) -> str:
    """`base_url` with user info and a secret query parameter (next to a harmless one)."""
    return (
        base_url.replace("http://", f"http://{USER}:{PASSWORD}@")
        + f"?api-version=2024-06-01&api_key={QUERY_SECRET}"
    )


def masked(base_url: str) -> str:
    """How `with_credentials(base_url)` may be stored and shown."""
    return base_url.replace("http://", "http://***@") + "?api-version=2024-06-01&api_key=***"


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5},
    }


def answer(case_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A good answer from the target, a full score from the judge."""
    if body.get("model") == "judge":
        return 200, completion('{"score": 1, "reason": "answers the question"}')
    return 200, completion(f"Yes, {case_id} can be returned within 14 days.")


class StubEndpoint:
    """An OpenAI-compatible endpoint on loopback for the target and the judge; with
    `locked`, a call without `with_credentials`'s user info and `api_key` gets 401."""

    def __init__(self, respond: Respond, *, locked: bool = False) -> None:
        self.respond = respond
        self.locked = locked
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.unauthorized = 0

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if not self.locked:
            return True
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        return handler.headers.get("authorization") == f"Basic {basic}" and query.get(
            "api_key"
        ) == [QUERY_SECRET]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
                if stub._authorized(self):
                    text = json.dumps(body["messages"])
                    case_id = re.search(r"Case (\S+):", text)
                    status, reply = stub.respond(case_id[1] if case_id else "", body)
                else:
                    stub.unauthorized += 1
                    status, reply = 401, {"error": {"message": "missing credentials"}}
                data = orjson.dumps(reply)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read what the stub answered, not its access log."""

        return Handler

    def __enter__(self) -> StubEndpoint:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_suite(
    root: Path,
    base_url: str,
    *,
    sets: tuple[str, ...] = ("monitoring",),
    cases: int = 3,
    api_key_env: str | None = None,
    judge_key_env: str | None = None,
) -> Path:
    """A suite whose cases `Case <id>: ...` are all judged; target and judge at `base_url`."""
    (root / "cases").mkdir(parents=True)
    (root / "owners.yaml").write_text(OWNERS)
    target_key = f", api_key_env: {api_key_env}" if api_key_env else ""
    judge_key = f", api_key_env: {judge_key_env}" if judge_key_env else ""
    (root / "scorecard.yaml").write_text(
        "route: secrets\n"
        "owner: bench\n"
        f"target: {{kind: openai_chat, base_url: '{base_url}', model: stub{target_key}}}\n"
        f"judge: {{base_url: '{base_url}', model: judge{judge_key}}}\n"
        "run: {concurrency: 2, timeout_s: 20, retries: 0}\n"
    )
    with (root / "cases" / "cases.jsonl").open("wb") as out:
        for set_name in sets:
            for i in range(cases):
                case_id = f"{set_name}-{i:03d}"
                case = {
                    "id": case_id,
                    "set": set_name,
                    "severity": "medium",
                    "tags": ["refunds"],
                    "source": {"kind": "fixture", "ref": case_id},
                    "input": {
                        "messages": [
                            {"role": "user", "content": f"Case {case_id}: can I return my lamp?"}
                        ]
                    },
                    "expect": {
                        "outcome": "answer",
                        "judge": {"rubric": "Says whether it can be returned.", "min_score": 0.5},
                    },
                }
                out.write(orjson.dumps(case) + b"\n")
    return root


def sqlite_rows(home: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "evalcore.db")) as conn:
        return conn.execute(sql, params).fetchall()


def leaks(needles: tuple[str, ...], *places: Path | str) -> list[str]:
    """Where any needle appears: in a text, or in any file under a path (databases too)."""
    found = []
    for place in places:
        if isinstance(place, str):
            found += [f"output has {n!r}" for n in needles if n in place]
            continue
        files = [place] if place.is_file() else sorted(p for p in place.rglob("*") if p.is_file())
        for path in files:
            data = path.read_bytes()
            found += [f"{path} has {n!r}" for n in needles if n.encode() in data]
    return found


def outputs(*processes: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(p.stdout + p.stderr for p in processes)


# --- an API key cut short in an error message ------------------------------------------


def key_across_the_api_cut() -> str:
    """An OpenAI-style 401 text: the API's own shortened echo of the key first, then the
    whole key starting 5 characters before the 300-character cut of the API's message."""
    echoed = f"Incorrect API key provided: {KEY[:12]}*********{KEY[-4:]}. Request id "
    head = echoed + "r" * (API_MESSAGE_CUT - 5 - len(echoed))
    return head + KEY + " was rejected." + " See the documentation." * 10


def echoing_endpoint(case_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Per case: a 401 with the key across the API message's cut, a 200 error reply
    quoting the key, one with the key across the stored message's cut, and (for the last
    case) a judge answering 400 with its own key shortened the way OpenAI does."""
    if body.get("model") == "judge":
        return 400, {"error": {"message": f"Incorrect API key provided: {JUDGE_KEY[:10]}****"}}
    if case_id == "monitoring-000":
        return 401, {"error": {"message": key_across_the_api_cut()}}
    if case_id == "monitoring-001":
        return 200, {"error": {"message": f"Quota exceeded for key {KEY}; contact support."}}
    if case_id == "monitoring-002":
        before = "Quota exceeded for key "
        padding = "q" * (STORED_MESSAGE_CUT - 5 - len(NO_CHOICES) - len(before))
        return 200, {"error": {"message": before + padding + KEY + "; contact support."}}
    return answer(case_id, body)


def test_an_api_key_cut_short_in_an_error_message_reaches_no_row_report_or_output(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = {"EVALCORE_TEST_KEY": KEY, "EVALCORE_TEST_JUDGE_KEY": JUDGE_KEY}
    with StubEndpoint(echoing_endpoint) as stub:
        suite = write_suite(
            tmp_path / "suite",
            stub.base_url,
            cases=4,
            api_key_env="EVALCORE_TEST_KEY",
            judge_key_env="EVALCORE_TEST_JUDGE_KEY",
        )
        ran = evalcore("run", "--suite", str(suite), "--json", cwd=tmp_path, home=home, env=env)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    report, junit = tmp_path / "report.html", tmp_path / "junit.xml"
    shown = evalcore(
        *("runs", "show", run_id, "--report", str(report), "--junit", str(junit), "--json"),
        cwd=tmp_path,
        home=home,
    )
    assert shown.returncode == 0, shown.stderr

    rows = {
        case_id: (error_class, message)
        for case_id, error_class, message in sqlite_rows(
            home, "SELECT case_id, error_class, error_message FROM case_result"
        )
    }
    # Every error is recorded, its text kept and shortened, only the key masked.
    api_error_class, api_message = rows["monitoring-000"]
    assert api_error_class == "client_error"
    assert api_message.startswith("HTTP 401 Unauthorized: Incorrect API key provided: ***")
    assert api_message.endswith("…") and "Request id rrr" in api_message
    assert rows["monitoring-001"] == (
        "bad_reply",
        f"{NO_CHOICES}Quota exceeded for key ***; contact support.",
    )
    cut_class, cut_message = rows["monitoring-002"]
    assert cut_class == "bad_reply" and cut_message.startswith(f"{NO_CHOICES}Quota exceeded")
    assert len(cut_message) == STORED_MESSAGE_CUT and cut_message.endswith("qqq***; ")
    judge_class, judge_message = rows["monitoring-003"]
    assert judge_class == "judge_error"
    assert judge_message.startswith("judge answered HTTP 400:") and "provided: ***" in judge_message
    assert "Incorrect API key provided" in report.read_text()
    assert "Incorrect API key provided" in junit.read_text()

    # Not even the first five characters of a key, as a cut after the redaction would leave.
    assert leaks((KEY[:5], JUDGE_KEY[:5]), home, report, junit, outputs(ran, shown)) == []


# --- credentials in the target's and the judge's URL ------------------------------------


def test_url_credentials_reach_no_row_report_or_output_and_the_run_still_uses_them(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with StubEndpoint(answer, locked=True) as stub:
        suite = write_suite(tmp_path / "suite", "http://127.0.0.1:9/v1")
        full = with_credentials(stub.base_url)
        ran = evalcore(
            *("run", "--suite", str(suite), "--target-url", full, "--judge-url", full, "--json"),
            cwd=tmp_path,
            home=home,
        )
        assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    report, junit = tmp_path / "report.html", tmp_path / "junit.xml"
    shown = evalcore(
        *("runs", "show", run_id, "--report", str(report), "--junit", str(junit)),
        cwd=tmp_path,
        home=home,
    )
    assert shown.returncode == 0, shown.stderr

    ((settings, target_config, target, scorecard),) = sqlite_rows(
        home, "SELECT settings, target_config, target, scorecard FROM run"
    )
    stored = masked(stub.base_url)
    assert json.loads(settings)["target_url"] == stored
    assert json.loads(settings)["judge_url"] == stored
    assert json.loads(target_config)["base_url"] == stored
    assert json.loads(target)["url"] == stored
    assert json.loads(scorecard)["target"]["base_url"] == "http://127.0.0.1:9/v1"
    assert leaks((PASSWORD, QUERY_SECRET), home, report, junit, outputs(ran, shown)) == []
    # Target and judge were called with the full URL: every case passed.
    assert stub.unauthorized == 0
    assert sqlite_rows(home, "SELECT count(*), sum(passed) FROM case_result") == [(3, 3)]


def test_an_unreachable_judge_is_reported_without_its_url_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    nobody = "http://127.0.0.1:9/v1"  # the discard port: connection refused
    with StubEndpoint(answer) as target:
        suite = write_suite(tmp_path / "suite", target.base_url)
        ran = evalcore(
            *("run", "--suite", str(suite), "--judge-url", with_credentials(nobody), "--json"),
            cwd=tmp_path,
            home=home,
        )
    assert ran.returncode == 0, ran.stderr
    rows = sqlite_rows(home, "SELECT error_class, error_message FROM case_result")
    assert len(rows) == 3
    called = masked(f"{nobody}/chat/completions")
    for error_class, message in rows:
        assert (error_class, message[: len(called) + 22]) == (
            "judge_error",
            f"judge at {called}: connection:",
        )
    assert leaks((PASSWORD, QUERY_SECRET), home, ran.stdout + ran.stderr) == []


def test_resuming_a_run_whose_url_had_credentials_asks_for_the_full_url_again(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with StubEndpoint(answer, locked=True) as stub, StubEndpoint(answer) as other:
        suite = write_suite(tmp_path / "suite", "http://127.0.0.1:9/v1", cases=4)
        full = with_credentials(stub.base_url)
        ran = evalcore(
            *("run", "--suite", str(suite), "--target-url", full, "--judge-url", full, "--json"),
            cwd=tmp_path,
            home=home,
        )
        assert ran.returncode == 0, ran.stderr
        run_id = json.loads(ran.stdout)["run_id"]
        # As a run killed midway leaves it: two results missing, the run not finished.
        with contextlib.closing(sqlite3.connect(home / "evalcore.db")) as conn:
            conn.execute(
                "DELETE FROM case_result WHERE case_id IN ('monitoring-001', 'monitoring-003')"
            )
            conn.execute("UPDATE run SET status = 'interrupted'")
            conn.commit()

        def resume(*extra: str) -> subprocess.CompletedProcess[str]:
            return evalcore("run", "--resume", run_id, *extra, cwd=tmp_path, home=home)

        def state() -> list[tuple[Any, ...]]:
            return sqlite_rows(
                home,
                "SELECT r.status, count(c.case_id) FROM run r "
                "LEFT JOIN case_result c ON c.run_id = r.id GROUP BY r.id",
            )

        without = resume()
        assert without.returncode == 3, without.stdout + without.stderr
        message = " ".join(without.stderr.split())
        assert f"run {run_id[:12]} started with --target-url {masked(stub.base_url)}" in message
        assert "resume it with --target-url and the full URL" in message
        assert state() == [("interrupted", 2)]

        elsewhere = resume("--target-url", other.base_url, "--judge-url", full)
        assert elsewhere.returncode == 3
        assert f"--target-url {other.base_url} is not the URL run {run_id[:12]} started" in (
            " ".join(elsewhere.stderr.split())
        )
        other_model = resume("--target-url", full, "--model", "other")
        assert other_model.returncode == 3
        assert "drop --set, --release and the overrides" in " ".join(other_model.stderr.split())
        assert state() == [("interrupted", 2)]

        resumed = resume("--target-url", full, "--judge-url", full, "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert stub.unauthorized == 0
    assert sqlite_rows(home, "SELECT status FROM run") == [("finished",)]
    assert sqlite_rows(home, "SELECT count(*), sum(passed) FROM case_result") == [(4, 4)]
    processes = (ran, without, elsewhere, other_model, resumed)
    assert leaks((PASSWORD, QUERY_SECRET), home, outputs(*processes)) == []


# --- flows: the gate and the monitor ----------------------------------------------------


def test_gate_and_monitor_flows_get_masked_urls_and_prefect_stores_no_credentials(
    tmp_path: Path,
) -> None:
    """Without PREFECT_API_URL each command, a process of its own, starts Prefect's
    temporary server on the database under PREFECT_HOME and stops it on exit, so every
    flow run, task run, log, event and artifact of both flows is in files searched here."""
    home, prefect_home = tmp_path / "home", tmp_path / "prefect"
    env = {"PREFECT_HOME": str(prefect_home)}
    junit = tmp_path / "gate.xml"
    with StubEndpoint(answer, locked=True) as stub:
        suite = write_suite(
            tmp_path / "suite", "http://127.0.0.1:9/v1", sets=("blocking", "monitoring")
        )
        full = with_credentials(stub.base_url)
        gated = evalcore_process(
            *("gate", "--release", "2026.12.1", "--suite", str(suite), "--junit", str(junit)),
            *("--target-url", full, "--judge-url", full),
            cwd=tmp_path,
            home=home,
            env=env,
        )
        monitored = evalcore_process(
            *("monitor", "--suite", str(suite), "--json"),
            cwd=tmp_path,
            home=home,
            env={**env, "EVALCORE_TARGET_URL": full, "EVALCORE_JUDGE_URL": full},
        )

    with contextlib.closing(sqlite3.connect(prefect_home / "prefect.db")) as conn:
        parameters = {
            flow: json.loads(params)
            for flow, params in conn.execute(
                "SELECT f.name, r.parameters FROM flow_run r JOIN flow f ON f.id = r.flow_id"
            )
        }
    stored = masked(stub.base_url)
    for flow in ("release-gate", "nightly-monitor"):
        assert (parameters[flow]["target_url"], parameters[flow]["judge_url"]) == (stored, stored)
    reports = sorted((home / "reports").glob("gate-*.html"))
    assert len(reports) == 1
    places = (home, prefect_home, junit, outputs(gated, monitored))
    assert leaks((PASSWORD, QUERY_SECRET), *places) == []
    # Both flows called target and judge with the full URL, and the gate passed.
    assert stub.unauthorized == 0
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert "Verdict: pass" in gated.stdout
    assert monitored.returncode == 0, monitored.stdout + monitored.stderr


def test_an_announced_url_is_masked_and_the_served_flow_completes_it_from_its_environment(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `release.created` payload is stored by Prefect, so it carries the masked URL; the
    served gate gets the full one from its own EVALCORE_TARGET_URL (as `evalcore up` sets
    it), and refuses a masked URL that nothing in its process or environment completes."""
    from prefect.client.schemas.objects import State
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    from evalcore import aio
    from evalcore.store.engine import get_engine
    from evalcore.store.repository import list_runs
    from flows.release_gate import release_gate

    async def served_gate(payload: dict[str, str | None]) -> State[Any]:
        return await release_gate(
            release=payload["release"] or "",
            target_url=payload["target_url"],
            suite=str(suite),
            trigger="release.created",
            return_state=True,
        )

    with StubEndpoint(answer, locked=True) as stub:
        suite = write_suite(tmp_path / "suite", "http://127.0.0.1:9/v1", sets=("blocking",))
        full = with_credentials(stub.base_url)
        announced = release_event_payload("2026.12.2", target_url=full, model=None)
        assert announced["target_url"] == masked(stub.base_url)
        other_route = with_credentials(stub.base_url + "/v2")
        unknown = release_event_payload("2026.12.3", target_url=other_route, model=None)
        monkeypatch.setenv("EVALCORE_TARGET_URL", full)
        monkeypatch.setenv("EVALCORE_JUDGE_URL", full)
        with temporary_settings(
            {PREFECT_API_URL: prefect_api, PREFECT_LOGGING_TO_API_ENABLED: False}
        ):
            served = aio.run(served_gate(announced))
            refused = aio.run(served_gate(unknown))
        assert stub.unauthorized == 0
    assert served.is_completed(), served.message
    assert refused.is_failed()
    assert "give it with EVALCORE_TARGET_URL" in (refused.message or "")
    assert [r.release for r in list_runs(get_engine())] == ["2026.12.2"]
