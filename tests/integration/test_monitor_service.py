"""The monitor service on the real broker: Deployed in, HealthAlert out."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.integration.conftest import deployed_event
from tests.kafka_helpers import Collector, send_signed
from tests.model_server import ModelServer

pytestmark = pytest.mark.integration


async def test_outage_fires_critical_alert_then_resolves(
    monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    server = ModelServer().start()
    event = deployed_event(server, "watched", "1")
    async with Collector(kafka) as collector:
        await send_signed(event, kafka)
        await asyncio.sleep(3)  # a few healthy checks first
        server.stop()
        fired = await collector.wait_for(
            lambda e: e.data.deployment_id == event.data.deployment_id and e.data.state == "firing",
            topic=topics.HEALTH_ALERT,
            timeout=20,
        )
        assert fired.data.rule == "endpoint_down"
        assert fired.data.severity == "critical"
        assert fired.chainid == event.chainid
        assert fired.causationid == event.id
        revived = ModelServer()
        revived.port = server.port
        revived.start()
        try:
            resolved = await collector.wait_for(
                lambda e: (
                    e.data.deployment_id == event.data.deployment_id and e.data.state == "resolved"
                ),
                topic=topics.HEALTH_ALERT,
                timeout=20,
            )
        finally:
            revived.stop()
        assert resolved.data.rule == "endpoint_down"
        alerts = [
            e
            for e in collector.events(topics.HEALTH_ALERT)
            if e.data.deployment_id == event.data.deployment_id
        ]
        assert [(a.data.rule, a.data.state) for a in alerts] == [
            ("endpoint_down", "firing"),
            ("endpoint_down", "resolved"),
        ]


async def test_replaced_version_is_no_longer_watched(
    monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    import asyncio

    import httpx

    old_server = ModelServer().start()
    new_server = ModelServer().start()
    old = deployed_event(old_server, "replaced", "1")
    new = deployed_event(new_server, "replaced", "2", replaced=old.data.deployment_id)
    async with Collector(kafka) as collector:
        await send_signed(old, kafka)
        await asyncio.sleep(2)
        await send_signed(new, kafka)
        await asyncio.sleep(2)
        old_server.stop()  # the replaced version goes away, as the deployer stops it
        await asyncio.sleep(4)
        await collector.poll()
        about_old = [
            e
            for e in collector.events(topics.HEALTH_ALERT)
            if e.data.deployment_id == old.data.deployment_id
        ]
    new_server.stop()
    assert about_old == []
    import json

    targets = json.loads((monitor.runtime.home / "models.json").read_text())
    watched = {g["labels"]["deployment"] for g in targets}
    assert new.data.deployment_id in watched
    assert old.data.deployment_id not in watched
    [proc] = monitor.processes
    metrics = httpx.get(f"{proc.url}/metrics", timeout=10).text
    assert "bentomesh_monitor_checks_total" in metrics
    assert "bentomesh_monitor_alert_firing" in metrics


async def test_a_restart_neither_fires_a_standing_alert_again_nor_forgets_to_resolve_it(
    monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    server = ModelServer().start()
    event = deployed_event(server, "watched-across-restarts", "1")
    deployment = event.data.deployment_id
    async with Collector(kafka) as collector:
        await send_signed(event, kafka)
        await asyncio.sleep(2)
        server.stop()
        await collector.wait_for(
            lambda e: e.data.deployment_id == deployment and e.data.state == "firing",
            topic=topics.HEALTH_ALERT,
            timeout=20,
        )
        await asyncio.to_thread(monitor.restart, "monitor", timeout=60)
        await asyncio.sleep(4)  # checks every 0.5 s on the outage that is still there
        revived = ModelServer()
        revived.port = server.port
        revived.start()
        try:
            await collector.wait_for(
                lambda e: e.data.deployment_id == deployment and e.data.state == "resolved",
                topic=topics.HEALTH_ALERT,
                timeout=30,
            )
        finally:
            revived.stop()
        await asyncio.sleep(1)
        await collector.poll()
    # at least once: a monitor killed between the broker's ack and its outbox's save sends
    # that alert again after the restart, with the same id (receivers drop it by id)
    alerts = {e.id: e for e in collector.events(topics.HEALTH_ALERT)}.values()
    assert [(a.data.rule, a.data.state) for a in alerts if a.data.deployment_id == deployment] == [
        ("endpoint_down", "firing"),
        ("endpoint_down", "resolved"),
    ]


def _monitors(kafka: KafkaSettings, home: Path) -> LocalMesh:
    return LocalMesh(
        kafka,
        RuntimeSettings(home=home),
        services=tuple(s for s in SERVICES if s.name == "monitor"),
        free_ports=True,
        extra_env={"BENTOMESH_MONITOR_INTERVAL_S": "0.5", "BENTOMESH_MONITOR_SYNC_S": "0"},
    )


def _leading(mesh: LocalMesh) -> bool:
    return bool(httpx.get(f"{mesh.processes[0].url}/api/status", timeout=5).json()["leading"])


def test_two_monitor_replicas_announce_each_transition_once_and_take_over(
    session_home: Path,
) -> None:
    """Two monitors on one home and their own broker: one leads, so an outage fires once (not
    twice); the leader is killed while the alert fires, and the other takes over and resolves
    it once the endpoint is back."""
    with EmbeddedBroker(log_path=session_home / "broker-monitor-replicas.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        asyncio.run(ensure_topics(kafka, partitions=3))
        home = session_home / "mesh-monitor-replicas"
        replicas = [_monitors(kafka, home), _monitors(kafka, home)]
        for replica in replicas:
            replica.start(timeout=60)
        try:
            alerts = asyncio.run(_kill_the_leader_mid_outage(kafka, replicas))
        finally:
            for replica in replicas:
                replica.stop()
    assert [a.data.state for a in alerts] == ["firing", "resolved"]


async def _kill_the_leader_mid_outage(kafka: KafkaSettings, replicas: list[LocalMesh]) -> list[Any]:
    server = ModelServer().start()
    event = deployed_event(server, "replicated", "1")
    mine = lambda e: e.data.deployment_id == event.data.deployment_id  # noqa: E731
    try:
        async with Collector(kafka, (topics.HEALTH_ALERT,)) as collector:
            await send_signed(event, kafka)
            deadline = time.monotonic() + 30
            while sum(_leading(r) for r in replicas) != 1:
                assert time.monotonic() < deadline, "no single leader"
                await asyncio.sleep(0.5)
            leader = next(r for r in replicas if _leading(r))
            await asyncio.sleep(3)  # healthy checks first
            server.stop()
            await collector.wait_for(
                lambda e: mine(e) and e.data.state == "firing", topic=topics.HEALTH_ALERT
            )
            proc = leader.processes[0].process
            assert proc is not None
            os.kill(proc.pid, signal.SIGKILL)
            revived = ModelServer()
            revived.port = server.port
            server = revived.start()
            await collector.wait_for(
                lambda e: mine(e) and e.data.state == "resolved",
                topic=topics.HEALTH_ALERT,
                timeout=60,
            )
            await asyncio.sleep(3)  # a second announcement, if any, would show now
            await collector.poll()
            alerts = [e for e in collector.events(topics.HEALTH_ALERT) if mine(e)]
        survivor = next(r for r in replicas if r is not leader)
        assert _leading(survivor)
    finally:
        server.stop()
    return alerts
