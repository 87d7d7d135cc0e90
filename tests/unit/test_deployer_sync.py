"""The monitor's watch set follows the deployer: what it serves is watched, what it no longer
serves is retired and its firing alerts resolve (the deployer's API answered in memory)."""

from __future__ import annotations

from typing import Any

import httpx

from bentomesh_contracts.events import HealthAlert
from services.monitor.monitor import HealthMonitor
from services.monitor.service import WatchSet
from services.monitor.sync import DeployerSync


def _row(deployment_id: str, version: str, status: str = "active") -> dict[str, Any]:
    return {
        "id": deployment_id,
        "model": "churn",
        "version": version,
        "runtime": "process",
        "endpoint": f"http://127.0.0.1:1/{deployment_id}",
        "status": status,
        "chain_id": f"chain-{version}",
        "registered_at": float(version),
        "created_at": float(version),
    }


async def test_the_watch_set_follows_the_deployer_and_retired_alerts_resolve() -> None:
    monitor = HealthMonitor()
    sent: list[HealthAlert] = []
    monitor.add_alert_handler(sent.append)
    watch = WatchSet(monitor)
    rows = [_row("d1", "1")]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=rows))
    sync = DeployerSync(watch, "http://deployer", "t", 1.0)
    async with httpx.AsyncClient(transport=transport) as client:
        await sync.once(client)
        assert set(monitor.targets) == {"d1"}
        assert watch.causes["d1"].chainid == "chain-1"
        monitor.book.restore("d1", "endpoint_down", True)  # an outage is firing
        rows[:] = [_row("d1", "1", "replaced"), _row("d2", "2")]
        await sync.once(client)
    assert set(monitor.targets) == {"d2"}
    assert set(watch.causes) == {"d2"}
    [resolved] = sent
    assert (resolved.deployment_id, resolved.rule, resolved.state) == (
        "d1",
        "endpoint_down",
        "resolved",
    )
