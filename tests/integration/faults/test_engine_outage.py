"""The Docker engine unreachable for a build or a deploy: the builder and the deployer retry with
capped backoff and, if the engine stays away, emit one retryable ``StageFailed``. Never a stuck
event, a crashed service, or a deployment left half-started in the deployer's state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bentomesh_contracts import DeploymentPrefs, ImageReady, new_chain, topics
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.kafka import KafkaSettings
from services.builder.backend import docker_available
from services.mesh.local import LocalMesh
from services.packager.pipeline import PackagedBento
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.conftest import require
from tests.integration.faults.engine_proxy import EngineProxy
from tests.integration.faults.report import FaultRow
from tests.kafka_helpers import Collector, send_signed

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
            services=tuple(s for s in SERVICES if s.name in ("builder", "deployer")),
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
        # Healthy is not yet consuming: wait until each consumer has its partition, so the
        # events below are handled while the engine is away, not after it is back.
        deadline = time.monotonic() + 60
        for proc in mesh.processes:
            while "assigned to partitions" not in proc.log_path.read_text():
                assert time.monotonic() < deadline, f"{proc.info.name} never joined its group"
                time.sleep(0.2)
        try:
            yield Rig(mesh, kafka, proxy)
        finally:
            mesh.stop()
            proxy.cut()


def _alive(rig: Rig, name: str) -> bool:
    proc = next(p for p in rig.mesh.processes if p.info.name == name)
    return proc.process is not None and proc.process.poll() is None


async def sent_while_engine_away(rig: Rig, event: CloudEvent[Any]) -> tuple[Any, Collector]:
    """Send ``event`` with the engine cut: the ``StageFailed`` it ends in, and everything read
    until 3 s after it (a second failure for the same event would be there)."""
    rig.proxy.cut()
    try:
        async with Collector(rig.kafka) as collector:
            await send_signed(event, rig.kafka)
            failed = await collector.wait_for(
                lambda e: e.causationid == event.id, topic=topics.STAGE_FAILED, timeout=120
            )
            await asyncio.sleep(3)
            await collector.poll()
    finally:
        rig.proxy.start()
    return failed, collector


@pytest.mark.timeout(1500)  # includes building the session's bentos when first here
async def test_engine_that_stays_away_ends_in_one_retryable_failure(
    rig: Rig, built_bentos: dict[str, PackagedBento], matrix: list[FaultRow]
) -> None:
    event = new_chain(built_bentos["sklearn-classifier"].built, source="test-down")
    failed, collector = await sent_while_engine_away(rig, event)
    again = [e for e in collector.events(topics.STAGE_FAILED) if e.causationid == event.id]
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
    assert _alive(rig, "builder")


@pytest.mark.timeout(600)
async def test_engine_away_during_a_deploy_ends_in_one_retryable_failure(
    rig: Rig, matrix: list[FaultRow]
) -> None:
    image = ImageReady(
        model_name="outage-model",
        model_version="1",
        bento_tag="outage-model:1",
        backend="docker",
        image_ref="bentomesh/outage-model:1",  # never pulled: the engine is gone before that
        image_digest="sha256:" + "0" * 64,  # as the builder records it
        size_bytes=0,
        build_seconds=0.0,
        deployment=DeploymentPrefs(),
    )
    event = new_chain(image, source="test-deploy-down")
    failed, collector = await sent_while_engine_away(rig, event)
    again = [e for e in collector.events(topics.STAGE_FAILED) if e.causationid == event.id]
    deployed = [e for e in collector.events(topics.DEPLOYED) if e.chainid == event.chainid]
    deployer = next(p for p in rig.mesh.processes if p.info.name == "deployer")
    attempts = httpx.get(
        f"{deployer.url}/deployments", params={"model": "outage-model"}, timeout=10
    ).json()
    matrix.append(
        FaultRow(
            "Docker engine unreachable for a whole deploy (4 attempts)",
            1,
            1,
            0,
            max(0, len({e.id for e in again}) - 1),
            0.0,
            f"one retryable StageFailed; deployer alive; {len(attempts)} attempts recorded "
            "(the image is checked on the engine before a row is written), none left starting",
        )
    )
    assert failed.data.retryable
    assert failed.data.error_type == "RuntimeUnavailable"
    assert "gave up after 4 attempts" in failed.data.reason
    assert len({e.id for e in again}) == 1
    assert deployed == []
    assert {r["status"] for r in attempts} <= {"failed"}  # none left starting
    assert _alive(rig, "deployer")
