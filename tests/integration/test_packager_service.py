"""The packager as its own process on the real broker: events in, events out, never stuck."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bentomesh_contracts import encode, new_chain, topics
from bentomesh_contracts.kafka import KafkaSettings
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.dead_letter import dlq_headers
from services.runtime.settings import RuntimeSettings
from tests.integration.conftest import register_case
from tests.kafka_helpers import Collector, produce_raw, send_signed
from tests.models import ModelCase

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def packager(kafka: KafkaSettings, session_home: Path) -> Iterator[LocalMesh]:
    mesh = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mesh"),
        services=tuple(s for s in SERVICES if s.name == "packager"),
        free_ports=True,
    )
    mesh.start(timeout=120)
    yield mesh
    mesh.stop()


async def test_registered_model_comes_out_as_built_bento_and_redelivery_builds_nothing(
    packager: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase]
) -> None:
    event = new_chain(
        register_case(model_cases["sklearn-classifier"], version="svc1"),  # type: ignore[arg-type]
        source="test",
    )
    async with Collector(kafka) as collector:
        await send_signed(event, kafka)
        built = await collector.wait_for(
            lambda e: e.causationid == event.id, topic=topics.BENTO_BUILT
        )
        assert built.data.bento_tag == "sklearn-classifier:svc1"
        assert built.chainid == event.chainid
        # the same event delivered again: same follow-up id, the bento is reused, not rebuilt
        await send_signed(event, kafka)
        await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + 60
        while (
            len([e for e in collector.events(topics.BENTO_BUILT) if e.causationid == event.id]) < 2
        ):
            assert asyncio.get_running_loop().time() < deadline
            await collector.poll()
        first, second = [
            e for e in collector.events(topics.BENTO_BUILT) if e.causationid == event.id
        ]
        assert first.id == second.id
        assert second.data.bento_path == first.data.bento_path
        assert second.data.build_seconds < first.data.build_seconds


def _bad_registrations(
    cases: dict[str, ModelCase], root: Path, outside: Path
) -> list[tuple[str, object]]:
    clf = cases["sklearn-classifier"]
    base = register_case(clf, version="bad")
    unloadable = root / "garbage.joblib"
    unloadable.write_bytes(os.urandom(256))
    not_a_model = root / "dict.joblib"
    import joblib

    joblib.dump({"weights": [1, 2, 3]}, not_a_model)
    outside_file = outside / "model.joblib"
    outside_file.write_bytes(clf.path.read_bytes())
    from bentomesh_contracts.publish import sha256_file

    def variant(**update: object) -> object:
        return base.model_copy(update=update)  # type: ignore[attr-defined]

    return [
        ("DigestMismatch", variant(model_version="bad-digest", artifact_sha256="0" * 64)),
        (
            "PathNotAllowed",
            variant(
                model_version="bad-root",
                artifact_uri=outside_file.as_uri(),
                artifact_sha256=sha256_file(outside_file),
            ),
        ),
        (
            "PathNotAllowed",
            variant(
                model_version="bad-dotdot",
                artifact_uri=f"{root}/../../{outside_file.relative_to('/')}",
            ),
        ),
        (
            "ArtifactMissing",
            variant(model_version="bad-missing", artifact_uri=str(root / "nope.joblib")),
        ),
        (
            "UnloadableArtifact",
            variant(
                model_version="bad-bytes",
                artifact_uri=str(unloadable),
                artifact_sha256=sha256_file(unloadable),
            ),
        ),
        (
            "UnknownFramework",
            variant(
                model_version="bad-fw",
                artifact_uri=str(not_a_model),
                artifact_sha256=sha256_file(not_a_model),
            ),
        ),
        ("TaskMismatch", variant(model_version="bad-task", task="regression", calibration=None)),
        ("FeatureCountMismatch", variant(model_version="bad-features", features=base.features[:3])),  # type: ignore[attr-defined]
        ("InvalidRegistration", variant(model_version="bad-labels", class_labels=("a", "b", "c"))),
    ]


async def test_every_bad_input_yields_one_stage_failed_naming_the_cause(
    packager: LocalMesh,
    kafka: KafkaSettings,
    model_cases: dict[str, ModelCase],
    artifact_root: Path,
    tmp_path: Path,
) -> None:
    cases = _bad_registrations(model_cases, artifact_root, tmp_path)
    events = [(error, new_chain(data, source="test")) for error, data in cases]  # type: ignore[arg-type]
    async with Collector(kafka) as collector:
        for _, event in events:
            await send_signed(event, kafka)
        for error, event in events:
            failed = await collector.wait_for(
                lambda e, ev=event: e.causationid == ev.id, topic=topics.STAGE_FAILED, timeout=60
            )
            assert failed.data.error_type == error, failed.data
            assert failed.data.stage == "packager"
            assert failed.data.retryable is False
            assert failed.data.model_version == event.data.model_version
        assert not [
            e
            for e in collector.events(topics.BENTO_BUILT)
            if e.chainid in {ev.chainid for _, ev in events}
        ]


async def test_malformed_message_is_dead_lettered_and_the_next_one_is_processed(
    packager: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase]
) -> None:
    good = new_chain(
        register_case(model_cases["sklearn-classifier"], version="svc1"),  # type: ignore[arg-type]
        source="test",
    )
    async with Collector(kafka) as collector:
        await produce_raw(kafka, topics.MODEL_REGISTERED, b'{"specversion": "1.0", "oops', b"k1")
        broken = encode(good).replace(b'"task":"classification"', b'"task":"clustering"')
        await produce_raw(kafka, topics.MODEL_REGISTERED, broken, b"k2")
        await send_signed(good, kafka)
        built = await collector.wait_for(
            lambda e: e.causationid == good.id, topic=topics.BENTO_BUILT
        )
        assert built.data.model_version == "svc1"
        not_json = await collector.wait_for(lambda r: r.key == b"k1", topic=topics.DEAD_LETTER)
        assert not_json.value == b'{"specversion": "1.0", "oops'
        assert "not JSON" in dlq_headers(not_json.headers)["reason"]
        invalid = await collector.wait_for(lambda r: r.key == b"k2", topic=topics.DEAD_LETTER)
        headers = dlq_headers(invalid.headers)
        assert headers["field"] == "data.task"
        assert headers["service"] == "packager"
        assert headers["source-topic"] == topics.MODEL_REGISTERED
        assert invalid.value == broken


def test_packager_exposes_metrics_and_health(packager: LocalMesh) -> None:
    import httpx

    [proc] = packager.processes
    assert httpx.get(f"{proc.url}/healthz", timeout=10).status_code == 204
    metrics = httpx.get(f"{proc.url}/metrics", timeout=10).text
    assert "bentomesh_stage_events_total" in metrics
    assert "faststream_received_messages_total" in metrics


def test_register_outside_the_roots_fails_in_the_terminal_naming_the_variable(
    packager: LocalMesh, kafka: KafkaSettings, tmp_path: Path, model_cases: dict[str, ModelCase]
) -> None:
    """The quick-start trap: the mesh started without the user's directory in its roots. The
    user's own terminal says so, with the variable to set, and exits 1."""
    import os
    import subprocess
    import sys

    outside = tmp_path / "churn.joblib"
    outside.write_bytes(model_cases["sklearn-classifier"].path.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "register", "--model-path", str(outside),
         "--model", "outside-roots", "--version", "1", "--task", "classification",
         "--features", "a,b,c,d", "--timeout", "120"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, **kafka.as_env()},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "packager failed" in result.stderr
    assert "BENTOMESH_ARTIFACT_ROOTS" in result.stderr
    assert "Traceback" not in result.stderr
