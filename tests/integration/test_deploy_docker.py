"""The chain on a real Docker engine: image built from the bento, container deployed and replaced.

Needs a Docker engine and the local base image (``bentomesh base-image``); ``.ci/run`` sets both
up, and on CI a missing engine fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bentomesh_contracts import new_chain, topics
from bentomesh_contracts.kafka import KafkaSettings
from services.builder.backend import docker_available
from services.mesh.local import LocalMesh, ServiceProcess
from services.registry import SERVICES
from services.runtime.settings import RuntimeSettings
from tests.integration.conftest import register_case
from tests.kafka_helpers import Collector, send_signed, wait_deployed
from tests.models import FEATURES, ModelCase

pytestmark = [pytest.mark.integration, pytest.mark.docker]

MODEL = "lightgbm-classifier"


@pytest.fixture(scope="module")
def engine() -> Any:
    if not docker_available():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine: .ci/run must install docker.io and start dockerd")
        pytest.skip("no Docker engine reachable")
    from services.builder.base_image import build_base_image
    from services.builder.docker_image import docker_client

    build_base_image()  # no-op when it exists (CI builds it before the tests)
    client = docker_client()
    yield client
    for container in client.containers.list(
        all=True, filters={"label": f"bentomesh.model={MODEL}"}
    ):
        container.remove(force=True)
    client.close()


@pytest.fixture(scope="module")
def mesh(engine: Any, kafka: KafkaSettings, session_home: Path) -> Iterator[LocalMesh]:
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mesh-docker"),
        services=tuple(s for s in SERVICES if s.name in ("packager", "builder", "deployer")),
        free_ports=True,
        extra_env={
            "BENTOMESH_RUNTIME": "docker",
            "BENTOMESH_READY_TIMEOUT_S": "180",
            "BENTOMESH_STATE_PATH": str(session_home / "mesh-docker" / "deployer.db"),
        },
    )
    local.start(timeout=120)
    yield local
    local.stop()


def deployer_of(mesh: LocalMesh) -> ServiceProcess:
    return next(p for p in mesh.processes if p.info.name == "deployer")


async def register_and_wait(kafka: KafkaSettings, case: ModelCase, version: str) -> tuple[Any, Any]:
    event = new_chain(register_case(case, version=version), source="test")  # type: ignore[arg-type]
    async with Collector(kafka) as collector:
        await send_signed(event, kafka)
        deployed = await wait_deployed(collector, event.chainid, timeout=540)
        image = await collector.wait_for(
            lambda e: e.chainid == event.chainid, topic=topics.IMAGE_READY, timeout=10
        )
    return image, deployed


def containers(engine: Any, version: str) -> list[Any]:
    return engine.containers.list(
        filters={"label": [f"bentomesh.model={MODEL}", f"bentomesh.version={version}"]}
    )


async def test_model_is_served_from_a_container_like_in_process(
    mesh: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase], engine: Any
) -> None:
    case = model_cases[MODEL]
    image, deployed = await register_and_wait(kafka, case, "d1")
    assert image.data.backend == "docker"
    assert image.data.image_ref == f"bentomesh/{MODEL}:d1"
    assert deployed.data.runtime == "docker"
    body = {"rows": [dict(zip(FEATURES, map(float, r), strict=True)) for r in case.x_test]}
    response = httpx.post(f"{deployed.data.endpoint_url}/predict_proba", json=body, timeout=60)
    assert response.status_code == 200, response.text
    got = np.array([[p["stays"], p["churns"]] for p in response.json()["probabilities"]])
    np.testing.assert_allclose(got, case.model.predict_proba(case.x_test), rtol=1e-6)
    assert len(containers(engine, "d1")) == 1


def test_container_runs_locked_down(mesh: LocalMesh, engine: Any) -> None:
    [container] = containers(engine, "d1")
    config = container.attrs["Config"]
    host = container.attrs["HostConfig"]
    assert config["User"] == "1034"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 1024 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 512
    assert host["RestartPolicy"]["Name"] == "on-failure"
    assert "/readyz" in " ".join(config["Healthcheck"]["Test"])
    deadline = time.monotonic() + 120
    while container.attrs["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, container.attrs["State"]
        time.sleep(2)
        container.reload()


async def test_second_version_replaces_first_without_failed_requests_and_reuses_layers(
    mesh: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase], engine: Any
) -> None:
    case = model_cases[MODEL]
    url = f"{deployer_of(mesh).url}/models/{MODEL}/predict"
    body = {"rows": [list(map(float, case.x_test[0]))]}
    statuses: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                statuses.append(client.post(url, json=body).status_code)
                time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        image, deployed = await register_and_wait(kafka, case, "d2")
        time.sleep(3)
    finally:
        stop.set()
        poller.join()
    assert deployed.data.replaced_version == "d1"
    assert set(statuses) == {200}, sorted(set(statuses))
    assert containers(engine, "d1") == []
    assert len(containers(engine, "d2")) == 1
    first = engine.images.get(f"bentomesh/{MODEL}:d1").attrs["RootFS"]["Layers"]
    second = engine.images.get(image.data.image_ref).attrs["RootFS"]["Layers"]
    # only the model layers (models and bento) differ: the dependency layer is reused
    assert first[:-2] == second[:-2]
    assert first[-2:] != second[-2:]


async def test_redelivered_image_ready_starts_no_second_container(
    mesh: LocalMesh, kafka: KafkaSettings, engine: Any
) -> None:
    async with Collector(kafka) as collector:
        image = await collector.wait_for(
            lambda e: e.data.model_name == MODEL and e.data.model_version == "d2",
            topic=topics.IMAGE_READY,
        )
        await send_signed(image, kafka)
        deadline = time.monotonic() + 60
        while len([e for e in collector.events(topics.DEPLOYED) if e.causationid == image.id]) < 2:
            assert time.monotonic() < deadline
            await collector.poll()
    assert len(containers(engine, "d2")) == 1


def test_a_stopped_container_is_restarted_by_supervision(mesh: LocalMesh, engine: Any) -> None:
    """`docker stop` of a model: the deployer's supervision removes the stopped container
    (which holds the name) and starts the deployment again; the model answers again."""
    [container] = containers(engine, "d2")
    container.stop(timeout=5)
    deployer = deployer_of(mesh)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        running = [c for c in containers(engine, "d2") if c.status == "running"]
        if running and running[0].id != container.id:
            break
        time.sleep(1)
    else:
        raise AssertionError("the stopped container was not replaced within 90 s")
    rows = httpx.get(f"{deployer.url}/deployments?model={MODEL}", timeout=10).json()
    active = next(r for r in rows if r["status"] == "active")
    assert "restart failed" not in (active["detail"] or "")
    body = {"rows": [[0.0] * 5]}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.post(f"{deployer.url}/models/{MODEL}/predict", json=body, timeout=30)
        if response.status_code == 200:
            break
        time.sleep(1)
    assert response.status_code == 200, response.text


async def test_an_image_the_builder_did_not_build_is_never_run(
    mesh: LocalMesh, kafka: KafkaSettings, engine: Any
) -> None:
    """Signed by the builder's key but naming the base image (on the engine, not under the
    prefix) or an id the engine lacks: refused before any container is created or image pulled."""
    from bentomesh_contracts import ImageReady, follow_up
    from bentomesh_contracts.events import DeploymentPrefs

    base = engine.images.get("bentomesh/python:3.11").id
    cause = new_chain(register_case_for(MODEL, "outside"), source="test")
    images = [
        follow_up(
            cause,
            ImageReady(
                model_name=MODEL,
                model_version="outside",
                bento_tag=f"{MODEL}:outside",
                backend="docker",
                image_ref=f"bentomesh/{MODEL}:outside",
                image_digest=digest,
                size_bytes=1,
                build_seconds=0.0,
                deployment=DeploymentPrefs(runtime="docker"),
            ),
            source="bentomesh/builder",
            key=digest,
        )
        for digest in (base, "sha256:" + "e" * 64)
    ]
    before = {c.id for c in engine.containers.list(all=True)}
    async with Collector(kafka) as collector:
        for image in images:
            await send_signed(image, kafka)
        reasons = [
            (
                await collector.wait_for(
                    lambda e, i=image: e.causationid == i.id, topic=topics.STAGE_FAILED
                )
            ).data
            for image in images
        ]
    assert [r.error_type for r in reasons] == ["NotBuiltHere", "NotBuiltHere"]
    assert "not tagged" in reasons[0].reason
    assert "not on this engine, and no registry to pull it from" in reasons[1].reason
    assert {c.id for c in engine.containers.list(all=True)} == before


def register_case_for(model: str, version: str) -> Any:
    from bentomesh_contracts import ModelRegistered
    from bentomesh_contracts.features import Feature

    return ModelRegistered(
        model_name=model,
        model_version=version,
        task="classification",
        artifact_uri="/x",
        artifact_sha256="a" * 64,
        features=[Feature(name="x")],
    )
