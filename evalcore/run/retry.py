"""When and how long to wait before calling a target again.

Exponential back-off with full jitter, so that a hundred workers hit by the same 429
burst do not come back in lock-step; a server's Retry-After is a floor, never shortened.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# A server asking for more than this is treated as down for the run; the call is an error.
MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    base_s: float = 0.5
    max_s: float = 20.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait after failed `attempt` (1-based), or None to give up."""
        if attempt > self.retries:
            return None
        if retry_after is not None and retry_after > MAX_RETRY_AFTER_S:
            return None
        backoff = rng.uniform(0.0, min(self.max_s, self.base_s * (2 ** (attempt - 1))))
        if retry_after is not None:
            return max(retry_after, backoff)
        return backoff
