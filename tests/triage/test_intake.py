"""Intake of production failures into the backlog: validation, de-duplication, storage on
both databases, and the three ways in (the command, `POST /intake`, the flow)."""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from starlette.applications import Starlette
from starlette.testclient import TestClient

from evalcore.cli.intake import intake_routes
from evalcore.store.engine import get_engine
from evalcore.store.tables import BacklogItemRow
from evalcore.suite import Suite, load_suite
from evalcore.triage import intake as intake_module
from evalcore.triage.dedup import DedupIndex, fingerprint, gram_set, jaccard, normalise
from evalcore.triage.intake import (
    MAX_PAYLOAD_BYTES,
    IntakeError,
    ProductionFailure,
    case_index,
    item_counts,
    list_items,
    parse_payload,
    take_in,
)
from tests.cli_helpers import evalcore

EVALS = Path(__file__).resolve().parents[2] / "evals"
ROOT = EVALS.parent
TOKEN = "intake-test-token-1"
# refund-window-us-001, word for word
LAMP = (
    "hi i bought a floor lamp from your website 3 weeks ago (im in ohio) and it just doesnt "
    "fit the room, can i still send it back?? dont want to pay return shipping either"
)
LAMP_REFORMATTED = (
    "Hi, I bought a floor lamp from your website 2 weeks ago (I'm in Ohio) and it just "
    "doesn't fit the room... can I still send it back? Don't want to pay return shipping "
    "either!"
)
LAMP_REWORDED = (
    "hi i bought a floor lamp from your site 5 weeks ago (im in ohio) and it just doesnt "
    "fit the room, can i still send it back?? dont want to pay for return shipping either"
)
CUSHIONS = (
    "My sofa cushions arrived with a big tear in the fabric and the delivery driver left "
    "before I could check. Order 55812. Can I get a replacement cover sent out?"
)
CUSHIONS_REWORDED = (
    "my sofa cushions came with a big tear in the fabric and the delivery driver left "
    "before i could check. order 77120. can i get a replacement cover sent?"
)
GIFT_CARD = "Do you sell gift cards that I can post to my sister in Oslo?"


def payload(text: str = CUSHIONS, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "You are the support assistant."},
            {"role": "user", "content": text},
        ],
        "observed_output": "Sorry, returns are only possible within 30 days.",
        "what_was_wrong": "It is a damaged delivery, not a return; offer a replacement.",
        "reporter": "maya.okafor",
    }
    doc.update(fields)
    return doc


def failure(text: str = CUSHIONS, **fields: Any) -> ProductionFailure:
    return ProductionFailure.model_validate(payload(text, **fields))


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(EVALS)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def store(engine: Engine, suite: Suite, item: ProductionFailure, **provenance: Any) -> Any:
    return take_in(engine, suite, item, source="cli", provenance=provenance or {"test": True})


def rows(engine: Engine) -> list[BacklogItemRow]:
    return list_items(engine)


# --- normalising and fingerprints ---------------------------------------------------------


def test_normalise_folds_form_but_keeps_words() -> None:
    assert normalise("Order #123") == normalise("order #987") == "order 0"
    assert normalise("  I'm   FINE…\n\tthanks!! ") == "im fine thanks"
    assert normalise("ﬁne Ｏｒｄｅｒ ①②") == "fine order 0"  # NFKC
    assert normalise("Straße") == normalise("STRASSE")  # casefold
    assert normalise("?!...") == ""
    assert normalise("return a sofa") != normalise("return a lamp")
    assert fingerprint("Order #123, please!") == fingerprint("ORDER 987 please")
    assert fingerprint("Order #123") != fingerprint("Invoice #123")


@pytest.mark.parametrize("text", [LAMP, LAMP_REFORMATTED, "İstanbul ﬁ ①x_y", "Ça va? Öl, 12½"])
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


# --- the index: exact, near, and the same answers as comparing with everything -----------


def test_index_finds_exact_and_near_duplicates_and_ignores_the_rest() -> None:
    index = DedupIndex([("case:lamp", LAMP), ("case:cushions", CUSHIONS)])
    assert index.match(LAMP_REFORMATTED) == ("case:lamp", 1.0)
    assert index.exact(LAMP_REFORMATTED) == "case:lamp"
    near = index.match(LAMP_REWORDED)
    assert near is not None and near.ref == "case:lamp"
    assert 0.8 <= near.similarity < 1.0
    assert index.exact(LAMP_REWORDED) is None
    assert index.match(GIFT_CARD) is None
    assert index.match("?!") is None  # nothing left to compare


def test_threshold_is_configurable() -> None:
    similarity = jaccard(LAMP, LAMP_REWORDED)
    assert 0.8 <= similarity < 0.9
    assert DedupIndex([("a", LAMP)], threshold=0.9).match(LAMP_REWORDED) is None
    assert DedupIndex([("a", LAMP)], threshold=0.8).match(LAMP_REWORDED) is not None
    with pytest.raises(ValueError, match="threshold"):
        DedupIndex([], threshold=0.0)


def _brute_force(
    grams: list[Any], query: str, threshold: float
) -> tuple[int, float] | tuple[None, float]:
    q = gram_set(normalise(query))
    best: tuple[int, float] | tuple[None, float] = (None, 0.0)
    for i, g in enumerate(grams):
        common = len(np.intersect1d(q, g, assume_unique=True))
        similarity = common / (len(q) + len(g) - common)
        if similarity >= threshold and similarity > best[1]:
            best = (i, similarity)
    return best


@pytest.mark.parametrize("threshold", [0.8, 0.6])
def test_index_gives_the_same_best_match_as_comparing_with_every_entry(threshold: float) -> None:
    """Prefix filtering prunes candidates; it must never lose the best match."""
    from bench.intake import case_texts, new_items

    texts = list(dict.fromkeys(normalise(t) for t in case_texts(1000, seed=7)))
    grams = [gram_set(text) for text in texts]
    index = DedupIndex(((str(i), t) for i, t in enumerate(texts)), threshold=threshold)
    queries = [text for _, text in new_items(texts, 60, seed=11)]
    found = 0
    for query in queries:
        expected_ref, expected_similarity = _brute_force(grams, query, threshold)
        got = index.similar(query)
        if expected_ref is None:
            assert got is None, query
            continue
        found += 1
        assert got is not None, query
        assert got.similarity == pytest.approx(expected_similarity)
    assert found >= 25  # the near half of the queries matches


@pytest.mark.parametrize(
    ("threshold", "small", "big"), [(0.5, "abc", "abcdefg"), (0.8, "abcdefg", "abcdefghi")]
)
@pytest.mark.parametrize("indexed", ["small", "big"])
def test_prefix_filter_is_exact_at_the_bound(
    threshold: float, small: str, big: str, indexed: str
) -> None:
    """One text inside the other at exactly the threshold, sharing only its most frequent
    grams: the one case where a prefix one gram shorter (in the index or in the query)
    would miss. Single-character grams make the sets explicit: " abc " is {" ", a, b, c}."""
    fillers = [f"{letter}uvwxyz" for letter in small]  # make the shared letters frequent
    entry, query = (small, big) if indexed == "small" else (big, small)
    index = DedupIndex([("entry", entry)] + [(f, f) for f in fillers], threshold=threshold, n=1)
    found = index.similar(query)
    assert found is not None and found.ref == "entry"
    assert found.similarity == pytest.approx(threshold)
    stricter = DedupIndex([("entry", entry)], threshold=threshold + 0.01, n=1)
    assert stricter.similar(query) is None


def test_case_index_is_built_once_per_dataset_version(suite: Suite) -> None:
    first = case_index(suite)
    assert case_index(suite) is first
    assert first.dataset == suite.version.hash
    assert first.by_ticket["ZD-48213"] == "refund-window-eu-001"
    assert len(first.index) == len(suite.cases)


# --- parsing: every refusal names the field ---------------------------------------------


@pytest.mark.parametrize(
    ("document", "kind", "expected"),
    [
        (
            {"messages": [{"role": "user", "content": ""}], "observed_output": "x"},
            "invalid",
            [
                "messages.0.content: String should have at least 1 character",
                "what_was_wrong: Field required",
                "reporter: Field required",
            ],
        ),
        (
            payload(suggested_expect={"contains": ["14 days"], "containz": ["x"], "tone": 1}),
            "invalid",
            ["suggested_expect: unknown scorer(s) 'containz', 'tone'"],
        ),
        (
            payload(suggested_expect={"judge": {"min_score": 2}}),
            "invalid",
            ["suggested_expect.judge.rubric: Field required", "suggested_expect.judge.min_score"],
        ),
        (
            payload(ticket="zd 12", tags=["refunds", "has space"], severity="high"),
            "invalid",
            ["ticket: must look like ZD-48213", "tags: invalid tag(s) 'has space'", "severity"],
        ),
        (
            payload(messages=[{"role": "assistant", "content": "hello"}]),
            "invalid",
            ["messages: needs at least one user message"],
        ),
        (
            payload(messages=[{"role": "tool", "content": "{}"}, {"role": "user", "content": "x"}]),
            "invalid",
            ["messages.0.role: Input should be 'user', 'assistant' or 'system'"],
        ),
        (payload(reporter="   "), "invalid", ["reporter: must not be blank"]),
        ([payload()], "invalid", ["payload: must be a JSON object, got an array"]),
    ],
    ids=[
        "missing-and-empty",
        "unknown-scorers",
        "bad-expectation",
        "ticket-tags-extra",
        "no-user-message",
        "bad-role",
        "blank-reporter",
        "not-an-object",
    ],
)
def test_bad_payload_is_refused_naming_the_fields(
    document: Any, kind: str, expected: list[str]
) -> None:
    with pytest.raises(IntakeError) as caught:
        parse_payload(json.dumps(document))
    assert caught.value.kind == kind
    for fragment in expected:
        assert fragment in str(caught.value), str(caught.value)
    assert {f.field for f in caught.value.fields} <= {
        e.split(":")[0] for e in str(caught.value).split("; ")
    }


def test_not_json_and_too_large_are_told_apart() -> None:
    with pytest.raises(IntakeError, match=r"^not JSON: ") as caught:
        parse_payload(b'{"messages": [')
    assert caught.value.kind == "not_json"
    with pytest.raises(IntakeError, match=r"^not JSON: "):
        parse_payload(b"\xff\xfe not utf-8")
    big = json.dumps(payload("x" * (MAX_PAYLOAD_BYTES + 10)))
    with pytest.raises(IntakeError) as caught:
        parse_payload(big)
    assert caught.value.kind == "too_large"
    assert str(caught.value) == f"payload too large: {len(big)} bytes (limit 256 KiB)"
    # Checked before parsing: an oversized document that is not JSON is "too large".
    with pytest.raises(IntakeError, match="too large"):
        parse_payload(b"{" * (MAX_PAYLOAD_BYTES + 1))
    assert parse_payload(json.dumps(payload("x" * 20_000))).messages[1].content == "x" * 20_000


# --- storing: new items, duplicates linked, tickets, ids ---------------------------------


def test_new_failure_is_stored_open_with_its_provenance(engine: Engine, suite: Suite) -> None:
    item = failure(
        ticket="ZD-50001",
        tags=["refunds", "damaged", "refunds"],
        suggested_expect={"outcome": "answer", "contains": "replacement"},
    )
    result = store(engine, suite, item, file="/tmp/failure.json", user="maya")
    assert result.created and result.duplicate_of is None and result.similarity is None
    assert result.item.id == "BL-000001"
    [row] = rows(engine)
    assert row.id == "BL-000001" and row.state == "open"
    assert row.route == suite.scorecard.route  # defaulted from the suite
    assert row.ticket == "ZD-50001" and row.reporter == "maya.okafor"
    assert row.messages[1] == {"role": "user", "content": CUSHIONS}
    assert row.observed_output.startswith("Sorry") and row.what_was_wrong.startswith("It is")
    assert row.suggested_expect == {"outcome": "answer", "contains": ["replacement"]}
    assert row.tags == ["damaged", "refunds"]
    assert row.normalized_text == normalise(CUSHIONS)
    assert row.fingerprint == fingerprint(CUSHIONS)
    assert row.source == "cli" and row.duplicate_of is None and row.case_id is None
    assert row.provenance["file"] == "/tmp/failure.json"
    assert row.provenance["user"] == "maya"
    assert row.provenance["dataset"] == suite.version.hash
    assert len(row.provenance["payload_sha256"]) == 64
    assert row.received_at is not None
    assert item_counts(engine) == {
        "open": 1,
        "blocked": 0,
        "monitored": 0,
        "kept": 0,
        "dismissed": 0,
        "duplicate": 0,
    }
    assert list_items(engine, "open") == rows(engine) and list_items(engine, "duplicate") == []


@pytest.mark.parametrize(
    ("text", "exact"),
    [(LAMP_REFORMATTED, True), (LAMP_REWORDED, False)],
    ids=["renumbered-repunctuated", "reworded"],
)
def test_duplicate_of_a_case_is_stored_and_linked(
    engine: Engine, suite: Suite, text: str, exact: bool
) -> None:
    result = store(engine, suite, failure(text))
    assert not result.created
    assert result.duplicate_of == "case:refund-window-us-001"
    assert result.matched_by == ("fingerprint" if exact else "similarity")
    [row] = rows(engine)  # stored, never dropped
    assert row.state == "duplicate" and row.duplicate_of == "case:refund-window-us-001"
    assert row.similarity == result.similarity
    if exact:
        assert row.similarity == 1.0
    else:
        assert row.similarity is not None and 0.8 <= row.similarity < 1.0
    assert row.provenance["dedup"]["by"] == result.matched_by


def test_duplicate_of_an_open_item_links_to_it(engine: Engine, suite: Suite) -> None:
    first = store(engine, suite, failure(CUSHIONS))
    near = store(engine, suite, failure(CUSHIONS_REWORDED, reporter="daniel.brandt"))
    same = store(engine, suite, failure(CUSHIONS.upper()))
    other = store(engine, suite, failure(GIFT_CARD))
    assert first.created and other.created
    assert (near.duplicate_of, near.matched_by) == ("item:BL-000001", "similarity")
    assert near.similarity is not None and 0.8 <= near.similarity < 1.0
    assert (same.duplicate_of, same.similarity) == ("item:BL-000001", 1.0)
    assert [(r.id, r.state, r.duplicate_of) for r in rows(engine)] == [
        ("BL-000001", "open", None),
        ("BL-000002", "duplicate", "item:BL-000001"),
        ("BL-000003", "duplicate", "item:BL-000001"),
        ("BL-000004", "open", None),
    ]
    assert rows(engine)[1].reporter == "daniel.brandt"  # the second report is kept whole
    # Only open items are matched: once the first is decided, a new report is new work.
    with Session(engine) as session:
        session.execute(
            update(BacklogItemRow)
            .where(col(BacklogItemRow.id) == "BL-000001")
            .values(state="dismissed")
        )
        session.commit()
    again = store(engine, suite, failure(CUSHIONS))
    assert again.created and again.item.state == "open"


def test_same_ticket_twice_is_a_duplicate_of_the_first_item(engine: Engine, suite: Suite) -> None:
    first = store(engine, suite, failure(CUSHIONS, ticket="ZD-50100"))
    second = store(engine, suite, failure(GIFT_CARD, ticket="ZD-50100"))
    third = store(engine, suite, failure(GIFT_CARD + " Urgent.", ticket="ZD-50100"))
    assert first.created
    for later in (second, third):
        assert later.duplicate_of == "item:BL-000001" and later.matched_by == "ticket"
        assert later.item.state == "duplicate"
    assert second.similarity is not None and second.similarity < 0.2  # the texts differ
    # A ticket that already became a case links to that case.
    from_case = store(engine, suite, failure(GIFT_CARD, ticket="ZD-48213"))
    assert (from_case.duplicate_of, from_case.matched_by) == ("case:refund-window-eu-001", "ticket")
    assert item_counts(engine)["duplicate"] == 3 and item_counts(engine)["open"] == 1


def test_a_route_other_than_the_suites_is_refused_and_nothing_stored(
    engine: Engine, suite: Suite
) -> None:
    with pytest.raises(IntakeError, match="route: this suite evaluates route 'support-assistant'"):
        store(engine, suite, failure(route="billing-bot"))
    assert rows(engine) == []
    assert store(engine, suite, failure(route="support-assistant")).created


def test_concurrent_intake_allocates_distinct_ids_and_one_open_item_per_ticket(
    engine: Engine, suite: Suite
) -> None:
    threads, per_thread = 6, 4
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                text = f"Thread {chr(65 + n)} question {chr(65 + i)}: {'why ' * (n * 5 + i)}?"
                ticket = "ZD-60000" if i == 0 else f"ZD-6{n}{i:03d}"
                store(engine, suite, failure(text, ticket=ticket))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    stored = rows(engine)
    assert sorted(r.id for r in stored) == [
        f"BL-{i:06d}" for i in range(1, threads * per_thread + 1)
    ]
    same_ticket = [r for r in stored if r.ticket == "ZD-60000"]
    assert [r.state for r in same_ticket].count("open") == 1
    first = next(r for r in same_ticket if r.state == "open")
    assert all(r.duplicate_of == f"item:{first.id}" for r in same_ticket if r is not first)


def test_an_id_taken_meanwhile_is_retried(
    engine: Engine, suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(engine, suite, failure(CUSHIONS))
    real = intake_module._next_id
    calls: list[str] = []

    def stale_then_real(session: Session) -> str:
        calls.append("x")
        return "BL-000001" if len(calls) == 1 else real(session)

    monkeypatch.setattr(intake_module, "_next_id", stale_then_real)
    result = store(engine, suite, failure(GIFT_CARD))
    assert len(calls) == 2 and result.item.id == "BL-000002" and result.created
    assert [r.id for r in rows(engine)] == ["BL-000001", "BL-000002"]


def test_ids_keep_counting_past_six_digits(engine: Engine, suite: Suite) -> None:
    with Session(engine) as session:
        base = failure(CUSHIONS)
        for item_id in ("BL-999999", "BL-1000000"):
            session.add(
                BacklogItemRow(
                    id=item_id,
                    reporter="x",
                    route="support-assistant",
                    messages=[],
                    observed_output="x",
                    what_was_wrong="x",
                    normalized_text=f"seed {item_id}",
                    fingerprint="0" * 64,
                    state="dismissed",
                    provenance={},
                )
            )
        session.commit()
    assert store(engine, suite, base).item.id == "BL-1000001"


# --- the command, as a user runs it --------------------------------------------------------


def intake_cli(
    *args: str, home: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return evalcore("intake", *args, "--suite", str(EVALS), cwd=ROOT, home=home, stdin=stdin)


def sqlite_items(home: Path) -> list[tuple[str, str, str | None]]:
    with contextlib.closing(sqlite3.connect(home / "evalcore.db")) as conn:
        return conn.execute(
            "SELECT id, state, duplicate_of FROM backlog_item ORDER BY id"
        ).fetchall()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_cli_stores_links_duplicates_and_refuses_bad_payloads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    good = tmp_path / "failure.json"
    good.write_text(json.dumps(payload(ticket="ZD-50001")))

    done = intake_cli(str(good), home=home)
    assert done.returncode == 0, done.stderr
    assert "stored BL-000001 (open)" in flat(done.stdout)

    # A duplicate through stdin: stored, linked, exit 0.
    done = intake_cli("-", "--json", home=home, stdin=json.dumps(payload(LAMP_REWORDED)).encode())
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)
    assert item["id"] == "BL-000002" and item["state"] == "duplicate"
    assert item["duplicate_of"] == "case:refund-window-us-001" and not item["created"]
    assert 0.8 <= item["similarity"] < 1.0 and item["matched_by"] == "similarity"
    assert item["source"] == "cli" and item["provenance"]["file"] == "stdin"

    # The refusals (none of them touches the database):
    # (arguments, stdin, exit code, fragments expected on stderr).
    big = json.dumps(payload("y" * MAX_PAYLOAD_BYTES)).encode()
    files = {
        "missing.json": json.dumps({"messages": [{"role": "user", "content": ""}]}),
        "unknown-scorer.json": json.dumps(payload(suggested_expect={"tone": "calm"})),
        "not.json": "{'messages': oops}",
        "big.json": big.decode(),
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    refusals: list[tuple[list[str], bytes | None, list[str]]] = [
        (
            [str(tmp_path / "missing.json")],
            None,
            [
                "messages.0.content: String should have at least 1 character",
                "observed_output: Field required",
                "what_was_wrong: Field required",
                "reporter: Field required",
                "nothing stored",
            ],
        ),
        (
            [str(tmp_path / "unknown-scorer.json")],
            None,
            ["suggested_expect: unknown scorer(s) 'tone'", "nothing stored"],
        ),
        ([str(tmp_path / "not.json")], None, ["not JSON:", "nothing stored"]),
        (
            [str(tmp_path / "big.json")],
            None,
            [f"payload too large: {len(big)} bytes (limit 256 KiB)", "nothing stored"],
        ),
        (["-"], big, [f"payload too large: {len(big)} bytes (limit 256 KiB)"]),
        ([str(tmp_path / "absent.json")], None, ["cannot read"]),
        (["-", "--json"], b'{"reporter": 5}', []),
    ]
    results = [intake_cli(*args, home=home, stdin=stdin) for args, stdin, _ in refusals]
    for (args, _, fragments), done in zip(refusals, results, strict=True):
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        for fragment in fragments:
            assert fragment in flat(done.stderr), (args, done.stderr)
    refused = json.loads(results[-1].stdout)
    assert refused["ok"] is False and refused["kind"] == "invalid"
    assert {"reporter", "messages", "observed_output", "what_was_wrong"} <= {
        f["field"] for f in refused["fields"]
    }

    assert sqlite_items(home) == [
        ("BL-000001", "open", None),
        ("BL-000002", "duplicate", "case:refund-window-us-001"),
    ]


# --- the HTTP endpoint ------------------------------------------------------------------------


@pytest.fixture
def client(db_url: str, suite: Suite) -> Iterator[TestClient]:
    app = Starlette(routes=intake_routes(lambda: get_engine(db_url), lambda: suite, TOKEN))
    with TestClient(app) as test_client:
        yield test_client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_http_intake_stores_and_links(client: TestClient, db_url: str) -> None:
    created = client.post("/intake", json=payload(ticket="ZD-50002"), headers=AUTH)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == "BL-000001" and body["state"] == "open" and body["created"]
    assert body["source"] == "http" and body["provenance"]["via"] == "POST /intake"

    duplicate = client.post("/intake", json=payload(CUSHIONS_REWORDED), headers=AUTH)
    assert duplicate.status_code == 200, duplicate.text
    body = duplicate.json()
    assert body["id"] == "BL-000002" and body["state"] == "duplicate"
    assert body["duplicate_of"] == "item:BL-000001" and 0.8 <= body["similarity"] < 1.0
    assert [r.state for r in rows(get_engine(db_url))] == ["open", "duplicate"]


def test_http_intake_refuses_without_storing(client: TestClient, db_url: str) -> None:
    good = payload()
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ):
        denied = client.post("/intake", json=good, headers=headers)
        assert denied.status_code == 401, headers
        assert denied.headers["www-authenticate"] == "Bearer"

    big = json.dumps(payload("x" * MAX_PAYLOAD_BYTES)).encode()
    too_large = client.post(
        "/intake", content=big, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"] == f"payload too large: {len(big)} bytes (limit 256 KiB)"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it comes
        for _ in range(5):
            yield b" " * (MAX_PAYLOAD_BYTES // 4)

    streamed = client.post("/intake", content=chunks(), headers=AUTH)
    assert streamed.status_code == 413
    # Reading stopped at the limit, so the size is a lower bound.
    assert streamed.json()["error"] == "payload too large: over 262144 bytes (limit 256 KiB)"

    not_json = client.post("/intake", content=b"reporter=maya", headers=AUTH)
    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith("not JSON: ") and not_json.json()["fields"] == []

    invalid = client.post(
        "/intake",
        json={**payload(suggested_expect={"contain": ["x"]}), "reporter": ""},
        headers=AUTH,
    )
    assert invalid.status_code == 422
    fields = {f["field"]: f["message"] for f in invalid.json()["fields"]}
    assert fields["reporter"] == "String should have at least 1 character"
    assert fields["suggested_expect"].startswith("unknown scorer(s) 'contain'")
    assert "reporter" in invalid.json()["error"]

    wrong_route = client.post("/intake", json=payload(route="billing-bot"), headers=AUTH)
    assert wrong_route.status_code == 422
    assert wrong_route.json()["fields"][0]["field"] == "route"

    assert rows(get_engine(db_url)) == []


def test_http_intake_needs_a_token(suite: Suite) -> None:
    with pytest.raises(ValueError, match="token"):
        intake_routes(get_engine, lambda: suite, "")


# --- the flow -------------------------------------------------------------------------------


def test_flow_takes_in_and_fails_naming_the_field() -> None:
    from flows.intake import intake

    item = intake.fn(payload(ticket="ZD-50003"), suite=str(EVALS))
    assert item["id"] == "BL-000001" and item["state"] == "open"
    assert item["source"] == "flow" and item["provenance"]["via"] == "intake flow"
    again = intake.fn(payload(CUSHIONS_REWORDED), suite=str(EVALS))
    assert again["duplicate_of"] == "item:BL-000001"
    with pytest.raises(IntakeError, match="what_was_wrong: Field required"):
        intake.fn({k: v for k, v in payload().items() if k != "what_was_wrong"}, suite=str(EVALS))
    with pytest.raises(IntakeError, match="payload too large"):
        intake.fn(payload("x" * MAX_PAYLOAD_BYTES), suite=str(EVALS))
    assert [r.id for r in list_items(get_engine())] == ["BL-000001", "BL-000002"]


def test_random_payloads_never_escape_as_anything_but_intake_errors() -> None:
    rng = random.Random(5)
    pieces = ['{"messages":', "[", "]", "{", "}", '"role"', ":", '"user"', ",", '"x"', "null"]
    for _ in range(300):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            parse_payload(raw)
        except IntakeError as exc:
            assert exc.kind in ("not_json", "invalid")
