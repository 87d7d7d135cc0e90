"""Transient stage failures are retried with capped, jittered exponential backoff."""

from __future__ import annotations

import random

import pytest
import requests

from services.errors import StageError, TransientStageError
from services.runtime.engine import engine_unreachable
from services.runtime.retry import RetryPolicy, with_retries


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_s=1.0, cap_s=8.0)
    rng = random.Random(0)
    ceilings = [max(policy.delay(n, rng) for _ in range(2000)) for n in range(1, 7)]
    assert ceilings[0] <= 1.0
    assert ceilings[1] <= 2.0
    assert ceilings[2] <= 4.0
    assert all(c <= 8.0 for c in ceilings)
    assert ceilings[5] > 7.5  # reaches the cap


async def test_transient_failure_is_retried_until_it_succeeds() -> None:
    calls, slept = [], []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientStageError("engine restarting")
        return "ok"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    assert await with_retries(flaky, RetryPolicy(attempts=5), sleep=sleep) == "ok"
    assert len(calls) == 3
    assert len(slept) == 2


async def test_gives_up_after_the_attempts_with_a_retryable_error() -> None:
    async def down() -> str:
        raise TransientStageError("engine down")

    async def sleep(seconds: float) -> None:
        return None

    with pytest.raises(TransientStageError, match="gave up after 3 attempts") as info:
        await with_retries(down, RetryPolicy(attempts=3), sleep=sleep)
    assert info.value.retryable


async def test_permanent_failure_is_not_retried() -> None:
    calls = []

    async def broken() -> str:
        calls.append(1)
        raise StageError("bad artifact")

    with pytest.raises(StageError):
        await with_retries(broken, RetryPolicy(attempts=5))
    assert calls == [1]


def test_engine_unreachable_looks_through_wrapped_causes() -> None:
    outer = RuntimeError("build failed")
    outer.__cause__ = requests.exceptions.ConnectionError("Connection aborted")
    assert engine_unreachable(outer)
    assert not engine_unreachable(RuntimeError("COPY failed: no such file"))
