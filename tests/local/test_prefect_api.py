"""The stack's calls to the Prefect API behave as Prefect's own client: a Prefect server
answers 503 while its SQLite database is locked and expects the call again, so a busy
server does not fail a trigger, a wait or a test; any other error is still raised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from evalcore.local.stack import final_state, online_workers, start_flow_run

DEPLOYMENT_ID = "0b8a3c4e-3f7e-4d5c-9a51-0c8f8f3f1a01"
FLOW_RUN_ID = "5d0c1f6e-8a2b-4c3d-9e4f-1a2b3c4d5e6f"


class LockedOnce:
    """A Prefect API whose every endpoint answers 503 the first time it is called, as a
    Prefect server on a locked SQLite database does, and then as the real one would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def answer(self, method: str, path: str) -> tuple[int, object]:
        first = (method, path) not in self.calls
        self.calls.append((method, path))
        if first:
            return 503, {"exception_message": "Service Unavailable"}
        if path == "/api/deployments/name/nightly-monitor/nightly-monitor":
            return 200, {"id": DEPLOYMENT_ID}
        if path == f"/api/deployments/{DEPLOYMENT_ID}/create_flow_run":
            return 201, {"id": FLOW_RUN_ID}
        if path == f"/api/flow_runs/{FLOW_RUN_ID}":
            return 200, {"id": FLOW_RUN_ID, "state": {"type": "COMPLETED"}}
        if path == "/api/work_pools/evalcore/workers/filter":
            return 200, [{"name": "evalcore-worker-1", "status": "ONLINE"}]
        return 404, {"detail": "Not Found"}


@pytest.fixture
def locked_once() -> Iterator[tuple[str, LockedOnce]]:
    api = LockedOnce()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = api.answer(self.command, self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", api
    finally:
        server.shutdown()
        server.server_close()


def test_a_locked_prefect_database_delays_the_calls_instead_of_failing_them(
    locked_once: tuple[str, LockedOnce],
) -> None:
    url, api = locked_once
    assert start_flow_run(url, "nightly-monitor/nightly-monitor") == FLOW_RUN_ID
    assert final_state(url, FLOW_RUN_ID, timeout_s=60) == "COMPLETED"
    assert online_workers(url) == ["evalcore-worker-1"]
    # Every call was answered 503 once and made again.
    assert api.calls == [
        ("GET", "/api/deployments/name/nightly-monitor/nightly-monitor"),
        ("GET", "/api/deployments/name/nightly-monitor/nightly-monitor"),
        ("POST", f"/api/deployments/{DEPLOYMENT_ID}/create_flow_run"),
        ("POST", f"/api/deployments/{DEPLOYMENT_ID}/create_flow_run"),
        ("GET", f"/api/flow_runs/{FLOW_RUN_ID}"),
        ("GET", f"/api/flow_runs/{FLOW_RUN_ID}"),
        ("POST", "/api/work_pools/evalcore/workers/filter"),
        ("POST", "/api/work_pools/evalcore/workers/filter"),
    ]


def test_an_unknown_deployment_is_an_error_not_a_retry(locked_once: tuple[str, LockedOnce]) -> None:
    url, api = locked_once
    with pytest.raises(httpx.HTTPStatusError, match="404") as raised:
        start_flow_run(url, "no-such/deployment")
    assert raised.value.response.json() == {"detail": "Not Found"}
    assert [path for _, path in api.calls] == ["/api/deployments/name/no-such/deployment"] * 2
