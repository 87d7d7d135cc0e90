"""Which process serves a bento: its one worker alone, or ``bentoml serve`` supervising several."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.runtime.bento_server import serve_command
from services.runtime.serve_one import needs_supervisor


def bento(
    tmp_path: Path, config: dict[str, object], dependencies: list[object] | None = None
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    service = {"name": "svc", "config": config, "dependencies": dependencies or []}
    (tmp_path / "bento.yaml").write_text(yaml.safe_dump({"services": [service]}))
    return tmp_path


def test_one_worker_runs_alone_more_workers_or_dependencies_are_supervised(tmp_path: Path) -> None:
    assert not needs_supervisor(bento(tmp_path / "one", {"workers": 1}))
    assert not needs_supervisor(bento(tmp_path / "default", {}))
    assert needs_supervisor(bento(tmp_path / "two", {"workers": 2}))
    assert needs_supervisor(bento(tmp_path / "cpu", {"workers": "cpu_count"}))
    assert needs_supervisor(bento(tmp_path / "deps", {}, [{"service": "other"}]))
    assert needs_supervisor(tmp_path / "missing")


def test_supervision_can_be_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENTOMESH_SERVE_SUPERVISED", "1")
    assert needs_supervisor(bento(tmp_path, {"workers": 1}))


def test_the_command_names_the_tag_and_where_it_listens() -> None:
    alone = serve_command("iris:v1", "127.0.0.1", 3000, supervised=False)
    assert alone[1:] == [
        "-m",
        "services.runtime.serve_one",
        "bentoml",
        "serve",
        "iris:v1",
        "--host",
        "127.0.0.1",
        "--port",
        "3000",
    ]
    supervised = serve_command("iris:v1", "127.0.0.1", 3000, supervised=True)
    assert supervised[3:6] == ["bentoml", "serve", "iris:v1"]
    # a tag not in this store: bentoml serve says what is wrong with it
    assert serve_command("nope:v1", "127.0.0.1", 3000, supervised=None)[3:5] == ["bentoml", "serve"]


def test_a_model_image_runs_the_same_choice(tmp_path: Path) -> None:
    import json

    from services.builder.docker_image import serve_command as container_command

    alone = json.loads(container_command(bento(tmp_path / "one", {"workers": 1})))
    assert alone[1:4] == ["/opt/bentomesh/serve_one.py", "bentoml", "serve"]
    supervised = json.loads(container_command(bento(tmp_path / "two", {"workers": 2})))
    assert supervised[:2] == ["/opt/venv/bin/bentoml", "serve"]
    assert supervised[-2:] == ["--port", "3000"]
