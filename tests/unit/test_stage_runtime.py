"""The stage pipeline in memory (TestKafkaBroker): follow-ups, failures, dead letters."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from bentomesh_contracts import (
    BentoBuilt,
    Feature,
    ModelRegistered,
    decode,
    encode,
    new_chain,
    topics,
)
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.kafka import KafkaSettings
from services.errors import StageError
from services.runtime.broker import create_broker
from services.runtime.dead_letter import dlq_headers
from services.runtime.stage import StageSpec, stage_router
from services.runtime.trust import Trust


class Refused(StageError):
    error_type = "Refused"


def registered(version: str) -> CloudEvent[ModelRegistered]:
    data = ModelRegistered(
        model_name="m",
        model_version=version,
        task="classification",
        artifact_uri="/x",
        artifact_sha256="a" * 64,
        features=[Feature(name="f")],
    )
    return new_chain(data, source="test")


async def fake_packager(event: CloudEvent[ModelRegistered]) -> BentoBuilt:
    if event.data.model_version == "refused":
        raise Refused("no thanks", details="log tail")
    if event.data.model_version == "bug":
        raise RuntimeError("boom")
    return BentoBuilt(
        model_name=event.data.model_name,
        model_version=event.data.model_version,
        framework="sklearn",
        task="classification",
        bento_tag="m:1",
        model_tag="m:1",
        template="classification",
        bento_path="/b",
        size_bytes=1,
        build_seconds=0.0,
        deployment=event.data.deployment,
    )


@pytest.fixture
def wired() -> tuple[KafkaBroker, dict[str, list[Any]]]:
    broker = create_broker(KafkaSettings(), service="packager")
    spec = StageSpec("packager", ModelRegistered, BentoBuilt, fake_packager)
    trust = Trust.insecure("packager")  # signatures: tests/unit/test_stage_apps.py
    broker.include_router(stage_router(spec, broker_ref=lambda: broker, trust=trust))
    seen: dict[str, list[Any]] = {"built": [], "failed": [], "dlq": []}

    @broker.subscriber(topics.BENTO_BUILT)
    async def built(msg: KafkaMessage) -> None:
        seen["built"].append(decode(msg.body))

    @broker.subscriber(topics.STAGE_FAILED)
    async def failed(msg: KafkaMessage) -> None:
        seen["failed"].append(decode(msg.body))

    @broker.subscriber(topics.DEAD_LETTER)
    async def dead(msg: KafkaMessage) -> None:
        seen["dlq"].append((msg.body, dlq_headers(msg.headers)))

    return broker, seen


async def test_handler_result_is_published_as_the_follow_up(wired: Any) -> None:
    broker, seen = wired
    cause = registered("1")
    async with TestKafkaBroker(broker) as br:
        await br.publish(encode(cause), topics.MODEL_REGISTERED)
    [built] = seen["built"]
    assert built.causationid == cause.id
    assert built.chainid == cause.chainid
    assert built.data.model_version == "1"


async def test_stage_error_becomes_one_stage_failed_naming_the_cause(wired: Any) -> None:
    broker, seen = wired
    cause = registered("refused")
    async with TestKafkaBroker(broker) as br:
        await br.publish(encode(cause), topics.MODEL_REGISTERED)
    [failed] = seen["failed"]
    assert failed.data.error_type == "Refused"
    assert failed.data.reason == "no thanks"
    assert failed.data.details == "log tail"
    assert failed.data.failed_event_id == cause.id
    assert seen["built"] == []


async def test_unexpected_error_is_reported_not_raised(wired: Any) -> None:
    broker, seen = wired
    async with TestKafkaBroker(broker) as br:
        await br.publish(encode(registered("bug")), topics.MODEL_REGISTERED)
        await br.publish(encode(registered("2")), topics.MODEL_REGISTERED)
    [failed] = seen["failed"]
    assert failed.data.error_type == "RuntimeError"
    assert "boom" in failed.data.reason
    assert [e.data.model_version for e in seen["built"]] == ["2"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00garbage", "not JSON"),
        (b'{"specversion": "1.0"}', "'id': Field required"),
        (encode(registered("1")).replace(b'"m"', b'"M M"'), "data.model_name"),
    ],
)
async def test_unreadable_record_is_dead_lettered_with_reason(
    wired: Any, raw: bytes, reason: str
) -> None:
    broker, seen = wired
    async with TestKafkaBroker(broker) as br:
        await br.publish(raw, topics.MODEL_REGISTERED, key=b"k")
        await br.publish(encode(registered("2")), topics.MODEL_REGISTERED)
    [(body, headers)] = seen["dlq"]
    assert body == raw
    assert reason in headers["reason"]
    assert headers["service"] == "packager"
    assert headers["source-topic"] == topics.MODEL_REGISTERED
    assert [e.data.model_version for e in seen["built"]] == ["2"]


def test_a_long_build_never_outlasts_the_poll_interval() -> None:
    """The builder may build for 30 minutes (and retry): its consumer must not be declared dead
    meanwhile, or a rebalance hands the same event to a second consumer."""
    from services.builder.service import builder_stage
    from services.builder.settings import BuilderSettings
    from services.runtime.settings import RuntimeSettings
    from services.runtime.stage import poll_interval_ms

    runtime = RuntimeSettings()
    spec = builder_stage(BuilderSettings(build_timeout_s=1800))
    interval_s = poll_interval_ms(spec, runtime) / 1000
    assert interval_s >= 1800 * runtime.retry_attempts
    quick = StageSpec("packager", ModelRegistered, BentoBuilt, fake_packager)
    assert poll_interval_ms(quick, runtime) == runtime.max_poll_interval_ms
