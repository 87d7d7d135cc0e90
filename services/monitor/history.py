"""The last hour of each deployment's figures, for the status page's charts.

One point per check (request rate, p99, 5xx share, requests in the window), kept in a bounded
ring per deployment, and answered thinned to at most ``points`` per series, so the page's JSON
stays small whatever the check interval.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from services.monitor.checker import CheckResult

SERIES = ("request_rate", "p99_latency_ms", "error_rate_5xx")


class History:
    def __init__(self, *, span_s: float = 3600.0, interval_s: float = 10.0) -> None:
        self.span_s = span_s
        self.size = max(2, int(span_s / max(interval_s, 0.1)) + 1)
        self.points: dict[str, deque[tuple[float, dict[str, float | None]]]] = {}
        self._lock = threading.Lock()

    def record(self, results: list[CheckResult]) -> None:
        """An ``on_results`` callback of :class:`~services.monitor.monitor.HealthMonitor`."""
        with self._lock:
            checked = {result.target.deployment_id for result in results}
            for gone in set(self.points) - checked:  # unwatched: every target is checked
                del self.points[gone]
            for result in results:
                ring = self.points.setdefault(result.target.deployment_id, deque(maxlen=self.size))
                ring.append((result.at, {k: result.stats.get(k) for k in (*SERIES, "requests")}))

    def forget(self, deployment_id: str) -> None:
        with self._lock:
            self.points.pop(deployment_id, None)

    def series(self, deployment_id: str, now: float, points: int = 60) -> dict[str, Any]:
        """``{"t": [seconds ago...], "request_rate": [...], ...}``, oldest first, thinned."""
        with self._lock:
            ring = [p for p in self.points.get(deployment_id, ()) if now - p[0] <= self.span_s]
        step = max(1, len(ring) // points)
        kept = ring[::-1][::step][:points][::-1]  # thinned from the newest, which is kept
        out: dict[str, Any] = {"t": [round(now - at, 1) for at, _ in kept]}
        for name in SERIES:
            out[name] = [values.get(name) for _, values in kept]
        return out
