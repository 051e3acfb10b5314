"""A minimal OpenAI-compatible chat endpoint: bare ASGI on uvicorn, a fixed answer after
a fixed delay, so the benchmarks measure the client side and not the target.

Run: python -m bench.stub_server PORT DELAY_MS
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn

BODY = orjson.dumps(
    {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "You can return it within 14 days."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def make_app(delay_s: float) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if delay_s:
            await asyncio.sleep(delay_s)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})

    return app


def main() -> None:
    port = int(sys.argv[1])
    delay_ms = float(sys.argv[2])
    uvicorn.run(
        make_app(delay_ms / 1000.0),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        backlog=4096,
        timeout_keep_alive=120,
    )


if __name__ == "__main__":
    main()
