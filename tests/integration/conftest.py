"""Built and served bentos, one per model kind per session (builds are the slow part)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from bentomesh_contracts import Deployed, ModelRegistered, follow_up, new_chain
from bentomesh_contracts.features import Feature
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered
from services.mesh.local import LocalMesh
from services.packager.pipeline import PackagedBento, package
from services.registry import SERVICES
from services.runtime.bento_server import LocalBentoServer
from services.runtime.settings import RuntimeSettings
from tests.model_server import ModelServer
from tests.models import ALL_KINDS, FEATURES, ModelCase, make_case


@pytest.fixture(scope="session")
def model_cases(artifact_root: Path) -> dict[str, ModelCase]:
    return {kind: make_case(kind, artifact_root / "cases") for kind in ALL_KINDS}


def register_case(case: ModelCase, version: str = "1", **overrides: object) -> object:
    fields: dict[str, object] = {
        "name": case.kind,
        "version": version,
        "task": case.task,
        # declared strictly: these kinds test that what a registration refuses is refused
        "features": [{"name": name, "allow_nan": False} for name in FEATURES],
        "calibration_path": case.calibration,
        "class_labels": case.class_labels,
    }
    fields.update(overrides)
    return build_model_registered(case.path, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def built_bentos(model_cases: dict[str, ModelCase]) -> dict[str, PackagedBento]:
    return {
        kind: package(register_case(case), chain_id=f"test-{kind}")  # type: ignore[arg-type]
        for kind, case in model_cases.items()
    }


@contextmanager
def serving(
    built: dict[str, PackagedBento], session_home: Path
) -> Iterator[dict[str, LocalBentoServer]]:
    """Every bento served at once (started together, ready in parallel), stopped on exit."""
    servers = {
        kind: LocalBentoServer(b.built.bento_tag, log_path=session_home / f"serve-{kind}.log")
        for kind, b in built.items()
    }
    for server in servers.values():
        server.start()
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(lambda s: s.wait_ready(timeout=180), servers.values()))
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def served(
    built_bentos: dict[str, PackagedBento], session_home: Path
) -> Iterator[dict[str, LocalBentoServer]]:
    with serving(built_bentos, session_home) as servers:
        yield servers


@pytest.fixture(scope="session")
def monitor(kafka: KafkaSettings, session_home: Path) -> Iterator[LocalMesh]:
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mesh-monitor"),
        services=tuple(s for s in SERVICES if s.name == "monitor"),
        free_ports=True,
        extra_env={
            "BENTOMESH_MONITOR_INTERVAL_S": "0.5",
            # fed by the tests' Deployed events alone: no deployer says what serves
            "BENTOMESH_MONITOR_SYNC_S": "0",
            "BENTOMESH_MONITOR_TARGETS_FILE": str(session_home / "mesh-monitor" / "models.json"),
        },
    )
    local.start(timeout=60)
    yield local
    local.stop()


def deployed_event(server: ModelServer, model: str, version: str, replaced: str | None = None):  # type: ignore[no-untyped-def]
    return registered_and_deployed(server, model, version, replaced)[1]


def registered_and_deployed(  # type: ignore[no-untyped-def]
    server: ModelServer, model: str, version: str, replaced: str | None = None
):
    """A ``ModelRegistered`` and the ``Deployed`` that ends its chain, at ``server``."""
    cause = new_chain(
        ModelRegistered(
            model_name=model,
            model_version=version,
            task="classification",
            artifact_uri="/x",
            artifact_sha256="a" * 64,
            features=[Feature(name="x")],
        ),
        source="test",
    )
    data = Deployed(
        deployment_id=f"{model}-{version}-{uuid.uuid4().hex[:6]}",
        model_name=model,
        model_version=version,
        runtime="process",
        endpoint_url=server.url,
        replaced_deployment_id=replaced,
    )
    return cause, follow_up(cause, data, source="test")
