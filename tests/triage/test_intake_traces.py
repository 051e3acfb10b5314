"""Trace exports into the backlog as a user sends them: `evalcore intake --format
otlp|langfuse FILE|-` and `POST /intake` with `Content-Type: application/json;
format=otlp|langfuse`. A bad export exits 3 (or answers 4xx) and stores nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from evalcore.cli.intake import intake_routes
from evalcore.store.engine import dispose_engines, get_engine
from evalcore.store.tables import BacklogItemRow
from evalcore.suite import Suite, load_suite
from evalcore.triage.intake import MAX_PAYLOAD_BYTES, list_items
from evalcore.triage.traces import MAX_EXPORT_BYTES
from tests.cli_helpers import evalcore

ROOT = Path(__file__).resolve().parents[2]
EVALS = ROOT / "evals"
DATA = ROOT / "tests" / "data"
OTLP = DATA / "otlp" / "genai_traces.json"
LANGFUSE = DATA / "langfuse" / "traces.json"
TOKEN = "trace-intake-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OTLP_TYPE = {**AUTH, "Content-Type": "application/json; format=otlp"}
LANGFUSE_TYPE = {**AUTH, "Content-Type": "application/json; format=langfuse"}


def intake(*args: str, home: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return evalcore("intake", *args, "--suite", str(EVALS), cwd=ROOT, home=home, stdin=stdin)


def stored(home: Path) -> list[BacklogItemRow]:
    dispose_engines()
    try:
        return list_items(get_engine(f"sqlite:///{home / 'evalcore.db'}"))
    finally:
        dispose_engines()


def flat(text: str) -> str:
    return " ".join(text.split())


def otlp_trace_ids() -> list[str]:
    document = json.loads(OTLP.read_text())
    spans = [s for scope in document["resourceSpans"][0]["scopeSpans"] for s in scope["spans"]]
    return list(dict.fromkeys(s["traceId"] for s in spans))


def without_evaluations(document: dict[str, Any]) -> dict[str, Any]:
    for scope in document["resourceSpans"][0]["scopeSpans"]:
        for span in scope["spans"]:
            span["events"] = [e for e in span["events"] if "evaluation" not in e["name"]]
    return document


# --- the command ------------------------------------------------------------------------------


def test_cli_takes_in_the_failed_traces_of_an_otlp_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second, _, _ = otlp_trace_ids()
    done = intake("--format", "OTLP", str(OTLP), home=home)
    assert done.returncode == 0, done.stderr
    out = flat(done.stdout)
    assert f"{OTLP}: 4 trace(s), 2 taken in" in out
    assert f"stored BL-000001 (open) · trace {first} · route support-assistant" in out
    assert f"stored BL-000002 (open) · trace {second}" in out

    items = stored(home)
    assert [(i.id, i.state, i.reporter, i.source) for i in items] == [
        ("BL-000001", "open", "otlp:lumen-support-api", "cli"),
        ("BL-000002", "open", "otlp:lumen-support-api", "cli"),
    ]
    provenance = items[0].provenance
    assert provenance["trace_id"] == first and len(provenance["span_id"]) == 16
    assert provenance["model"] == "gpt-4o-mini-2024-07-18"
    assert provenance["timestamp"] == "2026-03-10T13:40:00.120Z"
    assert provenance["via"] == "evalcore intake --format otlp"
    assert provenance["file"] == str(OTLP.resolve())
    assert items[0].tags == ["otlp", "trace"]
    assert items[1].observed_output.startswith("tool_call create_refund(")

    # The same export again: every failure is a duplicate of what it already gave.
    again = intake("--format", "otlp", str(OTLP), "--json", home=home)
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert (answer["ok"], answer["format"], answer["traces"], answer["selected"]) == (
        True,
        "otlp",
        4,
        2,
    )
    assert [(i["id"], i["trace_id"], i["duplicate_of"], i["created"]) for i in answer["items"]] == [
        ("BL-000003", first, "item:BL-000001", False),
        ("BL-000004", second, "item:BL-000002", False),
    ]


def test_cli_reads_langfuse_from_stdin_with_named_traces_and_a_reporter(tmp_path: Path) -> None:
    home = tmp_path / "home"
    traces = json.loads(LANGFUSE.read_text())
    wanted = [traces[3]["id"], traces[0]["id"]]
    done = intake(
        *("--format", "langfuse", "-", "--json", "--reporter", "maya.okafor"),
        *("--trace-id", wanted[0], "--trace-id", wanted[1], "--route", "support-assistant"),
        home=home,
        stdin=LANGFUSE.read_bytes(),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["file"] == "stdin" and answer["traces"] == 4
    # File order, whatever the order of --trace-id.
    assert [i["trace_id"] for i in answer["items"]] == [traces[0]["id"], traces[3]["id"]]
    assert {i["reporter"] for i in answer["items"]} == {"maya.okafor"}
    assert answer["items"][1]["what_was_wrong"].startswith("taken in by trace id")
    assert [i.provenance["trace_id"] for i in stored(home)] == [traces[0]["id"], traces[3]["id"]]


def test_cli_says_when_no_trace_is_marked_failed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    quiet = tmp_path / "quiet.json"
    quiet.write_text(json.dumps(without_evaluations(json.loads(OTLP.read_text()))))
    done = intake("--format", "otlp", str(quiet), "--below", "0.5", home=home)
    assert done.returncode == 0, done.stderr
    assert flat(done.stdout) == (
        f"no trace in {quiet} is marked failed (score <= 0.5, labels bad, fail, failed, "
        "failure, incorrect, negative, not_relevant, thumbs_down, thumbsdown, unhelpful, "
        "wrong, or --trace-id); nothing stored"
    )
    answer = json.loads(intake("--format", "otlp", str(quiet), "--json", home=home).stdout)
    assert answer["items"] == [] and answer["message"].startswith("no trace in")
    assert not (home / "evalcore.db").exists() or stored(home) == []


def test_cli_refuses_bad_exports_and_stores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    get_engine(f"sqlite:///{home / 'evalcore.db'}")  # the backlog table exists, empty
    dispose_engines()

    missing_trace_id = json.loads(OTLP.read_text())
    del missing_trace_id["resourceSpans"][0]["scopeSpans"][1]["spans"][4]["traceId"]
    broken = OTLP.read_text().splitlines()
    line = next(n for n, text in enumerate(broken) if '"spanId"' in text)
    broken[line] = broken[line].replace('"', "", 1)
    no_input = json.loads(LANGFUSE.read_text())
    del no_input[0]["input"]
    no_input[0]["observations"] = []
    files = {
        "not-otlp.json": json.dumps({"spans": []}),
        "no-trace-id.json": json.dumps(missing_trace_id),
        "broken.json": "\n".join(broken),
        "no-input.json": json.dumps(no_input),
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    cases: list[tuple[list[str], list[str]]] = [
        (
            ["--format", "otlp", "not-otlp.json"],
            ["invalid trace export, nothing stored", "payload: not an OTLP/JSON trace export"],
        ),
        (
            ["--format", "otlp", "no-trace-id.json"],
            ["resourceSpans[0].scopeSpans[1].spans[4].traceId: missing"],
        ),
        (["--format", "otlp", "broken.json"], ["not JSON: ", f"line {line + 1} column"]),
        (
            ["--format", "langfuse", "no-input.json"],
            ["[0].input: missing: trace 3f6c2a9e-8b41-4d7a-9c55-1e2f0a7b6d84 has no input"],
        ),
        (
            ["--format", "otlp", str(OTLP), "--trace-id", "0af7651916cd43dd8448eb211c80319c"],
            ["trace_id: 0af7651916cd43dd8448eb211c80319c: no trace with this id"],
        ),
        (
            ["--format", "otlp", str(OTLP), "--route", "billing-bot"],
            ["route: this suite evaluates route 'support-assistant', not 'billing-bot'"],
        ),
        (["--format", "zipkin", str(OTLP)], ["unknown --format 'zipkin'"]),
        (
            [str(OTLP), "--below", "1", "--trace-id", "x"],
            ["--below, --trace-id apply to --format otlp or langfuse"],
        ),
    ]
    for args, fragments in cases:
        args = [str(tmp_path / a) if a in files else a for a in args]
        done = intake(*args, home=home)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        for fragment in fragments:
            assert fragment in flat(done.stderr), (args, done.stderr)
    as_json = intake("--format", "otlp", str(tmp_path / "no-trace-id.json"), "--json", home=home)
    assert as_json.returncode == 3
    refused = json.loads(as_json.stdout)
    assert refused["ok"] is False and refused["kind"] == "invalid"
    assert refused["fields"][0]["field"] == "resourceSpans[0].scopeSpans[1].spans[4].traceId"
    assert stored(home) == []


def test_cli_reads_exports_beyond_a_payloads_limit_up_to_64_mib(tmp_path: Path) -> None:
    home = tmp_path / "home"
    padded = tmp_path / "padded.json"
    padded.write_bytes(OTLP.read_bytes() + b" " * (MAX_PAYLOAD_BYTES + 1))
    done = intake("--format", "otlp", str(padded), home=home)
    assert done.returncode == 0, done.stderr
    assert len(stored(home)) == 2
    huge = tmp_path / "huge.json"
    with huge.open("wb") as sparse:  # no bytes written: the size is refused before reading
        sparse.truncate(MAX_EXPORT_BYTES + 1)
    done = intake("--format", "otlp", str(huge), home=home)
    assert done.returncode == 3
    assert (
        f"trace export too large: {MAX_EXPORT_BYTES + 1} bytes (limit 64 MiB); nothing stored"
        in flat(done.stderr)
    )


# --- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(EVALS)


@pytest.fixture
def client(db_url: str, suite: Suite) -> Iterator[TestClient]:
    app = Starlette(routes=intake_routes(lambda: get_engine(db_url), lambda: suite, TOKEN))
    with TestClient(app) as test_client:
        yield test_client


def test_http_takes_in_otlp_and_langfuse_exports(client: TestClient, db_url: str) -> None:
    first, second, passing, _ = otlp_trace_ids()
    created = client.post("/intake", content=OTLP.read_bytes(), headers=OTLP_TYPE)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["format"], body["traces"], body["selected"]) == ("otlp", 4, 2)
    assert [(i["id"], i["trace_id"], i["source"]) for i in body["items"]] == [
        ("BL-000001", first, "http"),
        ("BL-000002", second, "http"),
    ]
    assert body["items"][0]["provenance"]["via"] == "POST /intake (format=otlp)"

    again = client.post("/intake", content=OTLP.read_bytes(), headers=OTLP_TYPE)
    assert again.status_code == 200, again.text  # all duplicates
    assert [i["duplicate_of"] for i in again.json()["items"]] == [
        "item:BL-000001",
        "item:BL-000002",
    ]

    traces = json.loads(LANGFUSE.read_text())
    elsewhere = client.post(
        "/intake",
        params=[("trace_id", traces[3]["id"]), ("trace_id", passing)],
        content=LANGFUSE.read_bytes(),
        headers=LANGFUSE_TYPE,
    )
    assert elsewhere.status_code == 422, elsewhere.text  # the OTLP trace is not in this export
    assert elsewhere.json()["fields"] == [
        {"field": "trace_id", "message": f"{passing}: no trace with this id in the export"}
    ]
    named = client.post(
        "/intake",
        params=[("trace_id", traces[3]["id"]), ("reporter", "ines"), ("below", "-1")],
        content=LANGFUSE.read_bytes(),
        headers=LANGFUSE_TYPE,
    )
    assert named.status_code == 201, named.text
    [item] = named.json()["items"]
    assert item["trace_id"] == traces[3]["id"] and item["reporter"] == "ines"
    assert len(list_items(get_engine(db_url))) == 5


def test_http_answers_when_nothing_is_marked_and_refuses_without_storing(
    client: TestClient, db_url: str
) -> None:
    quiet = json.dumps(without_evaluations(json.loads(OTLP.read_text()))).encode()
    nothing = client.post("/intake", content=quiet, headers=OTLP_TYPE)
    assert nothing.status_code == 200, nothing.text
    assert nothing.json()["items"] == []
    assert nothing.json()["message"].startswith("no trace in the export is marked failed")
    assert nothing.json()["message"].endswith("or trace_id); nothing stored")

    protobuf = client.post(
        "/intake",
        content=b"\x0a\x02\x08\x01",
        headers={**AUTH, "Content-Type": "application/x-protobuf"},
    )
    assert protobuf.status_code == 415
    assert "export OTLP/JSON" in protobuf.json()["error"]
    unknown = client.post(
        "/intake", content=quiet, headers={**AUTH, "Content-Type": "application/json; format=x"}
    )
    assert unknown.status_code == 415

    missing = json.loads(OTLP.read_text())
    del missing["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"]
    invalid = client.post("/intake", content=json.dumps(missing), headers=OTLP_TYPE)
    assert invalid.status_code == 422
    assert invalid.json()["fields"] == [
        {"field": "resourceSpans[0].scopeSpans[0].spans[1].traceId", "message": "missing"}
    ]
    broken = client.post("/intake", content=OTLP.read_bytes()[:-10], headers=OTLP_TYPE)
    assert broken.status_code == 400 and broken.json()["error"].startswith("not JSON: ")
    bad_below = client.post(
        "/intake", params={"below": "low"}, content=OTLP.read_bytes(), headers=OTLP_TYPE
    )
    assert bad_below.status_code == 422
    assert bad_below.json()["fields"] == [
        {"field": "below", "message": "must be a number, got 'low'"}
    ]
    # The HTTP limit is a payload's, whatever the format.
    padded = OTLP.read_bytes() + b" " * MAX_PAYLOAD_BYTES
    too_large = client.post("/intake", content=padded, headers=OTLP_TYPE)
    assert too_large.status_code == 413
    unauthorised = client.post(
        "/intake", content=OTLP.read_bytes(), headers={"Content-Type": OTLP_TYPE["Content-Type"]}
    )
    assert unauthorised.status_code == 401

    assert list_items(get_engine(db_url)) == []


def test_expect_is_suggested_for_every_failure_and_a_bad_one_stores_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    bad = intake("--format", "otlp", str(OTLP), "--expect", '{"outcome": "maybe"}', home=home)
    assert bad.returncode == 3
    assert "invalid --expect, nothing stored" in flat(bad.stderr)
    assert "outcome: Input should be" in flat(bad.stderr)
    assert not (home / "evalcore.db").exists() or stored(home) == []

    suggested = {"outcome": "answer", "contains": ["14 days"]}
    done = intake(
        *("--format", "otlp", str(OTLP), "--json", "--expect", json.dumps(suggested)), home=home
    )
    assert done.returncode == 0, done.stderr
    items = stored(home)
    assert len(items) == 2 and all(item.suggested_expect == suggested for item in items)
