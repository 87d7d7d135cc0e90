"""The Docker engine unreachable during a build: the builder retries with backoff and builds
once the engine is back; if it stays away, one retryable ``StageFailed``. Never a stuck event or
a crashed service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts import BentoBuilt, new_chain, topics
from contracts.kafka import KafkaSettings
from contracts.publish import send_event
from services.builder.backend import docker_available
from services.cli.supervisor import LocalMesh
from services.packager.pipeline import PackagedBento
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.conftest import require
from tests.integration.faults.engine_proxy import EngineProxy
from tests.integration.faults.report import FaultRow
from tests.kafka_helpers import Collector

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.docker]


@dataclass
class Rig:
    mesh: LocalMesh
    kafka: KafkaSettings
    proxy: EngineProxy


@pytest.fixture(scope="module")
def rig(session_home: Path) -> Iterator[Rig]:
    require(docker_available(), "a Docker engine", ".ci/run installs docker.io and starts dockerd")
    from services.builder.base_image import build_base_image

    build_base_image()  # no-op when it exists (CI builds it before the tests)
    proxy = EngineProxy(session_home / "engine-proxy.sock").start()
    with EmbeddedBroker(log_path=session_home / "broker-engine.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        asyncio.run(ensure_topics(kafka, partitions=1))
        mesh = LocalMesh(
            kafka,
            RuntimeSettings(home=session_home / "mesh-engine"),
            services=tuple(s for s in SERVICES if s.name == "builder"),
            free_ports=True,
            extra_env={
                "BENTOMESH_DOCKER_HOST": proxy.url,
                "BENTOMESH_RUNTIME": "docker",
                "BENTOMESH_RETRY_ATTEMPTS": "4",
                "BENTOMESH_RETRY_BASE_S": "1",
                "BENTOMESH_RETRY_CAP_S": "4",
            },
        )
        mesh.start(timeout=120)
        try:
            yield Rig(mesh, kafka, proxy)
        finally:
            mesh.stop()
            proxy.cut()


def _builder_alive(rig: Rig) -> bool:
    proc = rig.mesh.processes[0]
    return proc.process is not None and proc.process.poll() is None


async def test_engine_back_after_an_outage_the_image_is_built_once(
    rig: Rig, built_bentos: dict[str, PackagedBento], matrix: list[FaultRow]
) -> None:
    event = new_chain(built_bentos["sklearn-classifier"].built, source="test")
    assert isinstance(event.data, BentoBuilt)
    rig.proxy.cut()  # the engine is away when the event arrives
    async with Collector(rig.kafka) as collector:
        await send_event(event, rig.kafka)
        await asyncio.sleep(3)  # at least one failed attempt and a backoff
        rig.proxy.start()
        back = time.monotonic()
        ready = await collector.wait_for(
            lambda e: e.causationid == event.id, topic=topics.IMAGE_READY, timeout=600
        )
        recovery = time.monotonic() - back
        await asyncio.sleep(2)
        await collector.poll()
        failed = [e for e in collector.events(topics.STAGE_FAILED) if e.causationid == event.id]
        images = [e for e in collector.events(topics.IMAGE_READY) if e.causationid == event.id]
    matrix.append(
        FaultRow(
            "Docker engine unreachable as a build starts (3 s)",
            1,
            1,
            0 if images else 1,
            max(0, len({e.id for e in images}) - 1),
            recovery,
            "retried with backoff, built once the engine answered",
        )
    )
    assert ready.data.backend == "docker"
    assert failed == []
    assert len({e.id for e in images}) == 1
    assert _builder_alive(rig)
    log = rig.mesh.processes[0].log_path.read_text()
    assert "retry 1 in" in log


async def test_engine_that_stays_away_ends_in_one_retryable_failure(
    rig: Rig, built_bentos: dict[str, PackagedBento]
) -> None:
    event = new_chain(built_bentos["sklearn-classifier"].built, source="test-down")
    rig.proxy.cut()
    try:
        async with Collector(rig.kafka) as collector:
            await send_event(event, rig.kafka)
            failed = await collector.wait_for(
                lambda e: e.causationid == event.id, topic=topics.STAGE_FAILED, timeout=120
            )
            await asyncio.sleep(3)
            await collector.poll()
            again = [e for e in collector.events(topics.STAGE_FAILED) if e.causationid == event.id]
    finally:
        rig.proxy.start()
    assert failed.data.retryable
    assert failed.data.error_type == "EngineUnavailable"
    assert "gave up after 4 attempts" in failed.data.reason
    assert len({e.id for e in again}) == 1
    assert _builder_alive(rig)
