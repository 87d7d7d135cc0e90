"""Each stage service as its composition root builds it (``create_app``), driven in memory by
FastStream's ``TestKafkaBroker`` with its I/O replaced at the seams: no broker, no builds, no
engine. The same apps run against the real broker in tests/integration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from bentomesh_contracts import (
    BentoBuilt,
    DeploymentPrefs,
    Feature,
    ImageReady,
    ModelRegistered,
    decode,
    encode,
    follow_up,
    new_chain,
    topics,
)
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.keys import SigningSettings
from services.builder.app import create_app as create_builder
from services.builder.settings import BuilderSettings
from services.deployer.app import create_app as create_deployer
from services.deployer.rollout import Deployer, RolloutSettings
from services.deployer.settings import DeployerSettings
from services.deployer.state import DeploymentStore
from services.errors import DigestMismatch
from services.packager.app import create_app as create_packager
from services.packager.pipeline import PackagedBento
from services.packager.settings import PackagerSettings
from tests.fakes import MemoryRuntime
from tests.kafka_helpers import signed_as


def registration(version: str = "1") -> CloudEvent[ModelRegistered]:
    data = ModelRegistered(
        model_name="churn",
        model_version=version,
        task="classification",
        artifact_uri="file:///artifacts/churn.joblib",
        artifact_sha256="a" * 64,
        features=[Feature(name="tenure")],
        deployment=DeploymentPrefs(runtime="process"),
    )
    return new_chain(data, source="test")


def built_from(event: CloudEvent[ModelRegistered]) -> BentoBuilt:
    return BentoBuilt(
        model_name=event.data.model_name,
        model_version=event.data.model_version,
        framework="sklearn",
        task="classification",
        bento_tag=f"churn:{event.data.model_version}",
        model_tag=f"churn:{event.data.model_version}",
        template="classification",
        bento_path="/bentos/churn",
        size_bytes=1,
        build_seconds=0.1,
        deployment=event.data.deployment,
    )


def collect(broker: KafkaBroker, *topic_names: str) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {t: [] for t in topic_names}

    def recorder(into: list[Any]) -> Any:
        def record(msg: KafkaMessage) -> None:
            into.append(decode(msg.body))

        return record

    for name in topic_names:
        broker.subscriber(name)(recorder(seen[name]))
    return seen


async def test_packager_app_publishes_bento_built_from_its_package_seam() -> None:
    calls: list[str] = []

    def package(data: ModelRegistered, **_: Any) -> PackagedBento:
        calls.append(data.model_version)
        if data.model_version == "bad":
            raise DigestMismatch("artifact digest differs")
        return PackagedBento(built_from(new_chain(data, source="t")), reused=False)

    app = create_packager(PackagerSettings(), package=package)
    assert app.broker is not None
    seen = collect(app.broker, topics.BENTO_BUILT, topics.STAGE_FAILED)
    async with TestKafkaBroker(app.broker) as broker:
        for version in ("1", "bad"):
            event = signed_as("training", registration(version))
            await broker.publish(encode(event), topics.MODEL_REGISTERED)
    assert calls == ["1", "bad"]
    [built] = seen[topics.BENTO_BUILT]
    assert built.data.bento_tag == "churn:1"
    [failed] = seen[topics.STAGE_FAILED]
    assert (failed.data.stage, failed.data.error_type) == ("packager", "DigestMismatch")


async def test_builder_app_hands_over_the_bento_when_no_engine_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path))
    (tmp_path / "bentos" / "churn" / "1").mkdir(parents=True)
    (tmp_path / "bentos" / "churn" / "1" / "bento.yaml").write_text("service: x\n")
    builds: list[str] = []

    def build(built: BentoBuilt, settings: BuilderSettings) -> ImageReady:
        builds.append(built.bento_tag)
        raise AssertionError("no image is built without an engine")

    app = create_builder(BuilderSettings(), engine_up=lambda _host: False, build=build)
    assert app.broker is not None
    seen = collect(app.broker, topics.IMAGE_READY, topics.STAGE_FAILED)
    built = follow_up(registration(), built_from(registration()), source="bentomesh/packager")
    cause = signed_as("packager", built)
    elsewhere = built.model_copy(
        update={"data": built.data.model_copy(update={"bento_tag": "x:9"})}
    )
    async with TestKafkaBroker(app.broker) as broker:
        await broker.publish(encode(cause), topics.BENTO_BUILT)
        await broker.publish(encode(signed_as("packager", elsewhere)), topics.BENTO_BUILT)
    [refused] = seen[topics.STAGE_FAILED]
    assert refused.data.error_type == "NotBuiltHere"
    [ready] = seen[topics.IMAGE_READY]
    assert (ready.data.backend, ready.data.bento_tag) == ("process", "churn:1")
    assert ready.causationid == cause.id
    assert builds == []


def deployer_app(tmp_path: Path, runtime: MemoryRuntime) -> Any:
    """The deployer service on an in-memory runtime (its store a real SQLite file)."""
    deployer = Deployer(
        DeploymentStore(tmp_path / "state.db"),
        {"process": runtime},
        RolloutSettings(ready_timeout_s=1, drain_s=0),
    )
    return create_deployer(DeployerSettings(home=tmp_path), deployer=deployer)


def churn_image() -> ImageReady:
    return ImageReady(
        model_name="churn",
        model_version="1",
        bento_tag="churn:1",
        backend="process",
        size_bytes=1,
        build_seconds=0.0,
        deployment=DeploymentPrefs(runtime="process"),
    )


async def test_deployer_app_deploys_through_its_runtime_seam(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    app = deployer_app(tmp_path, runtime)
    seen = collect(app.broker, topics.DEPLOYED)
    image = churn_image()
    cause = signed_as("builder", follow_up(registration(), image, source="bentomesh/builder"))
    async with TestKafkaBroker(app.broker) as broker:
        await broker.publish(encode(cause), topics.IMAGE_READY)
        await broker.publish(encode(cause), topics.IMAGE_READY)  # redelivered
    first, again = seen[topics.DEPLOYED]
    assert first.data.endpoint_url == "http://127.0.0.1:9001"
    assert again.id == first.id  # the same follow-up id: receivers drop the duplicate
    assert len(runtime.running) == 1  # the redelivery deployed nothing twice


async def test_deployer_app_acts_only_on_what_the_builder_signed(tmp_path: Path) -> None:
    runtime = MemoryRuntime()
    app = deployer_app(tmp_path, runtime)
    seen = collect(app.broker, topics.DEPLOYED, topics.STAGE_FAILED)
    letters: list[Any] = []
    app.broker.subscriber(topics.DEAD_LETTER)(lambda msg: letters.append(msg))
    image = churn_image()
    forged = follow_up(registration(), image, source="bentomesh/builder")
    by_packager = forged.model_copy(
        update={"signature": SigningSettings().keys.signer("packager").signature_of(encode(forged))}
    )
    async with TestKafkaBroker(app.broker) as broker:
        await broker.publish(encode(forged), topics.IMAGE_READY)  # unsigned
        await broker.publish(encode(by_packager), topics.IMAGE_READY)  # a producer that may not
    assert runtime.running == set()
    assert seen[topics.DEPLOYED] == []
    reasons = [f.data.reason for f in seen[topics.STAGE_FAILED]]
    assert [f.data.error_type for f in seen[topics.STAGE_FAILED]] == ["Unauthorized"] * 2
    assert "unsigned" in reasons[0]
    assert "packager may not emit" in reasons[1]
    assert len(letters) == 2
