"""A mesh with a signing key: the packager admits signed registrations only, and refuses the
others before reading any artifact. Its own broker: a second packager must not join the shared
one's consumer group."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bentomesh_contracts import new_chain, topics
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import send_event, signed
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.integration.conftest import register_case
from tests.kafka_helpers import Collector
from tests.models import ModelCase

pytestmark = pytest.mark.integration

KEY = "signing-key-of-the-tests"


@pytest.fixture(scope="module")
def signed_mesh(session_home: Path) -> Iterator[KafkaSettings]:
    with EmbeddedBroker(log_path=session_home / "broker-signed.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        asyncio.run(ensure_topics(kafka, partitions=1))
        mesh = LocalMesh(
            kafka,
            RuntimeSettings(home=session_home / "mesh-signed"),
            services=tuple(s for s in SERVICES if s.name == "packager"),
            free_ports=True,
            extra_env={"BENTOMESH_SIGNING_KEY": KEY},
        )
        mesh.start(timeout=120)
        try:
            yield kafka
        finally:
            mesh.stop()


async def test_unsigned_and_wrongly_signed_registrations_are_refused_before_any_read(
    signed_mesh: KafkaSettings, model_cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    # The artifact does not exist: had the packager read it, the error would say so.
    missing = register_case(model_cases["sklearn-classifier"], version="sig0")
    missing = missing.model_copy(update={"artifact_uri": str(tmp_path / "nowhere.joblib")})  # type: ignore[attr-defined]
    unsigned = new_chain(missing, source="test")
    wrong = signed(new_chain(missing, source="test"), "not the mesh's key")
    async with Collector(signed_mesh) as collector:
        for event in (unsigned, wrong):
            await send_event(event, signed_mesh)
        for event, reason in ((unsigned, "unsigned"), (wrong, "invalid signature")):
            failed = await collector.wait_for(
                lambda e, ev=event: e.causationid == ev.id, topic=topics.STAGE_FAILED, timeout=60
            )
            assert failed.data.error_type == "Unauthorized"
            assert reason in failed.data.reason
            assert not failed.data.retryable


async def test_signed_registration_is_packaged(
    signed_mesh: KafkaSettings, model_cases: dict[str, ModelCase]
) -> None:
    data = register_case(model_cases["sklearn-classifier"], version="sig1")
    event = signed(new_chain(data, source="test"), KEY)  # type: ignore[arg-type]
    async with Collector(signed_mesh) as collector:
        await send_event(event, signed_mesh)
        built = await collector.wait_for(
            lambda e: e.causationid == event.id, topic=topics.BENTO_BUILT, timeout=180
        )
    assert built.data.bento_tag == "sklearn-classifier:sig1"
