"""The Docker engine unreachable for a build: the builder retries with capped backoff and, if
the engine stays away, emits one retryable ``StageFailed``. Never a stuck event or a crashed
service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts import new_chain, topics
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
        # Healthy is not yet consuming: wait until the builder's consumer has its partition,
        # so the event below is handled while the engine is away, not after it is back.
        log = mesh.processes[0].log_path
        deadline = time.monotonic() + 60
        while "assigned to partitions" not in log.read_text():
            assert time.monotonic() < deadline, "the builder never joined its consumer group"
            time.sleep(0.2)
        try:
            yield Rig(mesh, kafka, proxy)
        finally:
            mesh.stop()
            proxy.cut()


def _builder_alive(rig: Rig) -> bool:
    proc = rig.mesh.processes[0]
    return proc.process is not None and proc.process.poll() is None


@pytest.mark.timeout(1500)  # includes building the session's bentos when first here
async def test_engine_that_stays_away_ends_in_one_retryable_failure(
    rig: Rig, built_bentos: dict[str, PackagedBento], matrix: list[FaultRow]
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
    matrix.append(
        FaultRow(
            "Docker engine unreachable for a whole build (4 attempts)",
            1,
            1,
            0,
            max(0, len({e.id for e in again}) - 1),
            0.0,
            "one retryable StageFailed after capped backoff; builder alive",
        )
    )
    assert failed.data.retryable
    assert failed.data.error_type == "EngineUnavailable"
    assert "gave up after 4 attempts" in failed.data.reason
    assert len({e.id for e in again}) == 1
    assert _builder_alive(rig)
