"""The fault suite: the real broker, the real services as processes, real builds and model
servers, broken on purpose. ``--soak`` runs more rounds (locally: ``uv run pytest -m faults
--soak``). Each test adds a row to the matrix printed at the end of the session."""

from __future__ import annotations

import pytest

from tests.integration.faults.report import MATRIX, FaultRow


@pytest.fixture(scope="session")
def soak(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--soak"))


@pytest.fixture(scope="session")
def matrix() -> list[FaultRow]:
    return MATRIX
