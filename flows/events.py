"""Following a Prefect event stream for as long as a caller needs it.

The worker takes flow runs on their `Scheduled` events and a gate wakes on its shards'
state changes; both also poll, so a stream that cannot be had or drops is subscribed to
again after a pause while the poll carries on alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

from prefect.events import Event
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter
from prefect.logging import get_logger

# How long to wait before subscribing again when the stream drops.
EVENTS_RETRY_S = 5.0

_logger = get_logger("evalcore.events")


async def follow_events(
    matching: EventFilter, handle: Callable[[Event], Awaitable[None]]
) -> NoReturn:
    """`handle` each event matching `matching`, until cancelled."""
    while True:
        try:
            async with get_events_subscriber(filter=matching) as events:
                async for event in events:
                    await handle(event)
        except Exception as exc:  # the stream dropped: the poll covers what it misses
            _logger.debug("event stream closed (%s); subscribing again", exc)
        await asyncio.sleep(EVENTS_RETRY_S)
