"""One health check of one endpoint: ``/livez``, ``/readyz`` (with timings) and ``/metrics``.

Checks are async, share one HTTP client (connection reuse) and never raise: a failure is data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

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

    def metrics(self) -> dict[str, float | None]:
        """The values alert rules look at."""
        return {
            "live_failed": 0.0 if self.live else 1.0,
            # readiness is judged only while live: a dead endpoint is one alert, not two
            "ready_failed": (0.0 if self.ready else 1.0) if self.live else None,
            **self.stats,
        }


async def _timed_get(client: httpx.AsyncClient, url: str) -> tuple[bool, float | None, str | None]:
    started = time.perf_counter()
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"
    elapsed = (time.perf_counter() - started) * 1000
    return (
        response.status_code == 200,
        elapsed,
        None if response.status_code == 200 else (f"{url} answered {response.status_code}"),
    )


async def check(
    client: httpx.AsyncClient, target: Target, previous: Scrape | None
) -> tuple[CheckResult, Scrape | None]:
    """Check ``target``; returns the result and this scrape (the next window's start)."""
    base = target.url.rstrip("/")
    live, live_ms, live_error = await _timed_get(client, f"{base}/livez")
    ready: bool = False
    ready_ms: float | None = None
    ready_error: str | None = "not live"
    if live:
        ready, ready_ms, ready_error = await _timed_get(client, f"{base}/readyz")
    scrape = None
    stats: dict[str, float | None] = {}
    if live:
        try:
            response = await client.get(f"{base}/metrics")
            if response.status_code == 200:
                scrape = parse_scrape(response.text, time.monotonic())
                if previous is not None:
                    stats = window_stats(previous, scrape)
        except (httpx.HTTPError, ValueError):
            scrape = None
    result = CheckResult(
        target, time.time(), live, ready, live_ms, ready_ms, stats, live_error or ready_error
    )
    return result, scrape
