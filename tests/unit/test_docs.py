"""The committed reference docs are what the code generates (they cannot drift)."""

from __future__ import annotations

from pathlib import Path

from services.docs import write_docs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_committed_docs_match_the_generated_ones(tmp_path: Path) -> None:
    generated = write_docs(tmp_path)
    stale = [
        p.relative_to(tmp_path)
        for p in generated
        if not (DOCS / p.relative_to(tmp_path)).exists()
        or (DOCS / p.relative_to(tmp_path)).read_text() != p.read_text()
    ]
    assert stale == [], f"run `uv run bentomesh docs docs` and commit: {stale}"


def test_configuration_reference_lists_every_setting_once() -> None:
    text = (DOCS / "configuration.md").read_text()
    for variable in (
        "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS",
        "BENTOMESH_ARTIFACT_ROOTS",
        "BENTOMESH_DOCKER_NETWORK",
        "BENTOMESH_MONITOR_INTERVAL_S",
    ):
        assert text.count(f"`{variable}`") == 1
