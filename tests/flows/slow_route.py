"""A route for the scale-out tests, importable by the workers' flow runs without the test
modules (whose conftest clears PREFECT_API_URL when imported)."""

from __future__ import annotations

import asyncio
from typing import Any


async def slow_answer(case_input: dict[str, Any]) -> dict[str, Any]:
    """Answers right in 40 ms: long enough for a worker to die mid-shard."""
    await asyncio.sleep(0.04)
    return {"text": "You can return it within 14 days.", "usage": {"prompt_tokens": 9}}
