"""Built and served bentos, one per model kind per session (builds are the slow part)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contracts.publish import build_model_registered
from services.packager.pipeline import PackagedBento, package
from services.serving.local import LocalBentoServer
from tests.models import ALL_KINDS, FEATURES, ModelCase, make_case


@pytest.fixture(scope="session")
def model_cases(artifact_root: Path) -> dict[str, ModelCase]:
    return {kind: make_case(kind, artifact_root / "cases") for kind in ALL_KINDS}


def register_case(case: ModelCase, version: str = "1", **overrides: object) -> object:
    fields: dict[str, object] = {
        "name": case.kind,
        "version": version,
        "task": case.task,
        "features": FEATURES,
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


@pytest.fixture(scope="session")
def served(
    built_bentos: dict[str, PackagedBento], session_home: Path
) -> Iterator[dict[str, LocalBentoServer]]:
    servers = {
        kind: LocalBentoServer(b.built.bento_tag, log_path=session_home / f"serve-{kind}.log")
        for kind, b in built_bentos.items()
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
