"""The reference profile the packager stores with a model: from a reference sample, or a
regressor's calibration data; none without either (and the model is served as before)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bentoml
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bentomesh_contracts.publish import build_model_registered
from bentomesh_contracts.training import save_reference
from services.packager.pipeline import PackagedBento, package
from tests.models import ModelCase

pytestmark = pytest.mark.integration


def stored_reference(built: PackagedBento) -> Any:
    model = bentoml.models.get(built.built.model_tag)
    return json.loads((Path(model.path) / "bentomesh.json").read_text()).get("reference")


def test_a_reference_sample_is_profiled_with_the_models_predictions(artifact_root: Path) -> None:
    rng = np.random.default_rng(4)
    x = pd.DataFrame(
        {
            "monthly charges ($)": rng.uniform(10, 120, 2000),
            "contract type": rng.choice(["month", "year"], 2000, p=[0.7, 0.3]),
        }
    )
    y = np.where(
        (x["contract type"] == "month") & (x["monthly charges ($)"] > 60), "churns", "stays"
    )
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["contract type"]), remainder=StandardScaler()),
        LogisticRegression(),
    ).fit(x, y)
    folder = artifact_root / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "churn-ref.joblib")
    sample = save_reference(x, folder / "churn-ref")
    event = build_model_registered(
        folder / "churn-ref.joblib",
        name="churn-ref",
        version="1",
        task="classification",
        reference_path=sample,
    )
    built = package(event, chain_id="test-reference")
    assert built.built.reference_rows == 2000
    profile = stored_reference(built)
    charges = profile["features"]["monthly charges ($)"]
    assert len(charges["edges"]) == 9
    assert charges["shares"] == pytest.approx([0.1] * 10, abs=0.01)
    assert profile["features"]["contract type"]["shares"] == pytest.approx(
        {"month": 0.7, "year": 0.3}, abs=0.03
    )
    predicted = pd.Series(model.predict(x)).value_counts(normalize=True).to_dict()
    assert profile["prediction"]["shares"] == pytest.approx(predicted)


def test_a_regressors_calibration_data_is_its_reference_and_none_is_none(
    built_bentos: dict[str, PackagedBento], model_cases: dict[str, ModelCase]
) -> None:
    regressor = built_bentos["sklearn-regressor"]
    calibration = model_cases["sklearn-regressor"].calibration
    assert calibration is not None
    with np.load(calibration) as data:
        rows = len(data["X"])
    assert regressor.built.reference_rows == rows
    profile = stored_reference(regressor)
    assert profile["prediction"]["kind"] == "numeric"
    assert set(profile["features"]) == {f.name for f in regressor.built.features}
    classifier = built_bentos["sklearn-classifier"]
    assert classifier.built.reference_rows is None
    assert stored_reference(classifier) is None
