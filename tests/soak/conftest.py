"""Soak runs: long, real, and not part of every CI run. ``uv run pytest tests/soak --soak``."""

from __future__ import annotations

import pytest

from tests.integration.faults.report import MATRIX, FaultRow


@pytest.fixture(scope="session")
def matrix() -> list[FaultRow]:
    return MATRIX
