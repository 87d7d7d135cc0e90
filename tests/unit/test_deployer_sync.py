"""The monitor's watch set follows the deployer: what it serves is watched, what it no longer
serves is retired and its firing alerts resolve (the deployer's API answered in memory)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bentomesh_contracts.codec import decode_as
from bentomesh_contracts.envelope import new_chain
from bentomesh_contracts.events import HealthAlert
from services.monitor.monitor import HealthMonitor
from services.monitor.outbox import Outbox
from services.monitor.service import WatchSet, kafka_alert_handler
from services.monitor.sync import DeployerSync
from services.runtime.trust import Trust


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


def _queued_alerts(monitor: HealthMonitor, watch: WatchSet) -> list[dict[str, Any]]:
    """Alerts as the monitor would publish them to Kafka, kept instead of sent."""
    queued: list[dict[str, Any]] = []
    outbox = Outbox("kafka alerts", lambda item: asyncio.sleep(0))
    outbox.put = queued.append  # type: ignore[method-assign]
    monitor.add_alert_handler(kafka_alert_handler(watch, Trust.insecure("monitor"), outbox))
    return queued


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


async def test_an_alert_left_firing_for_a_deployment_gone_meanwhile_resolves_at_start() -> None:
    """The monitor was down while d1 was replaced: its alert was taken up as firing, and d1
    is watched by nobody; the first sync resolves it, on the firing alert's own chain."""
    monitor = HealthMonitor()
    watch = WatchSet(monitor)
    queued = _queued_alerts(monitor, watch)
    cause = new_chain(
        HealthAlert(
            deployment_id="d1",
            model_name="churn",
            model_version="1",
            rule="endpoint_down",
            severity="critical",
            state="firing",
            endpoint_url="http://127.0.0.1:1/d1",
            message="endpoint down",
        ),
        source="bentomesh/monitor",
    )
    monitor.book.restore("d1", "endpoint_down", True)
    watch.standing[("d1", "endpoint_down")] = cause
    rows = [_row("d2", "2")]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=rows))
    async with httpx.AsyncClient(transport=transport) as client:
        await DeployerSync(watch, "http://deployer", "t", 1.0).once(client)
        [item] = queued
        resolved = decode_as(item["value"], HealthAlert)
        assert (resolved.data.deployment_id, resolved.data.state) == ("d1", "resolved")
        assert resolved.chainid == cause.chainid
        assert resolved.causationid == cause.id
        assert monitor.book.firing("d1") == []
        await DeployerSync(watch, "http://deployer", "t", 1.0).once(client)
    assert len(queued) == 1  # resolved once
    assert set(watch.alert_causes) == set()


async def test_every_replica_is_watched_and_a_moved_one_resolves_where_it_was() -> None:
    """A swarm deployment with replicas at a, b: the deployment's own target follows the first,
    b is a target of its own; when b moves to c, b is retired (its alert resolves) and c is
    watched. Alerts of a replica follow the deployment's chain."""
    monitor = HealthMonitor()
    watch = WatchSet(monitor)
    queued = _queued_alerts(monitor, watch)
    row = {**_row("d1", "1"), "runtime": "swarm", "endpoint": "http://a:1"}
    row["endpoints"] = "http://a:1 http://b:2"
    rows = [row]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=rows))
    sync = DeployerSync(watch, "http://deployer", "t", 1.0)
    async with httpx.AsyncClient(transport=transport) as client:
        await sync.once(client)
        assert {k: t.url for k, t in monitor.targets.items()} == {
            "d1": "http://a:1",
            "d1/b:2": "http://b:2",
        }
        monitor.book.restore("d1/b:2", "endpoint_down", True)  # replica b went down
        rows[0] = {**row, "endpoint": "http://a:1", "endpoints": "http://a:1 http://c:3"}
        await sync.once(client)
    assert {k: t.url for k, t in monitor.targets.items()} == {
        "d1": "http://a:1",
        "d1/c:3": "http://c:3",
    }
    [item] = queued
    resolved = decode_as(item["value"], HealthAlert)
    assert (resolved.data.deployment_id, resolved.data.state) == ("d1/b:2", "resolved")
    assert resolved.chainid == "chain-1"  # the deployment's chain
