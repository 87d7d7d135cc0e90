"""Images through a real registry (Debian's docker-registry, htpasswd authentication): the
builder pushes and pins each image by digest, a deployer whose engine lacks the image pulls
it by that digest from the mesh's registry only, checks it is the image the builder built, and
serves it. Wrong credentials are a clear failure on either side."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bentomesh_contracts.events import ImageReady
from services.builder.backend import docker_available
from services.builder.docker_image import build_image
from services.builder.settings import BuilderSettings
from services.deployer.docker_runtime import DockerRuntime
from services.deployer.settings import DeployerSettings
from services.deployer.state import Deployment
from services.errors import ImagePullFailed, ImagePushFailed, NotBuiltHere
from services.packager.pipeline import PackagedBento, package
from services.runtime.ports import free_port
from tests.integration.conftest import register_case
from tests.integration.registry_server import PASSWORD, USER, start_registry
from tests.models import FEATURES, ModelCase

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not docker_available():
        pytest.fail("no Docker engine: .ci/run must install docker.io and start dockerd")
    port = free_port()
    process = start_registry(tmp_path_factory.mktemp("registry"), "127.0.0.1", port)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def builder(registry: str, password: str = PASSWORD) -> BuilderSettings:
    return BuilderSettings(
        registry=registry,
        registry_username=USER,
        registry_password=password,  # type: ignore[arg-type]
    )


def deployer(tmp: Path, registry: str | None, password: str = PASSWORD) -> DockerRuntime:
    return DockerRuntime(
        DeployerSettings(
            home=tmp,
            registry=registry,
            registry_username=USER,
            registry_password=password,  # type: ignore[arg-type]
        )
    )


@pytest.fixture(scope="module")
def bento(model_cases: dict[str, ModelCase]) -> PackagedBento:
    return package(register_case(model_cases["sklearn-classifier"]), chain_id="test-registry")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pushed(registry: str, bento: PackagedBento) -> ImageReady:
    from services.builder.base_image import build_base_image

    build_base_image()  # no-op when it exists (CI builds it before the tests)
    return build_image(bento.built, builder(registry))


def test_the_builder_pushes_and_pins_the_image_by_digest(registry: str, pushed: ImageReady) -> None:
    repository, _, digest = (pushed.image_ref or "").partition("@")
    assert repository == f"{registry}/bentomesh/sklearn-classifier"
    assert digest.startswith("sha256:")
    manifest = f"http://{registry}/v2/bentomesh/sklearn-classifier/manifests/{digest}"
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    assert httpx.get(manifest, headers=accept).status_code == 401  # the registry wants a login
    found = httpx.get(manifest, headers=accept, auth=(USER, PASSWORD))
    assert found.status_code == 200
    assert found.headers["docker-content-digest"] == digest


def test_a_wrong_password_is_a_push_failure_that_says_so(
    registry: str, bento: PackagedBento, pushed: ImageReady
) -> None:
    with pytest.raises(ImagePushFailed, match=r"(?i)unauthorized|authentication"):
        build_image(bento.built, builder(registry, "wrong"))


def test_a_deployer_pulls_by_digest_only_from_its_registry_and_serves_it(
    registry: str, pushed: ImageReady, tmp_path: Path, model_cases: dict[str, ModelCase]
) -> None:
    runtime = deployer(tmp_path, registry)
    runtime.client.images.remove(pushed.image_digest, force=True)  # as on another engine
    with pytest.raises(NotBuiltHere, match="BENTOMESH_REGISTRY is unset"):
        deployer(tmp_path, None).pinned(pushed)
    with pytest.raises(ImagePullFailed, match=r"(?i)unauthorized|authentication"):
        deployer(tmp_path, registry, "wrong").pinned(pushed)
    elsewhere = pushed.model_copy(
        update={"image_ref": "127.0.0.1:1/bentomesh/x@sha256:" + "0" * 64}
    )
    with pytest.raises(NotBuiltHere, match=r"nor in 127\.0\.0\.1"):
        runtime.pinned(elsewhere)  # a registry the mesh does not use is never pulled from

    image_id = runtime.pinned(pushed)
    assert image_id == pushed.image_digest  # the very image the builder built
    now = time.time()
    deployment = Deployment(
        id=f"registry-{uuid.uuid4().hex[:6]}",
        model="sklearn-classifier",
        version="1",
        runtime="docker",
        ref=image_id,
        status="starting",
        endpoint=None,
        handle=None,
        chain_id="test",
        cause_id="test",
        replaced_id=None,
        detail=None,
        cpus=1.0,
        memory_mb=1024,
        created_at=now,
        updated_at=now,
    )
    started = runtime.start(deployment)
    try:
        runtime.wait_ready(started, 180)
        case = model_cases["sklearn-classifier"]
        rows = [dict(zip(FEATURES, map(float, r), strict=True)) for r in case.x_test[:3]]
        answer: Any = httpx.post(f"{started.endpoint}/predict", json={"rows": rows}, timeout=30)
        assert answer.status_code == 200
        assert len(answer.json()["labels"]) == 3
    finally:
        runtime.stop(started.handle)
