from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.compose import ComposeService, compose_yaml
from services.packager.bentofile import BentoConfig, ContainerConfig, pinned_requirements
from services.packager.build_context import service_settings, write_build_context
from services.packager.tasks import TASK_PROFILES, TEMPLATES_PACKAGE


@pytest.mark.parametrize(
    ("task", "options", "class_name"),
    [
        ("classification", {}, "Classifier"),
        ("regression", {"return_intervals": True}, "Regressor"),
        ("causal", {"treatment": "coupon", "outcome": "spend"}, "CausalEffects"),
    ],
)
def test_templates_are_modules_configured_by_their_service_file(
    task: str, options: dict[str, Any], class_name: str, tmp_path: Path
) -> None:
    profile = TASK_PROFILES[task]  # type: ignore[index]
    settings = service_settings(
        model_tag="churn:3",
        service_name="churn",
        description='say "hi"',
        workers=2,
        options=options,
    )
    write_build_context(tmp_path, settings, "service: x\n")
    package = tmp_path / TEMPLATES_PACKAGE
    tree = ast.parse((package / f"{profile.template}.py").read_text())
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert class_name in classes
    assert profile.service_ref == f"{TEMPLATES_PACKAGE}.{profile.template}:{class_name}"
    assert (package / "helpers.py").is_file()
    written = json.loads((package / "service.json").read_text())
    assert written["model_tag"] == "churn:3"
    assert written["workers"] == 2
    assert written["description"] == 'say "hi"'
    assert written["options"] == options


def test_bentofile_pins_training_versions_and_builds_offline() -> None:
    pins = pinned_requirements("xgboost", {"scikit-learn": "1.5.0", "xgboost-cpu": "3.0.1"})
    assert "scikit-learn==1.5.0" in pins
    assert "xgboost-cpu==3.0.1" in pins
    assert any(p.startswith("numpy==") for p in pins)
    config = BentoConfig(
        service="service:Classifier",
        name="churn",
        version="3",
        description="d",
        packages=tuple(pins),
        models=("churn:3",),
        container=ContainerConfig(base_image="bentomesh/python:3.11"),
    )
    doc = yaml.safe_load(config.to_yaml())
    assert doc["python"]["lock_packages"] is False
    assert doc["python"]["pack_git_packages"] is False
    assert doc["models"] == ["churn:3"]
    assert doc["docker"]["base_image"] == "bentomesh/python:3.11"
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in doc["envs"]


def test_compose_has_one_locked_down_service_per_model() -> None:
    text = compose_yaml(
        [
            ComposeService("churn", "bentomesh/churn:3", 3001, cpus=0.5),
            ComposeService("demand", "bentomesh/demand:1", 3002, memory_mb=512),
        ]
    )
    doc = yaml.safe_load(text)
    churn = doc["services"]["churn"]
    assert churn["ports"] == ["127.0.0.1:3001:3000"]
    assert churn["read_only"] is True
    assert churn["cap_drop"] == ["ALL"]
    assert churn["cpus"] == 0.5
    assert "/readyz" in " ".join(churn["healthcheck"]["test"])
    assert doc["services"]["demand"]["mem_limit"] == "512m"


def test_compose_refuses_clashing_ports() -> None:
    with pytest.raises(ValueError, match="ports"):
        compose_yaml([ComposeService("a", "i:1", 3001), ComposeService("b", "i:2", 3001)])


def test_build_contexts_of_dead_packagers_are_removed(tmp_path: Path, monkeypatch: Any) -> None:
    import os
    import subprocess
    import tempfile

    from services.packager.pipeline import build_contexts_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs, like a packager killed mid-build
    base = tmp_path / f"bentomesh-builds-{os.getuid()}"
    left_behind = base / str(gone.pid) / "bentomesh-build-churn-x"
    left_behind.mkdir(parents=True)
    alive = base / "1" / "bentomesh-build-other-y"  # pid 1 runs: another packager's build
    alive.mkdir(parents=True)

    own = build_contexts_dir()

    assert own == base / str(os.getpid())
    assert own.is_dir()
    assert not left_behind.parent.exists()
    assert alive.is_dir()


def test_a_bento_for_a_dataframe_model_pins_pandas() -> None:
    trained = {"pandas": "3.0.0", "scikit-learn": "1.9.0"}
    assert "pandas==3.0.0" in pinned_requirements("sklearn", trained, frame=True)
    assert not any(p.startswith("pandas") for p in pinned_requirements("sklearn", trained))


def test_a_training_version_that_is_not_a_version_is_never_pinned() -> None:
    from services.errors import InvalidRegistration

    with pytest.raises(InvalidRegistration, match="not a PEP 440 version"):
        pinned_requirements("sklearn", {"scikit-learn": "latest"})
