"""A bento build that fails or hangs ends in one BuildFailed that says why."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.errors import BuildFailed
from services.packager.build_context import build_bento


def context(directory: Path, service: str) -> Path:
    (directory / "bentofile.yaml").write_text('service: "service:Broken"\n')
    (directory / "service.py").write_text(service)
    return directory


def test_a_service_that_fails_to_import_is_a_build_failure_with_its_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "home"))  # the child builds with it
    ctx = context(tmp_path, "raise RuntimeError('the template is broken')\n")
    with pytest.raises(BuildFailed) as failed:
        build_bento(ctx, "broken", "1", timeout=120)
    assert "exit code 1" in str(failed.value)
    assert "RuntimeError: the template is broken" in (failed.value.details or "")


def test_a_build_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    ctx = context(tmp_path, "import time\ntime.sleep(600)\n")
    started = time.monotonic()
    with pytest.raises(BuildFailed) as failed:
        build_bento(ctx, "hangs", "1", timeout=3)
    assert time.monotonic() - started < 30
    assert "longer than 3s" in (failed.value.details or "")
