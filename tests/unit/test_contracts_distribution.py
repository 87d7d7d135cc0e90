"""The contracts are their own distribution: installable alone, typed, with a stated surface."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bentomesh_contracts
from bentomesh_contracts import topics
from bentomesh_contracts.pipeline import CHAIN_TOPICS, PIPELINE, PRODUCER_OF, stage

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("bentoml", "sklearn", "faststream", "numpy", "docker", "services")


def test_every_exported_name_resolves() -> None:
    for name in bentomesh_contracts.__all__:
        assert getattr(bentomesh_contracts, name) is not None, name


def test_package_is_typed() -> None:
    assert (Path(bentomesh_contracts.__file__).parent / "py.typed").is_file()


def test_pipeline_is_the_chain_in_order() -> None:
    names = [s.name for s in PIPELINE]
    assert names == ["packager", "builder", "deployer", "monitor"]
    for upstream, downstream in itertools.pairwise(PIPELINE):
        assert upstream.produces is downstream.consumes
    assert set(CHAIN_TOPICS) | {topics.DEAD_LETTER, topics.PREDICTIONS} == set(topics.ALL_TOPICS)
    assert PRODUCER_OF["bentomesh.bento.built.v1"] == "packager"


def test_unknown_stage_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="packager, builder, deployer, monitor"):
        stage("trainer")


@pytest.mark.integration
def test_installs_alone_in_a_fresh_venv_without_the_ml_stack(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is installed by the README's setup command"
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), f"{ROOT / 'contracts'}[kafka]"],
        check=True,
        timeout=300,
    )
    listed = subprocess.run(
        [uv, "pip", "list", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout.lower()
    for heavy in ("bentoml", "scikit-learn", "faststream", "numpy", "docker", "bentomesh "):
        assert heavy not in listed, f"{heavy} installed with the contracts:\n{listed}"
    code = (
        "import sys, bentomesh_contracts as c; "
        "from bentomesh_contracts import publish_model_registered, PIPELINE; "
        "import aiokafka; "
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; "
        "print(len(c.__all__), heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
