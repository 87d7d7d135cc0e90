"""Shared fixtures: one isolated BentoML/BentoMesh home and one real broker per test session."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# BentoML reads BENTOML_HOME when it is imported: isolate the session before anything imports it.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="bentomesh-tests-"))
os.environ["BENTOML_HOME"] = str(_SESSION_HOME / "bentoml")
os.environ["BENTOMESH_HOME"] = str(_SESSION_HOME / "mesh")
os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(_SESSION_HOME / "artifacts")
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
(_SESSION_HOME / "artifacts").mkdir(parents=True, exist_ok=True)

from bentomesh_contracts.kafka import KafkaSettings  # noqa: E402
from bentomesh_contracts.keys import SigningSettings  # noqa: E402
from services.runtime.control import ControlSettings  # noqa: E402
from services.runtime.embedded_broker import EmbeddedBroker  # noqa: E402
from services.runtime.topics import ensure_topics  # noqa: E402

# Every producer's signing key, as `bentomesh up` makes them on first start: the mesh runs signed.
SigningSettings().keys.ensure()
ControlSettings().ensure_token()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("BENTOMESH_KEEP_TEST_HOME") != "1":
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def artifact_root(session_home: Path) -> Path:
    return session_home / "artifacts"


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu) with the mesh topics, shared by the session."""
    with EmbeddedBroker(log_path=_SESSION_HOME / "broker.log") as embedded:
        settings = KafkaSettings(bootstrap_servers=embedded.bootstrap_servers)
        asyncio.run(ensure_topics(settings, partitions=3))
        yield embedded


@pytest.fixture(scope="session")
def kafka(broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers)


def require(available: bool, what: str, how: str) -> None:
    """Skip a test whose tool is missing on a developer machine; fail it on CI, which must
    install everything the tests need (a skip there would hide a broken setup)."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: {how}")
    pytest.skip(f"{what} is missing ({how})")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        help="Run the soak tests (tests/soak) and longer fault rounds; off in the default run.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests run only with ``--soak``: deselected (not skipped) in the default run."""
    if config.getoption("--soak"):
        return
    soak = [item for item in items if item.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.integration.faults.report import MATRIX, render_matrix

    if MATRIX:
        terminalreporter.section("fault matrix")
        terminalreporter.write_line(render_matrix(MATRIX))
        out = os.environ.get("BENTOMESH_FAULT_REPORT")
        if out:
            Path(out).write_text(render_matrix(MATRIX) + "\n")
