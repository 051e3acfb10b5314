"""The fake's HTTP answers: JSON in UTF-8 with Slack's content type, for the Web API,
the control API and Socket Mode's control routes alike."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

from evalcore.local.fake_slack.calls import JSON

__all__ = ["json_response"]


def json_response(
    body: JSON, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
    )
