"""The Web API route, `GET` or `POST /api/<method>`: the body read as Slack reads it
(query string, form-urlencoded, multipart or JSON; the token in `Authorization: Bearer`
or a form field), the request recorded, a pending fault served, then authentication,
scopes and the method's handler.

Errors are HTTP 200 `{"ok": false, "error": ...}` as on Slack, with
`response_metadata.messages` where Slack gives details; warnings (`missing_charset`,
`superfluous_charset`, `message_truncated`) come as `warning` plus
`response_metadata.warnings`. An unknown method answers `unknown_method`.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from evalcore.local.fake_slack import chat, conversations
from evalcore.local.fake_slack.calls import JSON, Call, SlackError
from evalcore.local.fake_slack.config import Fault
from evalcore.local.fake_slack.responses import json_response
from evalcore.local.fake_slack.socket_mode import apps_connections_open
from evalcore.local.fake_slack.store import FakeSlack

__all__ = ["METHODS", "WebApiRoutes", "WebMethod"]


@dataclass(frozen=True)
class WebMethod:
    """A method's handler and the scopes it accepts (any one of them): what Slack
    reports in `x-accepted-oauth-scopes` and in `needed` of a missing_scope error."""

    handler: Callable[[FakeSlack, Call], JSON]
    scopes: tuple[str, ...] = ()


METHODS: dict[str, WebMethod] = {
    "auth.test": WebMethod(conversations.auth_test),
    "chat.postMessage": WebMethod(chat.chat_post_message, ("chat:write",)),
    "chat.update": WebMethod(chat.chat_update, ("chat:write",)),
    "chat.delete": WebMethod(chat.chat_delete, ("chat:write",)),
    "chat.postEphemeral": WebMethod(chat.chat_post_ephemeral, ("chat:write",)),
    "chat.getPermalink": WebMethod(chat.chat_get_permalink),
    "conversations.replies": WebMethod(
        conversations.conversations_replies, ("channels:history", "groups:history")
    ),
    "conversations.history": WebMethod(
        conversations.conversations_history, ("channels:history", "groups:history")
    ),
    "conversations.info": WebMethod(
        conversations.conversations_info, ("channels:read", "groups:read")
    ),
    "conversations.list": WebMethod(
        conversations.conversations_list, ("channels:read", "groups:read")
    ),
    "apps.connections.open": WebMethod(apps_connections_open),
    "users.info": WebMethod(conversations.users_info, ("users:read",)),
    "reactions.add": WebMethod(chat.reactions_add, ("reactions:write",)),
}

_Answer = Callable[..., Response]


class WebApiRoutes:
    """`/api/{method}` over one `FakeSlack`."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack

    async def api(self, request: Request) -> Response:
        slack = self.slack
        method = request.path_params["method"]
        arrived = time.time()
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        token = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip() or None

        record: JSON = {
            "method": method,
            "http_method": request.method,
            "path": request.url.path,
            "headers": {
                k: (f"{v[:7]}{_mask(v[7:])}" if k == "authorization" else v)
                for k, v in headers.items()
            },
            "query": dict(request.query_params),
            "body": None,
            "time": arrived,
        }
        slack.remember_request(record)

        def answer(
            body: JSON, status: int = 200, extra: Mapping[str, str] | None = None
        ) -> Response:
            record["status"] = status
            record["ok"] = bool(body.get("ok"))
            record["error"] = body.get("error")
            return json_response(body, status, extra)

        try:
            params, warnings, is_form = _parse_body(headers.get("content-type"), raw)
        except _BodyError as exc:
            params, warnings, is_form = {}, [], False
            body_error: str | None = exc.error
        else:
            body_error = None
        merged: JSON = {**dict(request.query_params), **params}
        # A token counts in the header or a form body, never in JSON or the query string
        # (Slack refuses query-string tokens for apps created since 2021).
        if is_form and token is None and isinstance(params.get("token"), str):
            token = params["token"] or None
        for shown in (merged, record["query"]):
            if isinstance(shown.get("token"), str):
                shown["token"] = _mask(shown["token"])
        record["body"] = merged

        fault = slack.take_fault(method)
        if fault is not None:
            record["fault"] = fault.model_dump(exclude_defaults=True, exclude={"times"})
            if not fault.takes_effect:
                refused = await _fault_answer(fault, answer)
                if refused is not None:
                    return refused
        carried_out = self._carry_out(request, method, merged, warnings, body_error, token, answer)
        if fault is not None and fault.takes_effect:
            return await _fault_answer(fault, answer) or carried_out
        return carried_out

    def _carry_out(
        self,
        request: Request,
        method: str,
        merged: JSON,
        warnings: list[str],
        body_error: str | None,
        token: str | None,
        answer: _Answer,
    ) -> Response:
        """The Web API call itself: authentication, scopes, then the method's handler."""
        slack = self.slack
        web_method = METHODS.get(method)
        if web_method is None:
            return answer({"ok": False, "error": "unknown_method", "req_method": method})
        call = Call(method=method, params=merged, warnings=list(warnings))
        accepted = web_method.scopes
        if body_error is not None:
            return answer({"ok": False, "error": body_error})
        if token is None:
            return answer(_finish({"ok": False, "error": "not_authed"}, call))
        valid = (
            slack.config.app_tokens if method == "apps.connections.open" else slack.config.tokens
        )
        if token not in valid:
            return answer(_finish({"ok": False, "error": "invalid_auth"}, call))
        slack.ws_base = f"ws://{request.url.netloc}"
        scope_headers = {
            "x-oauth-scopes": ",".join(slack.config.scopes),
            "x-accepted-oauth-scopes": ",".join(accepted),
        }
        if accepted and not slack.scopes.intersection(accepted):
            body = {
                "ok": False,
                "error": "missing_scope",
                "needed": ",".join(accepted),
                "provided": ",".join(slack.config.scopes),
            }
            return answer(_finish(body, call), 200, scope_headers)
        try:
            result = web_method.handler(slack, call)
        except SlackError as exc:
            body = {"ok": False, "error": exc.error}
            if exc.error == "missing_scope":
                exc.extra.setdefault("provided", ",".join(slack.config.scopes))
            body.update(exc.extra)
            if exc.errors is not None:
                body["errors"] = exc.errors
            call.messages = [*exc.messages, *call.messages]
            return answer(_finish(body, call), 200, scope_headers)
        return answer(_finish({"ok": True, **result}, call), 200, scope_headers)


def _mask(token: str) -> str:
    return token[:6] + "*" * max(len(token) - 6, 0)


def _finish(body: JSON, call: Call) -> JSON:
    """Attach warnings and detail messages the way Slack does."""
    if not call.warnings and not call.messages:
        return body
    metadata: JSON = dict(body.get("response_metadata") or {})
    if call.messages:
        metadata["messages"] = [*metadata.get("messages", []), *call.messages]
    if call.warnings:
        body["warning"] = ",".join(call.warnings)
        metadata["warnings"] = list(call.warnings)
    body["response_metadata"] = metadata
    return body


async def _fault_answer(fault: Fault, answer: _Answer) -> Response | None:
    """Wait out the fault's delay, then its answer (None: the normal answer goes out)."""
    if fault.delay_s:
        await asyncio.sleep(fault.delay_s)
    if fault.status == 429:
        retry = str(1 if fault.retry_after is None else fault.retry_after)
        return answer(
            {"ok": False, "error": fault.error or "ratelimited"},
            429,
            {"Retry-After": retry},
        )
    if fault.status >= 400:
        return answer({"ok": False, "error": fault.error or "internal_error"}, fault.status)
    if fault.error is not None:
        return answer({"ok": False, "error": fault.error})
    return None


# --------------------------------------------------------------------------- bodies


class _BodyError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _parse_body(content_type: str | None, body: bytes) -> tuple[JSON, list[str], bool]:
    """(params, warnings, is_form) of a request body, or _BodyError as Slack names it."""
    if not body.strip():
        return {}, [], True
    if content_type is None:
        raise _BodyError("missing_post_type")
    mime, _, rest = content_type.partition(";")
    mime = mime.strip().lower()
    charset = None
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset is not None and charset not in ("utf-8", "utf8", "iso-8859-1", "latin1"):
        raise _BodyError("invalid_charset")
    encoding = "latin-1" if charset in ("iso-8859-1", "latin1") else "utf-8"
    warnings: list[str] = []
    if mime == "application/json":
        if charset is None:
            warnings.append("missing_charset")
        try:
            data = json.loads(body.decode(encoding))
        except (ValueError, UnicodeDecodeError):
            raise _BodyError("invalid_json") from None
        if not isinstance(data, dict):
            raise _BodyError("json_not_object")
        return data, warnings, False
    if mime == "application/x-www-form-urlencoded":
        if charset is not None:
            warnings.append("superfluous_charset")
        try:
            pairs = parse_qsl(body.decode(encoding), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            raise _BodyError("invalid_form_data") from None
        return dict(pairs), warnings, True
    if mime == "multipart/form-data":
        if charset is not None:
            warnings.append("superfluous_charset")
        return _parse_multipart(content_type, body), warnings, True
    raise _BodyError("invalid_post_type")


def _parse_multipart(content_type: str, body: bytes) -> JSON:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not parsed.is_multipart():
        raise _BodyError("invalid_form_data")
    params: JSON = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            params[name] = {"filename": part.get_filename(), "size": len(payload)}
        else:
            params[name] = payload.decode(part.get_content_charset() or "utf-8")
    return params
