"""Logs rotate when a process starts on them: past the size limit, older files keep ``keep``."""

from __future__ import annotations

from pathlib import Path

from services.runtime.logs import rotated


def test_a_log_over_the_limit_is_rotated_and_only_keep_old_files_stay(tmp_path: Path) -> None:
    log = tmp_path / "deployer.log"
    for generation in range(5):
        with open(rotated(log, max_bytes=10, keep=2), "a") as out:
            out.write(f"generation {generation}\n")
    assert log.read_text() == "generation 4\n"
    assert (tmp_path / "deployer.log.1").read_text() == "generation 3\n"
    assert (tmp_path / "deployer.log.2").read_text() == "generation 2\n"
    assert not (tmp_path / "deployer.log.3").exists()


def test_a_small_log_is_appended_to(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text("x\n")
    assert rotated(log, max_bytes=100) == log
    assert log.read_text() == "x\n"
    assert not (tmp_path / "m.log.1").exists()
