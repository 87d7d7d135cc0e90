"""A writer on the broker without the mesh's keys: nothing it publishes is read, built, run or
fetched, and every refusal is recorded (dead letter with the reason, and a StageFailed where a
stage refused). Its own broker and mesh: the stages must not join the shared consumer groups."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bentomesh_contracts import (
    BentoBuilt,
    Deployed,
    ImageReady,
    ModelRegistered,
    follow_up,
    new_chain,
    topics,
)
from bentomesh_contracts.events import DeploymentPrefs
from bentomesh_contracts.features import Feature
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.keys import SigningSettings
from bentomesh_contracts.publish import send_event
from bentomesh_contracts.signing import Signer
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.dead_letter import HEADER_PREFIX
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.integration.conftest import register_case
from tests.kafka_helpers import Collector, send_signed
from tests.models import ModelCase

pytestmark = pytest.mark.integration

ATTACKER = Signer("builder", Ed25519PrivateKey.generate())  # a key the mesh never trusted


@pytest.fixture(scope="module")
def guarded(session_home: Path) -> Iterator[KafkaSettings]:
    with EmbeddedBroker(log_path=session_home / "broker-forged.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        asyncio.run(ensure_topics(kafka, partitions=1))
        mesh = LocalMesh(
            kafka,
            RuntimeSettings(home=session_home / "mesh-forged"),
            free_ports=True,
            extra_env={
                "BENTOMESH_RUNTIME": "process",
                "BENTOMESH_MONITOR_INTERVAL_S": "0.3",
                "BENTOMESH_MONITOR_SYNC_S": "0",  # watched: what Deployed events announce
            },
            services=SERVICES,
        )
        mesh.start(timeout=120)
        try:
            yield kafka
        finally:
            mesh.stop()


class Listener:
    """An HTTP server that counts the requests it gets: what a forged ``Deployed`` points at."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _attacker_registration(model: str, version: str) -> Any:
    """The start of a chain an attacker makes up (unsigned; only its lineage is used)."""
    data = ModelRegistered(
        model_name=model,
        model_version=version,
        task="classification",
        artifact_uri="/x",
        artifact_sha256="a" * 64,
        features=[Feature(name="x")],
    )
    return new_chain(data, source="attacker")


def _serving(argument: str) -> bool:
    for process in psutil.process_iter(["cmdline"]):
        if argument in " ".join(process.info["cmdline"] or []):
            return True
    return False


async def _refused(collector: Collector, event: Any, *, stage: str | None) -> None:
    """The dead letter of ``event`` (and the StageFailed of ``stage``) say why."""
    letter = await collector.wait_for(
        lambda r: event.id.encode() in (r.value or b""), topic=topics.DEAD_LETTER, timeout=60
    )
    headers = {k: v.decode() for k, v in letter.headers}
    assert "refused" in headers[HEADER_PREFIX + "reason"], headers
    if stage is not None:
        failed = await collector.wait_for(
            lambda e: e.causationid == event.id, topic=topics.STAGE_FAILED, timeout=60
        )
        assert failed.data.stage == stage
        assert failed.data.error_type == "Unauthorized"
        assert not failed.data.retryable


async def test_forged_registrations_are_refused_before_the_artifact_is_read(
    guarded: KafkaSettings, model_cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    data = register_case(model_cases["sklearn-classifier"], version="forged")
    data = data.model_copy(update={"artifact_uri": str(tmp_path / "nowhere.joblib")})  # type: ignore[attr-defined]
    unsigned = new_chain(data, source="attacker")  # type: ignore[arg-type]
    other = new_chain(data, source="attacker")  # type: ignore[arg-type]
    stranger = Signer("training", Ed25519PrivateKey.generate()).sign(other)
    async with Collector(guarded) as collector:
        for event in (unsigned, stranger):
            await send_event(event, guarded)
        for event in (unsigned, stranger):
            await _refused(collector, event, stage="packager")
    reasons = [e.data.reason for e in collector.events(topics.STAGE_FAILED)]
    assert any("unsigned" in r for r in reasons)
    assert any("does not trust" in r for r in reasons)


async def test_a_rotated_training_key_is_taken_up_without_a_restart(
    guarded: KafkaSettings, model_cases: dict[str, ModelCase], tmp_path: Path
) -> None:
    keys = SigningSettings().keys
    keys.generate("training")  # the old public key stays trusted; the new one is new to the mesh
    data = register_case(model_cases["sklearn-classifier"], version="rotated")
    data = data.model_copy(update={"artifact_uri": str(tmp_path / "nowhere.joblib")})  # type: ignore[attr-defined]
    event = keys.signer("training").sign(new_chain(data, source="test"))  # type: ignore[arg-type]
    async with Collector(guarded) as collector:
        await send_event(event, guarded)
        failed = await collector.wait_for(
            lambda e: e.causationid == event.id, topic=topics.STAGE_FAILED, timeout=60
        )
    # admitted: it got as far as looking for the artifact
    assert failed.data.error_type != "Unauthorized", failed.data.reason
    assert "nowhere.joblib" in failed.data.reason


async def test_a_forged_image_ready_runs_nothing(guarded: KafkaSettings, tmp_path: Path) -> None:
    cause = _attacker_registration("victim", "9")
    evil = tmp_path / "evil_bento"
    evil.mkdir()

    def image(tag: str, **extra: Any) -> Any:
        data = ImageReady(
            model_name="victim",
            model_version="9",
            bento_tag=tag,
            backend="process",
            size_bytes=1,
            build_seconds=0.0,
            deployment=DeploymentPrefs(runtime="process"),
            **extra,
        )
        return follow_up(cause, data, source="bentomesh/builder", key=tag)  # distinct ids

    unsigned = image(str(evil))
    imported = ATTACKER.sign(image("evil_module:Service"))
    # signed by the real builder, but naming a bento this machine never built: still refused
    not_built = image("victim:9")
    anothers = image("sklearn-classifier:1")  # another model's bento, signed by the builder
    async with Collector(guarded) as collector:
        await send_event(unsigned, guarded)
        await send_event(imported, guarded)
        await send_signed(not_built, guarded)
        await send_signed(anothers, guarded)
        await _refused(collector, unsigned, stage="deployer")
        await _refused(collector, imported, stage="deployer")
        failed = await collector.wait_for(
            lambda e: e.causationid == not_built.id, topic=topics.STAGE_FAILED, timeout=60
        )
        other = await collector.wait_for(
            lambda e: e.causationid == anothers.id, topic=topics.STAGE_FAILED, timeout=60
        )
    assert failed.data.error_type == "NotBuiltHere", failed.data.reason
    assert other.data.error_type == "NotBuiltHere"
    assert "not its own" in other.data.reason
    assert not collector.events(topics.DEPLOYED)
    assert not _serving(str(evil))
    assert not _serving("evil_module:Service")


async def test_a_forged_bento_built_copies_nothing(guarded: KafkaSettings) -> None:
    cause = _attacker_registration("victim", "10")
    forged = follow_up(
        cause,
        BentoBuilt(
            model_name="victim",
            model_version="10",
            framework="sklearn",
            task="classification",
            bento_tag="victim:10",
            features=[Feature(name="x")],
            model_tag="victim:10",
            template="classification",
            bento_path="/etc",
            size_bytes=1,
            build_seconds=0.0,
            deployment=DeploymentPrefs(runtime="docker"),
        ),
        source="bentomesh/packager",
    )
    async with Collector(guarded) as collector:
        await send_event(forged, guarded)
        await _refused(collector, forged, stage="builder")
    assert not [e for e in collector.events(topics.IMAGE_READY) if e.causationid == forged.id]


async def test_a_forged_deployed_is_never_fetched(guarded: KafkaSettings) -> None:
    listener = Listener()
    cause = _attacker_registration("decoy", "1")

    def deployed(deployment_id: str) -> Any:
        data = Deployed(
            deployment_id=deployment_id,
            model_name="decoy",
            model_version="1",
            runtime="process",
            endpoint_url=listener.url,
        )
        return follow_up(cause, data, source="bentomesh/deployer", key=deployment_id)

    forged = deployed("forged-1")
    async with Collector(guarded) as collector:
        await send_event(forged, guarded)
        await _refused(collector, forged, stage=None)
        await asyncio.sleep(2.0)  # several check intervals (0.3 s)
        assert listener.hits == []
        # the same event signed by the deployer is watched: the listener above could fail
        await send_signed(deployed("genuine-1"), guarded)
        for _ in range(100):
            if listener.hits:
                break
            await asyncio.sleep(0.1)
    assert listener.hits
    listener.server.shutdown()
