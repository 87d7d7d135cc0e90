"""Retries of transient stage failures: capped exponential backoff with full jitter.

A ``TransientStageError`` (engine restarting, runtime unreachable) is retried in place, so the
partition's order holds; once the attempts are spent it becomes one ``StageFailed`` marked
retryable. Permanent errors are not retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from services.errors import TransientStageError

T = TypeVar("T")
logger = logging.getLogger("bentomesh.retry")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before retry number ``attempt`` (1-based): uniform in [0, min(cap, base*2^n)]."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str = "",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except TransientStageError as exc:
            if attempt == policy.attempts:
                exc.reason = f"{exc.reason} (gave up after {attempt} attempts)"
                exc.args = (exc.reason,)
                raise
            delay = policy.delay(attempt)
            logger.warning("%s: %s; retry %d in %.1fs", what, exc.reason, attempt, delay)
            await sleep(delay)
    raise AssertionError("unreachable")
