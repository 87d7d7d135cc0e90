"""The monitor service on the real broker: Deployed in, HealthAlert out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import Deployed, ModelRegistered, follow_up, new_chain, topics
from contracts.events import Feature
from contracts.kafka import KafkaSettings
from contracts.publish import send_event
from services.cli.supervisor import LocalMesh
from services.registry import SERVICES
from services.runtime.settings import RuntimeSettings
from tests.kafka_helpers import Collector
from tests.model_server import ModelServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def monitor(kafka: KafkaSettings, session_home: Path) -> Iterator[LocalMesh]:
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mesh-monitor"),
        services=tuple(s for s in SERVICES if s.name == "monitor"),
        free_ports=True,
        extra_env={
            "BENTOMESH_MONITOR_INTERVAL_S": "0.5",
            "BENTOMESH_MONITOR_TARGETS_FILE": str(session_home / "mesh-monitor" / "models.json"),
        },
    )
    local.start(timeout=60)
    yield local
    local.stop()


def deployed_event(server: ModelServer, model: str, version: str, replaced: str | None = None):  # type: ignore[no-untyped-def]
    cause = new_chain(
        ModelRegistered(
            model_name=model,
            model_version=version,
            task="classification",
            artifact_uri="/x",
            artifact_sha256="a" * 64,
            features=[Feature(name="x")],
        ),
        source="test",
    )
    data = Deployed(
        deployment_id=f"{model}-{version}-{uuid.uuid4().hex[:6]}",
        model_name=model,
        model_version=version,
        runtime="process",
        endpoint_url=server.url,
        replaced_deployment_id=replaced,
    )
    return follow_up(cause, data, source="test")


async def test_outage_fires_critical_alert_then_resolves(
    monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    server = ModelServer().start()
    event = deployed_event(server, "watched", "1")
    async with Collector(kafka) as collector:
        await send_event(event, kafka)
        import asyncio

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
        await send_event(old, kafka)
        await asyncio.sleep(2)
        await send_event(new, kafka)
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
