"""Artifacts are code: they are unpickled in a worker process that holds none of the packager's
secrets, and a pickle that kills its process fails its own registration only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import pytest

from bentomesh_contracts import ModelRegistered
from bentomesh_contracts.features import Feature
from services.errors import StageError, UnloadableArtifact
from services.packager.isolation import IsolatedPackager
from services.packager.settings import PackagerSettings
from tests.models import ModelCase

pytestmark = pytest.mark.integration

SECRETS = {
    "BENTOMESH_API_TOKEN": "token-marker",
    "BENTOMESH_KEYS_DIR": "/keys-marker",
    "BENTOMESH_KAFKA_SASL_PASSWORD": "sasl-marker",
}


class Payload:
    """Runs ``code`` when unpickled, as a hostile artifact would."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code,))


def _registration(artifact_root: Path, name: str, code: str) -> ModelRegistered:
    path = artifact_root / f"{name}.joblib"
    joblib.dump(Payload(code), path)
    return ModelRegistered(
        model_name=name,
        model_version="1",
        task="classification",
        framework="sklearn",
        artifact_uri=path.as_uri(),
        artifact_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        features=[Feature(name="x")],
    )


def test_a_pickle_sees_none_of_the_packagers_secrets_and_cannot_stop_it(
    artifact_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # the packager's environment
    seen = tmp_path / "environment.json"
    spy = _registration(
        artifact_root,
        "spy",
        f"import os, json; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))",
    )
    killer = _registration(artifact_root, "killer", "import os; os._exit(3)")
    packager = IsolatedPackager()
    progress: list[str] = []
    try:
        with pytest.raises(StageError):  # it ran, and is not a model
            packager(spy, chain_id="c1", settings=PackagerSettings(), progress=progress.append)
        environment = json.loads(seen.read_text())
        assert environment["BENTOML_HOME"]  # it ran with the packager's ordinary settings...
        for name, value in SECRETS.items():  # ...and none of its secrets
            assert name not in environment
            assert value not in json.dumps(environment)
        with pytest.raises(UnloadableArtifact, match="exited \\(code 3\\)"):
            packager(killer, chain_id="c2", settings=PackagerSettings(), progress=progress.append)
        # the next registration gets a new worker
        with pytest.raises(StageError):
            packager(spy, chain_id="c3", settings=PackagerSettings(), progress=progress.append)
    finally:
        packager.close()
    assert "artifact verified" in progress


def test_two_packagers_on_one_registration_both_end_with_the_same_bento(
    model_cases: dict[str, ModelCase],
) -> None:
    """Two replicas given the same registration at once (a rebalance, a scale-out): neither
    fails because the other stored the model or the bento first."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.integration.conftest import register_case

    registration = register_case(model_cases["sklearn-classifier"], version="twice")
    first, second = IsolatedPackager(), IsolatedPackager()
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda p: p(
                        registration, chain_id="k", settings=PackagerSettings(), progress=print
                    ),
                    (first, second),
                )
            )
    finally:
        first.close()
        second.close()
    assert {r.built.bento_tag for r in results} == {"sklearn-classifier:twice"}
    print("reused:", [r.reused for r in results])
