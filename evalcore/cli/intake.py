"""`evalcore intake`: a production failure, from a file or stdin, into the backlog; and the
same intake over HTTP (`POST /intake`) for the Slack receiver.

Both validate the payload first and store nothing when it is refused: the command exits
3 naming every field at fault, the endpoint answers 401 (no or wrong bearer token), 413
(over 256 KiB), 400 (not JSON) or 422 (fields), with `{"error": ..., "fields": [...]}`.
A duplicate is stored too, linked to what it duplicates: exit 0, HTTP 200 (201 for a new
item).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from evalcore.cli.common import JsonOption, SuiteOption, fail, load, open_store
from evalcore.exitcodes import ExitCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from evalcore.suite import Suite
    from evalcore.triage.intake import IntakeError, IntakeResult

_CHUNK = 64 * 1024
_HTTP_STATUS = {"too_large": 413, "not_json": 400, "invalid": 422}


def intake_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="JSON file with the failure, or - to read it from stdin.",
            show_default=False,
        ),
    ],
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take a production failure into the backlog: validated, de-duplicated, stored.

    The JSON gives `messages` (the conversation), `observed_output`, `what_was_wrong`,
    `reporter`, and optionally `ticket`, `route`, `suggested_expect` and `tags`. A
    failure that duplicates a case or an open item is stored as a duplicate, linked to
    it with the similarity, and exits 0 too; a bad payload exits 3 naming the fields.

    Examples:
      [bold]evalcore intake failure.json[/]
      [bold]cat failure.json | evalcore intake - --json[/]
    """
    from evalcore.triage.intake import IntakeError, parse_payload, take_in

    try:
        failure = parse_payload(_read_source(source))
        loaded = load(suite)
        result = take_in(
            open_store(), loaded, failure, source="cli", provenance=_cli_provenance(source)
        )
    except IntakeError as exc:
        _refuse(exc, as_json)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    _print_result(result)


def _read_source(source: str) -> bytes:
    """The payload's bytes; an oversized one is refused with its size, read no further
    than the limit (stdin is counted to its end but not kept)."""
    from evalcore.triage.intake import MAX_PAYLOAD_BYTES, IntakeError, too_large_message

    if source == "-":
        return _read_bounded(sys.stdin.buffer, MAX_PAYLOAD_BYTES)
    path = Path(source)
    try:
        size = path.stat().st_size
        if path.is_file() and size > MAX_PAYLOAD_BYTES:
            raise IntakeError("too_large", too_large_message(size))
        with path.open("rb") as stream:
            return _read_bounded(stream, MAX_PAYLOAD_BYTES)
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}")


def _read_bounded(stream: IO[bytes], limit: int) -> bytes:
    """At most `limit` bytes kept; beyond that, counted, so the refusal gives the size."""
    from evalcore.triage.intake import IntakeError, too_large_message

    kept = bytearray()
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
        if total <= limit:
            kept += chunk
    if total > limit:
        raise IntakeError("too_large", too_large_message(total))
    return bytes(kept)


def _cli_provenance(source: str) -> dict[str, Any]:
    import getpass
    import socket

    try:
        user: str | None = getpass.getuser()
    except (OSError, KeyError):
        user = None
    return {
        "via": "evalcore intake",
        "file": "stdin" if source == "-" else str(Path(source).resolve()),
        "user": user,
        "host": socket.gethostname(),
    }


def _refuse(exc: IntakeError, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"ok": False, **exc.as_json()}, indent=2))
        raise typer.Exit(int(ExitCode.USAGE))
    if exc.fields:
        lines = "".join(f"\n  {f.field}: {f.message}" for f in exc.fields)
        fail(f"invalid failure payload, nothing stored:{lines}")
    fail(f"{exc.message}; nothing stored")


def _print_result(result: IntakeResult) -> None:
    from evalcore.cli.console import console

    item = result.item
    where = f"route {item.route}" + (f"  ·  ticket {item.ticket}" if item.ticket else "")
    if result.duplicate_of is None:
        console.print(
            f"[green]stored[/] [bold]{item.id}[/] (open)  ·  {where}  ·  from {item.reporter}",
            highlight=False,
        )
        return
    how = (
        f"similarity {result.similarity:.2f}"
        if result.matched_by == "similarity" and result.similarity is not None
        else f"same {result.matched_by}"
    )
    console.print(
        f"[yellow]stored[/] [bold]{item.id}[/] as a duplicate of [bold]{result.duplicate_of}[/] "
        f"({how})  ·  {where}  ·  "
        f"from {item.reporter}",
        highlight=False,
    )


# --- HTTP --------------------------------------------------------------------------------


def intake_routes(
    engine_factory: Callable[[], Engine],
    suite_loader: Callable[[], Suite],
    token: str,
) -> list[Route]:
    """`POST /intake` for a Starlette app, authenticated by `Authorization: Bearer <token>`.

    `engine_factory` and `suite_loader` are called per request, in a worker thread (cache
    the suite in the loader if loading it is slow); the index over the cases is cached
    per dataset version. Answers 201 with the item for a new failure, 200 for one stored
    as a duplicate (with its link), 401, 413, 400 or 422 with `{"error", "fields"}`.
    """
    import hmac

    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from evalcore.triage.intake import (
        MAX_PAYLOAD_BYTES,
        IntakeError,
        parse_payload,
        take_in,
        too_large_message,
    )

    if not token:
        raise ValueError("intake_routes needs a non-empty token")
    expected = token.encode()

    def error(status: int, message: str, **extra: Any) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": message, "fields": [], **extra}, status, headers=headers)

    def authorised(request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        # Compared in constant time whatever the scheme, so timing tells nothing either.
        match = hmac.compare_digest(credentials.strip().encode(), expected)
        return match and scheme.lower() == "bearer"

    async def body_within_limit(request: Request) -> bytes | None:
        kept = bytearray()
        async for chunk in request.stream():
            kept += chunk
            if len(kept) > MAX_PAYLOAD_BYTES:
                return None
        return bytes(kept)

    def store(failure: Any, provenance: dict[str, Any]) -> IntakeResult:
        return take_in(
            engine_factory(), suite_loader(), failure, source="http", provenance=provenance
        )

    async def post_intake(request: Request) -> Response:
        if not authorised(request):
            return error(401, "missing or wrong bearer token", kind="unauthorized")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
            return error(413, too_large_message(int(declared)), kind="too_large")
        body = await body_within_limit(request)
        if body is None:
            return error(413, too_large_message(MAX_PAYLOAD_BYTES, over=True), kind="too_large")
        provenance = {
            "via": "POST /intake",
            "remote": request.client.host if request.client else None,
            "user_agent": request.headers.get("user-agent"),
            "request_id": request.headers.get("x-request-id"),
        }
        try:
            failure = parse_payload(body)
            result = await run_in_threadpool(store, failure, provenance)
        except IntakeError as exc:
            return JSONResponse(exc.as_json(), _HTTP_STATUS[exc.kind])
        return JSONResponse(result.as_json(), 201 if result.created else 200)

    return [Route("/intake", post_intake, methods=["POST"], name="intake")]
