"""Linear models are served as their coefficients: equal to scikit-learn's answers, and their
servers never import scikit-learn (seconds off every start)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import psutil
import pytest

from services.packager.pipeline import PackagedBento, package
from services.runtime.bento_server import LocalBentoServer
from tests.integration.conftest import serving
from tests.models import FEATURES, N_FEATURES, ModelCase, classification_data, regression_data

pytestmark = pytest.mark.integration


def linear_cases(directory: Path) -> dict[str, ModelCase]:
    from sklearn.linear_model import LogisticRegression, Ridge

    directory.mkdir(parents=True, exist_ok=True)
    x, y = classification_data()
    three = np.digitize(x[:, 0] - x[:, 1], [-0.5, 0.5])  # three classes
    xr, yr = regression_data(1000, seed=0)
    x_cal, y_cal = regression_data(500, seed=1)
    calibration = directory / "ridge-calibration.npz"
    np.savez(calibration, X=x_cal, y=y_cal)
    rng = np.random.default_rng(3)
    x_test = rng.normal(size=(40, N_FEATURES)) * rng.choice([0.1, 1.0, 30.0], size=(40, 1))
    models: dict[str, tuple[Any, str, Path | None]] = {
        "logistic-binary": (LogisticRegression().fit(x, y), "classification", None),
        "logistic-three": (LogisticRegression().fit(x, three), "classification", None),
        "ridge": (Ridge().fit(xr, yr), "regression", calibration),
    }
    cases = {}
    for kind, (model, task, cal) in models.items():
        path = directory / f"{kind}.joblib"
        joblib.dump(model, path)
        cases[kind] = ModelCase(kind, task, "sklearn", path, model, x_test, calibration=cal)  # type: ignore[arg-type]
    return cases


@pytest.fixture(scope="module")
def linear(artifact_root: Path) -> dict[str, ModelCase]:
    return linear_cases(artifact_root / "linear")


@pytest.fixture(scope="module")
def linear_served(
    linear: dict[str, ModelCase], session_home: Path
) -> Iterator[tuple[dict[str, PackagedBento], dict[str, LocalBentoServer]]]:
    from bentomesh_contracts.publish import build_model_registered

    built = {
        kind: package(
            build_model_registered(  # type: ignore[arg-type]
                case.path,
                name=f"linear-{kind}",
                version="1",
                task=case.task,
                features=FEATURES,
                calibration_path=case.calibration,
            ),
            chain_id=f"test-linear-{kind}",
        )
        for kind, case in linear.items()
    }
    with serving(built, session_home) as servers:
        yield built, servers


def test_linear_models_are_served_as_coefficients_equal_to_scikit_learn(
    linear: dict[str, ModelCase],
    linear_served: tuple[dict[str, PackagedBento], dict[str, LocalBentoServer]],
) -> None:
    built, servers = linear_served
    for kind, case in linear.items():
        assert (built[kind].built.serving or "").startswith("reduced to coefficients"), kind
        route = "predict_proba" if case.task == "classification" else "predict"
        rows = [dict(zip(FEATURES, map(float, r), strict=True)) for r in case.x_test]
        response = httpx.post(f"{servers[kind].url}/{route}", json={"rows": rows}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        if case.task == "classification":
            served = np.array([list(p.values()) for p in body["probabilities"]])
            expected = case.model.predict_proba(case.x_test)
        else:
            served = np.array(body["predictions"])
            expected = case.model.predict(case.x_test)
        np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-9, err_msg=kind)


def test_a_linear_models_server_never_imports_scikit_learn(
    linear_served: tuple[dict[str, PackagedBento], dict[str, LocalBentoServer]],
) -> None:
    _, servers = linear_served
    for kind, server in servers.items():
        assert server.process is not None
        family = [
            psutil.Process(server.process.pid),
            *psutil.Process(server.process.pid).children(recursive=True),
        ]
        mapped = {m.path for p in family for m in p.memory_maps()}
        assert any("numpy" in path for path in mapped), kind  # the maps are read
        assert not [path for path in mapped if "/sklearn/" in path or "/scipy/" in path], kind
