"""One health check of one endpoint: ``/livez``, ``/readyz`` (with timings) and ``/metrics``.

Checks are async, share one aiohttp session (connection reuse; about a sixth of httpx's CPU per
request here) and never raise: a failure is data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.monitor.window import Scrape, parse_scrape, window_stats


@dataclass(frozen=True)
class Target:
    """A deployment to watch."""

    deployment_id: str
    url: str
    model_name: str = "unknown"
    model_version: str = "0"
    chain_id: str | None = None
    cause_id: str | None = None


@dataclass
class CheckResult:
    target: Target
    at: float
    live: bool
    ready: bool
    live_ms: float | None
    ready_ms: float | None
    stats: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # metric -> what is behind its value

    def metrics(self) -> dict[str, float | None]:
        """The values alert rules look at."""
        return {
            "live_failed": 0.0 if self.live else 1.0,
            # readiness is judged only while live: a dead endpoint is one alert, not two
            "ready_failed": (0.0 if self.ready else 1.0) if self.live else None,
            **self.stats,
        }


@dataclass(frozen=True)
class _Answer:
    ok: bool
    ms: float | None
    error: str | None = None
    timed_out: bool = False


async def _timed_get(session: aiohttp.ClientSession, url: str) -> _Answer:
    started = time.perf_counter()
    try:
        async with session.get(url) as response:
            await response.read()
            status = response.status
    except TimeoutError:
        return _Answer(False, None, f"{url} did not answer in time", timed_out=True)
    except aiohttp.ClientError as exc:
        return _Answer(False, None, f"{type(exc).__name__}: {exc}")
    elapsed = (time.perf_counter() - started) * 1000
    return _Answer(status == 200, elapsed, None if status == 200 else f"{url} answered {status}")


async def check(
    session: aiohttp.ClientSession, target: Target, previous: Scrape | None
) -> tuple[CheckResult, Scrape | None]:
    """Check ``target``; returns the result and this scrape (the next window's start).

    A ready service is live, so ``/livez`` is asked only when ``/readyz`` fails: two requests
    per healthy endpoint (readiness and metrics), which is what keeps the monitor cheap. A
    ``/readyz`` that timed out counts as not live: a server that does not answer serves nobody,
    and asking ``/livez`` would only wait out the timeout a second time.
    """
    base = target.url.rstrip("/")
    readiness = await _timed_get(session, f"{base}/readyz")
    ready, ready_ms, error = readiness.ok, readiness.ms, readiness.error
    live, live_ms = ready, ready_ms
    if not ready and not readiness.timed_out:
        liveness = await _timed_get(session, f"{base}/livez")
        live, live_ms, error = liveness.ok, liveness.ms, liveness.error or error
    scrape = None
    stats: dict[str, float | None] = {}
    if live:
        try:
            async with session.get(f"{base}/metrics") as response:
                text = await response.text()
                if response.status == 200:
                    scrape = parse_scrape(text, time.monotonic())
                    if previous is not None:
                        stats = window_stats(previous, scrape)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            scrape = None
    result = CheckResult(target, time.time(), live, ready, live_ms, ready_ms, stats, error)
    return result, scrape


LIVE_ROUTE = "/bentomesh/live"


async def read_live(
    session: aiohttp.ClientSession, target: Target, with_reference: bool
) -> dict[str, Any] | None:
    """The served model's live counts (and its reference profile when asked); None when the
    model has no reference (404) or did not answer."""
    url = f"{target.url.rstrip('/')}{LIVE_ROUTE}{'' if with_reference else '?reference=0'}"
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return {} if response.status == 404 else None
            body: dict[str, Any] = await response.json()
            return body
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
