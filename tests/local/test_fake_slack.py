"""The local fake of the Slack Web API, driven by the real slack_sdk clients over HTTP:
response shapes, threads and pagination, Slack's errors, faults on demand, and the
request-signing helpers checked against slack_sdk's own verifier."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from evalcore.local.fake_slack import (
    FakeChannel,
    FakeSlackConfig,
    FakeSlackError,
    FakeSlackServer,
    Fault,
    create_app,
)
from evalcore.local.fake_slack.__main__ import build_parser, load_config
from evalcore.slack.signing import interactivity_body, sign_request

EVALS = "C0EVALS01"
OWNER = "U04QH7KM2AB"
SECOND = "U05B8RZT1QK"


@pytest.fixture
def client(slack: FakeSlackServer) -> WebClient:
    # No retry handlers beyond slack_sdk's default (connection errors only).
    return WebClient(token=slack.token, base_url=slack.api_url, timeout=10)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def error_of(caught: pytest.ExceptionInfo[SlackApiError]) -> str:
    error: str = caught.value.response["error"]
    return error


# --------------------------------------------------------------------------- shapes


def test_health_auth_test_and_urls(slack: FakeSlackServer, client: WebClient) -> None:
    health = httpx.get(f"{slack.url}/health").json()
    assert health["ok"] is True and isinstance(health["pid"], int)
    assert slack.api_url == f"http://127.0.0.1:{slack.port}/api/"
    auth = client.auth_test()
    assert auth.data == {
        "ok": True,
        "url": "https://evalcore.slack.com/",
        "team": "Evalcore",
        "user": "evalcore",
        "team_id": "T07EVALCORE",
        "user_id": "U07EVALBOT",
        "bot_id": "B07EVALBOT",
        "is_enterprise_install": False,
    }
    assert auth.headers["x-oauth-scopes"].split(",")[0] == "chat:write"


def test_post_then_update(slack: FakeSlackServer, client: WebClient) -> None:
    posted = client.chat_postMessage(
        channel="#support-assistant-evals", text="Weekly triage", blocks=[section("*3* open")]
    )
    assert posted["ok"] is True and posted["channel"] == EVALS
    ts = posted["ts"]
    assert isinstance(ts, str) and len(ts.split(".")[1]) == 6
    message = posted["message"]
    assert message["type"] == "message" and message["text"] == "Weekly triage"
    assert message["user"] == "U07EVALBOT" and message["bot_id"] == "B07EVALBOT"
    assert message["ts"] == ts and "thread_ts" not in message and "edited" not in message
    assert message["blocks"][0]["text"]["text"] == "*3* open"
    assert message["blocks"][0]["block_id"]  # Slack fills in block ids
    assert "warning" not in posted.data  # slack_sdk declares its charset

    second = client.chat_postMessage(channel=EVALS, text="next")
    assert float(second["ts"]) > float(ts)

    updated = client.chat_update(channel=EVALS, ts=ts, text="Weekly triage (2 open)")
    assert updated["ok"] is True and updated["channel"] == EVALS and updated["ts"] == ts
    assert updated["text"] == "Weekly triage (2 open)"
    assert updated["message"]["text"] == "Weekly triage (2 open)"
    assert updated["message"]["edited"]["user"] == "U07EVALBOT"
    assert float(updated["message"]["edited"]["ts"]) > float(ts)
    # Blocks are kept when an update leaves them out.
    assert updated["message"]["blocks"][0]["text"]["text"] == "*3* open"

    [stored, _] = slack.messages(EVALS)
    assert stored["ts"] == ts and stored["text"] == "Weekly triage (2 open)"
    assert stored["message"]["edited"] == updated["message"]["edited"]
    assert [e["text"] for e in stored["edits"]] == ["Weekly triage"]
    assert slack.messages("#support-assistant-evals") == slack.messages(EVALS)

    requests = slack.requests()
    assert [r["method"] for r in requests] == ["chat.postMessage"] * 2 + ["chat.update"]
    first = requests[0]
    assert first["headers"]["authorization"] == "Bearer xoxb-f" + "*" * (len(slack.token) - 6)
    assert slack.token not in json.dumps(requests)
    assert first["headers"]["content-type"] == "application/json;charset=utf-8"
    assert first["body"]["channel"] == "#support-assistant-evals"
    assert first["body"]["blocks"] == [section("*3* open")]
    assert first["status"] == 200 and first["ok"] is True
    assert requests[2]["body"]["ts"] == ts
    assert [r["method"] for r in slack.requests("chat.update")] == ["chat.update"]


def test_form_and_multipart_bodies_with_blocks_as_json_strings(
    slack: FakeSlackServer, client: WebClient
) -> None:
    blocks = json.dumps([section("from a form")])
    form = httpx.post(
        f"{slack.api_url}chat.postMessage",
        data={"token": slack.token, "channel": EVALS, "text": "form", "blocks": blocks},
    )
    assert form.status_code == 200 and form.json()["ok"] is True
    assert form.json()["message"]["blocks"][0]["text"]["text"] == "from a form"
    # slack_sdk sends `data=` form-urlencoded, Slack's own examples use multipart too.
    via_sdk = client.api_call(
        "chat.postMessage", data={"channel": EVALS, "text": "sdk form", "blocks": blocks}
    )
    assert via_sdk["message"]["blocks"][0]["text"]["text"] == "from a form"
    multipart = httpx.post(
        f"{slack.api_url}chat.postMessage",
        data={"channel": EVALS, "text": "multi", "blocks": blocks},
        files={"file": ("notes.txt", b"attached")},
        headers={"Authorization": f"Bearer {slack.token}"},
    ).json()
    assert multipart["ok"] is True and "warning" not in multipart
    assert multipart["message"]["blocks"][0]["text"]["text"] == "from a form"
    # JSON without a charset is served, with Slack's warning.
    bare = httpx.post(
        f"{slack.api_url}chat.postMessage",
        content=json.dumps({"channel": EVALS, "text": "bare"}),
        headers={"Authorization": f"Bearer {slack.token}", "Content-Type": "application/json"},
    ).json()
    assert bare["ok"] is True and bare["warning"] == "missing_charset"
    assert bare["response_metadata"]["warnings"] == ["missing_charset"]
    recorded = slack.requests()
    assert recorded[0]["body"]["token"].startswith("xoxb-f*")
    assert recorded[1]["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert recorded[2]["headers"]["content-type"].startswith("multipart/form-data")
    assert recorded[2]["body"]["file"] == {"filename": "notes.txt", "size": 8}
    assert [m["text"] for m in slack.messages(EVALS)] == ["form", "sdk form", "multi", "bare"]


def test_thread_replies_and_pagination(slack: FakeSlackServer, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=EVALS, text="Digest: ZD-48213 regressed")
    thread = parent["ts"]
    first = slack.post_as_user(EVALS, "block ZD-48213", user=OWNER, thread_ts=thread)
    second = slack.post_as_user(EVALS, "agreed", user=SECOND, thread_ts=thread)
    assert first["channel"] == EVALS and float(second["ts"]) > float(first["ts"]) > float(thread)

    replies = client.conversations_replies(channel=EVALS, ts=thread)
    messages = replies["messages"]
    assert [m["ts"] for m in messages] == [thread, first["ts"], second["ts"]]
    assert replies["has_more"] is False and "response_metadata" not in replies.data
    head = messages[0]
    assert head["thread_ts"] == thread and head["reply_count"] == 2
    assert head["reply_users"] == [OWNER, SECOND] and head["latest_reply"] == second["ts"]
    reply = messages[1]
    assert reply["user"] == OWNER and reply["text"] == "block ZD-48213"
    assert reply["thread_ts"] == thread and reply["parent_user_id"] == "U07EVALBOT"
    assert "bot_id" not in reply and reply["client_msg_id"]

    # Asking with a reply's ts returns the whole thread, as Slack does.
    by_reply = client.conversations_replies(channel=EVALS, ts=first["ts"])
    assert [m["ts"] for m in by_reply["messages"]] == [m["ts"] for m in messages]

    # limit=1 walks the thread one message per page, parent first.
    page = client.conversations_replies(channel=EVALS, ts=thread, limit=1)
    seen = [m["ts"] for m in page["messages"]]
    pages = 1
    while page["has_more"]:
        cursor = page["response_metadata"]["next_cursor"]
        assert cursor
        page = client.conversations_replies(channel=EVALS, ts=thread, limit=1, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        pages += 1
    assert seen == [thread, first["ts"], second["ts"]] and pages == 3
    # slack_sdk's own iteration follows next_cursor.
    iterated = [
        m["ts"]
        for p in client.conversations_replies(channel=EVALS, ts=thread, limit=2)
        for m in p["messages"]
    ]
    assert iterated == seen

    # The channel's history shows the parent with its thread facts, not the replies.
    history = client.conversations_history(channel=EVALS)
    assert [m["ts"] for m in history["messages"]] == [thread]
    assert history["messages"][0]["reply_count"] == 2
    stored = slack.messages(EVALS)
    assert [m["thread_ts"] for m in stored] == [None, thread, thread]
    assert [m["author"] for m in stored] == ["bot", "user", "user"]


def test_history_is_newest_first_and_paginates(client: WebClient) -> None:
    sent = [client.chat_postMessage(channel=EVALS, text=f"m{i}")["ts"] for i in range(5)]
    first = client.conversations_history(channel=EVALS, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    rest = client.conversations_history(
        channel=EVALS, limit=10, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["m2", "m1", "m0"]
    assert rest["has_more"] is False
    window = client.conversations_history(channel=EVALS, oldest=sent[1], latest=sent[3])
    assert [m["text"] for m in window["messages"]] == ["m2"]
    inclusive = client.conversations_history(
        channel=EVALS, oldest=sent[1], latest=sent[3], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == ["m3", "m2", "m1"]


def test_delete_reactions_permalink_and_directory(
    slack: FakeSlackServer, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel=EVALS, text="parent")["ts"]
    reply = client.chat_postMessage(channel=EVALS, text="bot reply", thread_ts=parent)
    assert reply["message"]["thread_ts"] == parent
    human = slack.post_as_user(EVALS, "human reply", thread_ts=parent)["ts"]

    assert client.reactions_add(channel=EVALS, name="white_check_mark", timestamp=human)["ok"]
    with pytest.raises(SlackApiError) as caught:
        client.reactions_add(channel=EVALS, name="white_check_mark", timestamp=human)
    assert error_of(caught) == "already_reacted"
    [with_reaction] = [
        m
        for m in client.conversations_replies(channel=EVALS, ts=parent)["messages"]
        if m["ts"] == human
    ]
    assert with_reaction["reactions"] == [
        {"name": "white_check_mark", "users": ["U07EVALBOT"], "count": 1}
    ]

    link = client.chat_getPermalink(channel=EVALS, message_ts=reply["ts"])
    assert link["permalink"] == (
        f"https://evalcore.slack.com/archives/{EVALS}/p{reply['ts'].replace('.', '')}"
        f"?thread_ts={parent}&cid={EVALS}"
    )

    # A bot cannot edit or delete a human's message.
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel=EVALS, ts=human, text="x")
    assert error_of(caught) == "cant_update_message"
    with pytest.raises(SlackApiError) as caught:
        client.chat_delete(channel=EVALS, ts=human)
    assert error_of(caught) == "cant_delete_message"

    # Deleting a parent with replies leaves a tombstone; a deleted reply is gone.
    assert client.chat_delete(channel=EVALS, ts=reply["ts"])["ts"] == reply["ts"]
    assert client.chat_delete(channel=EVALS, ts=parent).data == {
        "ok": True,
        "channel": EVALS,
        "ts": parent,
    }
    thread = client.conversations_replies(channel=EVALS, ts=parent)["messages"]
    assert thread[0]["subtype"] == "tombstone" and thread[0]["reply_count"] == 1
    assert [m["ts"] for m in thread] == [parent, human]
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel=EVALS, ts=reply["ts"], text="again")
    assert error_of(caught) == "message_not_found"

    ephemeral = client.chat_postEphemeral(channel=EVALS, user=OWNER, text="only you")
    assert ephemeral["ok"] is True and ephemeral["message_ts"]
    assert slack.ephemeral(EVALS)[0]["user"] == OWNER
    with pytest.raises(SlackApiError) as caught:
        client.chat_postEphemeral(channel=EVALS, user="U0NOBODY00", text="x")
    assert error_of(caught) == "user_not_in_channel"

    user = client.users_info(user=OWNER)["user"]
    assert user["id"] == OWNER and user["real_name"] == "Maya Okafor"
    assert user["name"] == "maya.okafor" and user["is_bot"] is False
    assert "email" not in user["profile"]  # needs users:read.email
    info = client.conversations_info(channel=EVALS, include_num_members=True)["channel"]
    assert info["name"] == "support-assistant-evals" and info["is_member"] is True
    assert info["num_members"] == 6  # five people and the bot


# --------------------------------------------------------------------------- errors


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.chat_postMessage(channel="C0NOPE0000", text="x"), "channel_not_found"),
        (lambda c: c.chat_postMessage(channel="#nope", text="x"), "channel_not_found"),
        # Only chat.postMessage and chat.postEphemeral take a channel name.
        (
            lambda c: c.chat_update(channel="#support-assistant-evals", ts="1.2", text="x"),
            "channel_not_found",
        ),
        (
            lambda c: c.chat_update(channel=EVALS, ts="1700000000.000001", text="x"),
            "message_not_found",
        ),
        (lambda c: c.chat_delete(channel=EVALS, ts="1700000000.000001"), "message_not_found"),
        (
            lambda c: c.chat_getPermalink(channel=EVALS, message_ts="1700000000.000001"),
            "message_not_found",
        ),
        (
            lambda c: c.conversations_replies(channel=EVALS, ts="1700000000.000001"),
            "thread_not_found",
        ),
        (lambda c: c.conversations_history(channel=EVALS, cursor="bogus"), "invalid_cursor"),
        (lambda c: c.chat_postMessage(channel=EVALS), "no_text"),
        (lambda c: c.chat_postMessage(channel=EVALS, text="", blocks=[]), "no_text"),
        (
            lambda c: c.chat_postMessage(channel=EVALS, text="x", blocks=[{"text": "no type"}]),
            "invalid_blocks",
        ),
        (lambda c: c.chat_postMessage(channel=EVALS, text="x", thread_ts="0"), "invalid_thread_ts"),
        (lambda c: c.users_info(user="U0NOBODY00"), "user_not_found"),
        (lambda c: c.reactions_add(channel=EVALS, name="x", timestamp="1.2"), "message_not_found"),
        (lambda c: c.api_call("bogus.method"), "unknown_method"),
        (
            lambda c: c.api_call("conversations.replies", params={"channel": EVALS}),
            "invalid_arguments",
        ),
    ],
)
def test_slack_errors_raise_slack_api_error(client: WebClient, call: Any, error: str) -> None:
    with pytest.raises(SlackApiError) as caught:
        call(client)
    assert caught.value.response.status_code == 200
    assert caught.value.response["ok"] is False and error_of(caught) == error


def test_auth_errors(slack: FakeSlackServer) -> None:
    wrong = WebClient(token="xoxb-not-a-configured-token", base_url=slack.api_url)
    with pytest.raises(SlackApiError) as caught:
        wrong.chat_postMessage(channel=EVALS, text="x")
    assert error_of(caught) == "invalid_auth"
    anonymous = WebClient(base_url=slack.api_url)
    with pytest.raises(SlackApiError) as caught:
        anonymous.auth_test()
    assert error_of(caught) == "not_authed"
    # A token in the query string does not count (it would on Slack only for old apps).
    in_query = httpx.get(f"{slack.api_url}auth.test", params={"token": slack.token})
    assert in_query.json() == {"ok": False, "error": "not_authed"}
    recorded = slack.requests()
    assert [r["error"] for r in recorded] == ["invalid_auth", "not_authed", "not_authed"]
    assert recorded[2]["query"]["token"] == "xoxb-f" + "*" * (len(slack.token) - 6)
    assert slack.messages() == []


def test_block_kit_limits_answer_invalid_blocks_with_slack_details(client: WebClient) -> None:
    # Slack has no `too_many_blocks` error: 51 blocks are `invalid_blocks` with a pointer.
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=EVALS, text="x", blocks=[section("b")] * 51)
    response = caught.value.response
    assert error_of(caught) == "invalid_blocks"
    assert response["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]
    assert response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    assert client.chat_postMessage(channel=EVALS, text="x", blocks=[section("b")] * 50)["ok"]
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=EVALS, text="x", blocks=[section("y" * 3001)])
    assert caught.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    with pytest.raises(SlackApiError) as caught:
        not_a_block: Any = "not a block"
        client.chat_postMessage(channel=EVALS, text="x", blocks=[section("a"), not_a_block])
    assert caught.value.response["errors"] == ["must provide an object [json-pointer:/blocks/1]"]


def test_text_over_40000_characters(slack: FakeSlackServer, client: WebClient) -> None:
    # chat.postMessage truncates and warns (Slack's behaviour since 2018)...
    posted = client.chat_postMessage(channel=EVALS, text="x" * 40_001)
    assert posted["ok"] is True and len(posted["message"]["text"]) == 40_000
    assert posted["warning"] == "message_truncated"
    assert posted["response_metadata"]["warnings"] == ["message_truncated"]
    assert posted["response_metadata"]["messages"][0].startswith("[WARN] Your message was trunc")
    # ...chat.update refuses.
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel=EVALS, ts=posted["ts"], text="y" * 40_001)
    assert error_of(caught) == "msg_too_long"
    assert client.chat_update(channel=EVALS, ts=posted["ts"], text="y" * 40_000)["ok"]
    assert len(slack.messages(EVALS)[0]["text"]) == 40_000


def test_reply_to_an_unknown_thread_is_accepted_but_invisible(
    slack: FakeSlackServer, client: WebClient
) -> None:
    lost = client.chat_postMessage(channel=EVALS, text="lost", thread_ts="1700000000.000001")
    assert lost["ok"] is True and lost["message"]["thread_ts"] == "1700000000.000001"
    assert client.conversations_history(channel=EVALS)["messages"] == []
    assert slack.messages(EVALS)[0]["orphan"] is True


# --------------------------------------------------------------------------- faults


def test_429_is_retried_by_the_rate_limit_handler(slack: FakeSlackServer) -> None:
    slack.add_fault("chat.postMessage", status=429, retry_after=0, times=2)
    client = WebClient(
        token=slack.token,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    posted = client.chat_postMessage(channel=EVALS, text="after the storm")
    assert posted["ok"] is True
    attempts = slack.requests("chat.postMessage")
    assert [(r["status"], r["error"]) for r in attempts] == [
        (429, "ratelimited"),
        (429, "ratelimited"),
        (200, None),
    ]
    assert len(slack.messages(EVALS)) == 1


def test_429_without_a_retry_handler_surfaces_with_retry_after(
    slack: FakeSlackServer, client: WebClient
) -> None:
    slack.add_fault("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=EVALS, text="x")
    response = caught.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "7"
    # Other methods are not affected, and the fault is used up.
    assert client.auth_test()["ok"]
    assert client.chat_postMessage(channel=EVALS, text="x")["ok"]


def test_500_on_demand(slack: FakeSlackServer, client: WebClient) -> None:
    slack.add_fault(status=500)
    with pytest.raises(SlackApiError) as caught:
        client.auth_test()
    assert caught.value.response.status_code == 500
    assert caught.value.response["error"] == "internal_error"

    slack.add_fault("chat.postMessage", status=500)
    retrying = WebClient(
        token=slack.token,
        base_url=slack.api_url,
        retry_handlers=[
            ServerErrorRetryHandler(
                max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.05)
            )
        ],
    )
    assert retrying.chat_postMessage(channel=EVALS, text="second try")["ok"]
    assert [r["status"] for r in slack.requests("chat.postMessage")] == [500, 200]


def test_forced_error_and_delay_faults(slack: FakeSlackServer, client: WebClient) -> None:
    slack.add_fault("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=EVALS, text="x")
    assert caught.value.response.status_code == 200 and error_of(caught) == "channel_not_found"
    slack.add_fault("auth.test", delay_s=0.3)
    started = time.perf_counter()
    assert client.auth_test()["ok"]
    assert time.perf_counter() - started >= 0.3
    refused = httpx.post(f"{slack.url}/_fake/faults", json={"status": 302})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_fault"
    assert httpx.get(f"{slack.url}/_fake/faults").json()["faults"] == []
    with pytest.raises(ValueError):
        Fault(status=500, retry_after=3)
    with pytest.raises(ValueError):
        Fault(method="chat.postMessage")


def test_control_api_refuses_unknown_targets(slack: FakeSlackServer) -> None:
    with pytest.raises(FakeSlackError, match="channel_not_found"):
        slack.post_as_user("C0NOPE0000", "x")
    with pytest.raises(FakeSlackError, match="user_not_found"):
        slack.post_as_user(EVALS, "x", user="U0NOBODY00")
    with pytest.raises(FakeSlackError, match="thread_not_found"):
        slack.post_as_user(EVALS, "x", thread_ts="1700000000.000001")
    with pytest.raises(FakeSlackError, match="channel_not_found"):
        slack.messages("#nope")


async def test_async_client_sends_get_with_query_parameters(slack: FakeSlackServer) -> None:
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
    posted = await client.chat_postMessage(channel=EVALS, text="from asyncio")
    history = await client.conversations_history(channel=EVALS, limit=5)
    assert [m["ts"] for m in history["messages"]] == [posted["ts"]]
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel=EVALS, ts="1700000000.000001", text="x")
    assert caught.value.response["error"] == "message_not_found"
    read = slack.requests("conversations.history")[0]
    assert read["http_method"] == "GET" and read["query"] == {"channel": EVALS, "limit": "5"}


# --------------------------------------------------------------------------- configuration


async def test_scopes_membership_and_archives_in_process() -> None:
    config = FakeSlackConfig(
        scopes=["chat:write", "users:read"],
        channels=[
            FakeChannel(id="C0EVALS01", name="support-assistant-evals"),
            FakeChannel(id="C0OUTSIDE1", name="outside", bot_is_member=False),
            FakeChannel(id="C0ARCHIVE1", name="old-evals", is_archived=True),
        ],
    )
    transport = httpx.ASGITransport(app=create_app(config))
    headers = {"Authorization": f"Bearer {config.token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://slack") as http:

        async def call(method: str, **params: Any) -> dict[str, Any]:
            response = await http.post(f"/api/{method}", data=params, headers=headers)
            assert response.status_code == 200
            body: dict[str, Any] = response.json()
            return body

        history = await call("conversations.history", channel=EVALS)
        assert history == {
            "ok": False,
            "error": "missing_scope",
            "needed": "channels:history,groups:history",
            "provided": "chat:write,users:read",
        }
        assert (await call("reactions.add", channel=EVALS, name="x", timestamp="1.2"))[
            "error"
        ] == "missing_scope"
        assert (await call("chat.postMessage", channel="#outside", text="x"))[
            "error"
        ] == "not_in_channel"
        assert (await call("chat.postMessage", channel="C0ARCHIVE1", text="x"))[
            "error"
        ] == "is_archived"
        posted = await call("chat.postMessage", channel=EVALS, text="fine")
        assert posted["ok"] is True
        charset = await http.post(
            "/api/auth.test",
            content=b"a=1",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        assert charset.json()["warning"] == "superfluous_charset"


def test_config_validation_and_command_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate channel id"):
        FakeSlackConfig(
            channels=[FakeChannel(id="C0A1", name="a"), FakeChannel(id="C0A1", name="b")]
        )
    with pytest.raises(ValueError, match="not a Slack token"):
        FakeSlackConfig(tokens=["secret"])
    config = FakeSlackConfig(tokens=["xoxb-one", "xoxb-two"], team_name="Acme")
    path = tmp_path / "workspace.json"
    path.write_text(config.model_dump_json())
    args = build_parser().parse_args(["--port", "9999", "--config", str(path)])
    assert args.port == 9999 and load_config(args.config) == config
    assert load_config(None) == FakeSlackConfig()


def test_server_that_cannot_start_fails_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited with code"), FakeSlackServer(port=port):
            pass


# --------------------------------------------------------------------------- signing


SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def test_signed_requests_pass_slack_sdk_verification() -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": OWNER, "username": "maya.okafor"},
        "actions": [{"action_id": "triage_block", "value": "ZD-48213", "type": "button"}],
    }
    body = interactivity_body(payload)
    assert body.startswith(b"payload=%7B%22type%22%3A%22block_actions%22")
    assert json.loads(parse_qs(body.decode())["payload"][0]) == payload

    headers = sign_request(body, SECRET)
    assert set(headers) == {"X-Slack-Request-Timestamp", "X-Slack-Signature"}
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert headers["X-Slack-Signature"] == verifier.generate_signature(
        timestamp=headers["X-Slack-Request-Timestamp"], body=body
    )
    assert verifier.is_valid_request(body.decode(), headers)  # str bodies sign the same

    assert not verifier.is_valid_request(body.replace(b"ZD-48213", b"ZD-48214"), headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    stale = sign_request(body, SECRET, timestamp=int(time.time()) - 5 * 60 - 1)
    assert not verifier.is_valid_request(body, stale)
    recent = sign_request(body, SECRET, timestamp=int(time.time()) - 4 * 60)
    assert verifier.is_valid_request(body, recent)


def test_signature_matches_slacks_documented_example() -> None:
    # The worked example of Slack's "Verifying requests from Slack" guide.
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = sign_request(body, SECRET, timestamp=1531420618)
    assert headers == {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": (
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        ),
    }
    with pytest.raises(ValueError):
        sign_request(body, "")


def test_conversations_list_pages_the_visible_channels(slack: FakeSlackServer) -> None:
    client = WebClient(token=slack.token, base_url=slack.api_url)
    first = client.conversations_list(limit=1)
    assert [c["id"] for c in first["channels"]] == ["C0EVALS01"]
    cursor = first["response_metadata"]["next_cursor"]
    assert cursor
    second = client.conversations_list(limit=5, cursor=cursor)
    assert [c["id"] for c in second["channels"]] == ["C0GENERAL1"]
    assert second["response_metadata"]["next_cursor"] == ""
    private = client.conversations_list(types="public_channel,private_channel")
    assert {c["id"] for c in private["channels"]} == {"C0EVALS01", "C0GENERAL1", "G0EVALPRIV"}
    with pytest.raises(SlackApiError) as caught:
        client.conversations_list(cursor="bm90LWEtY2hhbm5lbA==")
    assert caught.value.response["error"] == "invalid_cursor"
