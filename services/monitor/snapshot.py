"""What the status page shows: watched deployments with their health, and every event chain."""

from __future__ import annotations

import time
from typing import Any

from services.monitor.history import History
from services.monitor.monitor import HealthMonitor
from services.monitor.service import WatchSet
from services.status.chains import ChainBook


def deployment_rows(
    monitor: HealthMonitor, watch: WatchSet, history: History | None = None
) -> list[dict[str, Any]]:
    rows = []
    now = time.time()
    for event in list(watch.causes.values()):
        data = event.data
        result = monitor.last.get(data.deployment_id)
        stats = result.stats if result else {}
        rows.append(
            {
                "model": data.model_name,
                "version": data.model_version,
                "runtime": data.runtime,
                "endpoint": data.endpoint_url,
                "deployment_id": data.deployment_id,
                "chainid": event.chainid,
                "healthy": (result.live and result.ready) if result else None,
                "live": result.live if result else None,
                "ready_ms": result.ready_ms if result else None,
                "p99_latency_ms": stats.get("p99_latency_ms"),
                "request_rate": stats.get("request_rate"),
                "requests": stats.get("requests"),
                "error_rate_5xx": stats.get("error_rate_5xx"),
                "alerts": monitor.book.firing(data.deployment_id),
                "last_error": result.error if result else None,
                "history": history.series(data.deployment_id, now) if history else None,
                "drift": monitor.drift_of(data.deployment_id),
            }
        )
    return sorted(rows, key=lambda r: r["model"])


def status_snapshot(
    monitor: HealthMonitor, watch: WatchSet, chains: ChainBook, history: History | None = None
) -> dict[str, Any]:
    return {
        "deployments": deployment_rows(monitor, watch, history),
        "rollouts": chains.rollouts(),
        "chains": chains.snapshot(),
        "checks": monitor.checks,
    }
