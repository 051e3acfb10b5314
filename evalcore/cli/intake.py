"""`evalcore intake`: a production failure, from a file or stdin, into the backlog; and the
same intake over HTTP (`POST /intake`) for the Slack receiver.

Both validate the payload first and store nothing when it is refused: the command exits
3 naming every field at fault, the endpoint answers 401 (no or wrong bearer token), 413
(over 256 KiB), 400 (not JSON) or 422 (fields), with `{"error": ..., "fields": [...]}`.
A duplicate is stored too, linked to what it duplicates: exit 0, HTTP 200 (201 for a new
item).

Trace exports come in the same ways: `--format otlp|langfuse` on the command (files up to
64 MiB), `Content-Type: application/json; format=otlp` (or `format=langfuse`) over HTTP
(still at most 256 KiB; OTLP/protobuf is answered 415). The traces the export marks
failed, or those named by trace id, are all converted and validated before the first is
stored (see `evalcore.triage.traces`); each is then taken in like a single failure.
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
    from evalcore.suite.models import Expect
    from evalcore.triage.intake import IntakeError, IntakeResult
    from evalcore.triage.traces import Selection, TraceBatch, TraceFormat

_CHUNK = 64 * 1024
_HTTP_STATUS = {"too_large": 413, "not_json": 400, "invalid": 422}
FORMATS = ("json", "otlp", "langfuse")
_PROTOBUF = ("application/x-protobuf", "application/protobuf")


def intake_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="JSON file with the failure (or the trace export), or - to read stdin.",
            show_default=False,
        ),
    ],
    input_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="json: one failure payload. otlp: an OTLP/JSON trace export. langfuse: a "
            "Langfuse trace export. Exports are read up to 64 MiB.",
        ),
    ] = "json",
    below: Annotated[
        float | None,
        typer.Option(
            help="otlp/langfuse: an evaluation scored at or under this marks its trace "
            "failed (0 = a thumbs-down scored 0 of 0/1).",
            show_default="0",
        ),
    ] = None,
    trace_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--trace-id",
            help="otlp/langfuse: take in this trace, marked or not (repeatable); only the "
            "named traces are taken in.",
            show_default=False,
        ),
    ] = None,
    reporter: Annotated[
        str | None,
        typer.Option(
            help="otlp/langfuse: who reports the failures.",
            show_default="otlp:<service.name> or langfuse:<userId>",
        ),
    ] = None,
    route: Annotated[
        str | None,
        typer.Option(
            help="otlp/langfuse: the route the traces come from (must be the suite's).",
            show_default="the suite's",
        ),
    ] = None,
    feedback_attribute: Annotated[
        str | None,
        typer.Option(
            "--feedback-attribute",
            help="otlp: the span attribute holding user feedback (a score, a label, or "
            "true/false).",
            show_default="user.feedback",
        ),
    ] = None,
    expect: Annotated[
        str | None,
        typer.Option(
            help="otlp/langfuse: the expectation suggested for every failure taken in, as "
            'JSON (e.g. \'{"outcome": "needs_human"}\'); an owner still decides.',
            show_default=False,
        ),
    ] = None,
    suite: SuiteOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take a production failure into the backlog: validated, de-duplicated, stored.

    The JSON gives `messages` (the conversation), `observed_output`, `what_was_wrong`,
    `reporter`, and optionally `ticket`, `route`, `suggested_expect` and `tags`. A
    failure that duplicates a case or an open item is stored as a duplicate, linked to
    it with the similarity, and exits 0 too; a bad payload exits 3 naming the fields.

    With --format otlp or langfuse, FILE is a trace export: every trace it marks failed
    (an evaluation scored at or under --below, or labelled fail, failed, failure, bad,
    incorrect, wrong, thumbs_down, negative, not_relevant or unhelpful), or each
    --trace-id, is taken in; a bad export exits 3 and stores nothing.

    Examples:
      [bold]evalcore intake failure.json[/]
      [bold]cat failure.json | evalcore intake - --json[/]
      [bold]evalcore intake --format otlp traces.json --below 0.5[/]
      [bold]evalcore intake --format langfuse export.json --trace-id 3f6c2a9e-...[/]
    """
    from evalcore.triage.intake import IntakeError, parse_payload, take_in

    input_format = input_format.lower()
    if input_format not in FORMATS:
        fail(f"unknown --format {input_format!r} (known: {', '.join(FORMATS)})")
    if input_format != "json":
        from evalcore.triage.traces import DEFAULT_BELOW, Selection
        from evalcore.triage.traces.selection import DEFAULT_FEEDBACK_ATTRIBUTE

        selection = Selection(
            below=DEFAULT_BELOW if below is None else below,
            trace_ids=tuple(trace_ids or ()),
            feedback_attribute=feedback_attribute or DEFAULT_FEEDBACK_ATTRIBUTE,
        )
        trace_format: TraceFormat = "otlp" if input_format == "otlp" else "langfuse"
        _intake_traces(
            source,
            trace_format,
            selection,
            reporter=reporter,
            route=route,
            expect=_suggested_expect(expect, as_json),
            suite=suite,
            as_json=as_json,
        )
        return
    given = [
        name
        for name, value in (
            ("--below", below),
            ("--trace-id", trace_ids),
            ("--reporter", reporter),
            ("--route", route),
            ("--feedback-attribute", feedback_attribute),
            ("--expect", expect),
        )
        if value is not None
    ]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        fail(f"{', '.join(given)} {verb} to --format otlp or langfuse, not to a JSON payload")
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


def _intake_traces(
    source: str,
    trace_format: TraceFormat,
    selection: Selection,
    *,
    reporter: str | None,
    route: str | None,
    expect: Expect | None,
    suite: Path | None,
    as_json: bool,
) -> None:
    """Every selected trace converted and validated, then each taken in (with `expect`
    as its suggested expectation, when given)."""
    from evalcore.triage.intake import IntakeError, take_in
    from evalcore.triage.traces import MAX_EXPORT_BYTES, export_too_large, read_trace_failures

    shown = "stdin" if source == "-" else source
    try:
        data = _read_source(source, MAX_EXPORT_BYTES, export_too_large)
        batch = read_trace_failures(trace_format, data, selection, reporter=reporter, route=route)
        loaded = load(suite)
        _same_route(route, loaded)
        results: list[tuple[str, IntakeResult]] = []
        if batch.failures:
            engine = open_store()
            base = {**_cli_provenance(source), "via": f"evalcore intake --format {trace_format}"}
            for traced in batch.failures:
                provenance = {**base, **traced.provenance}
                failure = traced.failure
                if expect is not None:
                    failure = failure.model_copy(update={"suggested_expect": expect})
                stored = take_in(engine, loaded, failure, source="cli", provenance=provenance)
                results.append((traced.trace_id, stored))
    except IntakeError as exc:
        _refuse(exc, as_json, what="trace export")
    message = None if results else _nothing_marked(shown, batch, selection)
    if as_json:
        document = {
            "ok": True,
            "format": trace_format,
            "file": shown,
            "traces": batch.traces,
            "selected": len(results),
            "items": [{**result.as_json(), "trace_id": trace_id} for trace_id, result in results],
        }
        if message is not None:
            document["message"] = message
        print(json.dumps(document, indent=2))
        return
    from rich.markup import escape

    from evalcore.cli.console import console

    if message is not None:
        console.print(escape(message), highlight=False, soft_wrap=True)
        return
    console.print(
        f"{escape(shown)}: {batch.traces} trace(s), {len(results)} taken in", highlight=False
    )
    for trace_id, result in results:
        _print_result(result, trace_id=trace_id)


def _suggested_expect(text: str | None, as_json: bool) -> Expect | None:
    """`--expect` read as a case expectation; a bad one exits 3 before anything is read."""
    if text is None:
        return None
    from evalcore.triage.intake import FieldError, IntakeError, validate_payload

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        _refuse(
            IntakeError("invalid", f"--expect is not JSON: {exc}", [FieldError("JSON", str(exc))]),
            as_json,
            what="--expect",
        )
    probe = {
        "messages": [{"role": "user", "content": "-"}],
        "observed_output": "-",
        "what_was_wrong": "-",
        "reporter": "-",
        "suggested_expect": document,
    }
    try:
        suggested = validate_payload(probe).suggested_expect
    except IntakeError as exc:
        fields = [
            FieldError(f.field.removeprefix("suggested_expect").lstrip(".") or "expect", f.message)
            for f in exc.fields
        ]
        _refuse(
            IntakeError("invalid", "--expect is not an expectation", fields), as_json, "--expect"
        )
    return suggested


def _nothing_marked(
    shown: str, batch: TraceBatch, selection: Selection, naming: str = "--trace-id"
) -> str:
    rule = selection.describe(naming)
    return "; ".join(
        [f"no trace in {shown} is marked failed ({rule}); nothing stored", *batch.notes]
    )


def _same_route(route: str | None, suite: Suite) -> None:
    """The route check `take_in` makes, made once before any trace is stored."""
    from evalcore.triage.intake import FieldError, IntakeError

    expected = suite.scorecard.route
    if route is not None and route != expected:
        problem = FieldError("route", f"this suite evaluates route {expected!r}, not {route!r}")
        raise IntakeError("invalid", str(problem), [problem])


def _read_source(
    source: str,
    limit: int | None = None,
    too_large: Callable[[int], IntakeError] | None = None,
) -> bytes:
    """The payload's bytes; an oversized one is refused with its size, read no further
    than the limit (stdin is counted to its end but not kept). The limit and its
    refusal default to a single payload's (256 KiB)."""
    from evalcore.triage.intake import MAX_PAYLOAD_BYTES

    limit = MAX_PAYLOAD_BYTES if limit is None else limit
    refusal = too_large or _payload_too_large
    if source == "-":
        return _read_bounded(sys.stdin.buffer, limit, refusal)
    path = Path(source)
    try:
        size = path.stat().st_size
        if path.is_file() and size > limit:
            raise refusal(size)
        with path.open("rb") as stream:
            return _read_bounded(stream, limit, refusal)
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}")


def _payload_too_large(size: int) -> IntakeError:
    from evalcore.triage.intake import IntakeError, too_large_message

    return IntakeError("too_large", too_large_message(size))


def _read_bounded(stream: IO[bytes], limit: int, too_large: Callable[[int], IntakeError]) -> bytes:
    """At most `limit` bytes kept; beyond that, counted, so the refusal gives the size."""
    kept = bytearray()
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
        if total <= limit:
            kept += chunk
    if total > limit:
        raise too_large(total)
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


def _refuse(exc: IntakeError, as_json: bool, what: str = "failure payload") -> NoReturn:
    from rich.markup import escape

    if as_json:
        print(json.dumps({"ok": False, **exc.as_json()}, indent=2))
        raise typer.Exit(int(ExitCode.USAGE))
    if exc.fields:
        # Paths such as attributes[gen_ai.input.messages] are text, not markup.
        lines = "".join(f"\n  {escape(f.field)}: {escape(f.message)}" for f in exc.fields)
        fail(f"invalid {what}, nothing stored:{lines}")
    fail(f"{escape(exc.message)}; nothing stored")


def _print_result(result: IntakeResult, *, trace_id: str | None = None) -> None:
    from evalcore.cli.console import console

    item = result.item
    where = f"route {item.route}" + (f"  ·  ticket {item.ticket}" if item.ticket else "")
    if trace_id is not None:
        where = f"trace {trace_id}  ·  {where}"
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

    `Content-Type: application/json; format=otlp` (or `format=langfuse`) takes a trace
    export instead, with query parameters `below`, `trace_id` (repeatable), `reporter`,
    `route` and `feedback_attribute`; the answer is `{"items": [...], "traces",
    "selected"}`, 201 when any item is new, 200 when all were duplicates or none was
    marked failed (then with a `message`). OTLP/protobuf is answered 415.
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

    def store_traces(
        trace_format: TraceFormat,
        body: bytes,
        request: Request,
        provenance: dict[str, Any],
    ) -> Response:
        from evalcore.triage.traces import read_trace_failures

        selection = _query_selection(request)
        reporter = request.query_params.get("reporter")
        route = request.query_params.get("route")
        batch = read_trace_failures(trace_format, body, selection, reporter=reporter, route=route)
        loaded = suite_loader()
        _same_route(route, loaded)
        results: list[tuple[str, IntakeResult]] = []
        if batch.failures:
            engine = engine_factory()
            base = {**provenance, "via": f"POST /intake (format={trace_format})"}
            for traced in batch.failures:
                stored = take_in(
                    engine,
                    loaded,
                    traced.failure,
                    source="http",
                    provenance={**base, **traced.provenance},
                )
                results.append((traced.trace_id, stored))
        answer: dict[str, Any] = {
            "format": trace_format,
            "traces": batch.traces,
            "selected": len(results),
            "items": [{**result.as_json(), "trace_id": trace_id} for trace_id, result in results],
        }
        if not results:
            answer["message"] = _nothing_marked("the export", batch, selection, "trace_id")
        created = any(result.created for _, result in results)
        return JSONResponse(answer, 201 if created else 200)

    async def post_intake(request: Request) -> Response:
        if not authorised(request):
            return error(401, "missing or wrong bearer token", kind="unauthorized")
        media, parameters = _media_type(request.headers.get("content-type", ""))
        if media in _PROTOBUF:
            return error(
                415,
                "OTLP/protobuf is not read here: export OTLP/JSON and send it with "
                "Content-Type: application/json; format=otlp",
                kind="unsupported_media_type",
            )
        body_format = parameters.get("format", "json")
        if body_format not in FORMATS:
            return error(
                415,
                f"unknown format {body_format!r} in Content-Type (known: {', '.join(FORMATS)})",
                kind="unsupported_media_type",
            )
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
            if body_format != "json":
                trace_format: TraceFormat = "otlp" if body_format == "otlp" else "langfuse"
                return await run_in_threadpool(
                    store_traces, trace_format, body, request, provenance
                )
            failure = parse_payload(body)
            result = await run_in_threadpool(store, failure, provenance)
        except IntakeError as exc:
            return JSONResponse(exc.as_json(), _HTTP_STATUS[exc.kind])
        return JSONResponse(result.as_json(), 201 if result.created else 200)

    return [Route("/intake", post_intake, methods=["POST"], name="intake")]


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    """`application/json; format=otlp` as ("application/json", {"format": "otlp"})."""
    media, *parameters = header.split(";")
    parsed = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), parsed


def _query_selection(request: Request) -> Selection:
    """The selection from `below`, `trace_id` and `feedback_attribute`, or `IntakeError`."""
    import math

    from evalcore.triage.intake import FieldError, IntakeError
    from evalcore.triage.traces import DEFAULT_BELOW, Selection
    from evalcore.triage.traces.selection import DEFAULT_FEEDBACK_ATTRIBUTE

    query = request.query_params
    below = DEFAULT_BELOW
    raw = query.get("below")
    if raw is not None:
        try:
            below = float(raw)
        except ValueError:
            below = math.nan
        if not math.isfinite(below):
            problem = FieldError("below", f"must be a number, got {raw!r}")
            raise IntakeError("invalid", str(problem), [problem])
    return Selection(
        below=below,
        trace_ids=tuple(query.getlist("trace_id")),
        feedback_attribute=query.get("feedback_attribute") or DEFAULT_FEEDBACK_ATTRIBUTE,
    )
