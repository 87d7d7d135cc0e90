"""The training-job API in memory: what it infers from a fitted model, what it refuses, and
that its blocking form runs inside an event loop (as in a notebook)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from bentomesh_contracts.publish import build_model_registered, run_blocking
from bentomesh_contracts.training import (
    SignatureUnknown,
    infer_class_labels,
    infer_features,
    infer_task,
    register_model,
)


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(50, 3)), columns=["tenure", "monthly charges", "usage"])
    return x, np.where(x["tenure"] > 0, "churns", "stays")


def test_a_dataframe_fitted_classifier_knows_its_signature() -> None:
    x, y = frame()
    model = LogisticRegression().fit(x, y)
    assert infer_task(model) == "classification"
    assert infer_features(model) == ["tenure", "monthly charges", "usage"]
    assert infer_class_labels(model) == ["churns", "stays"]
    assert infer_task(LinearRegression().fit(x, y == "churns")) == "regression"


def test_a_model_without_feature_names_is_refused_with_what_to_pass(tmp_path: Path) -> None:
    x, y = frame()
    model = LogisticRegression().fit(x.to_numpy(), y)
    with pytest.raises(SignatureUnknown, match=r"features=\[\.\.\.\]"):
        register_model(model, name="churn", version="1", artifact_dir=tmp_path)  # type: ignore[call-arg]


def test_a_misspelt_field_is_named_by_the_function_that_was_called(tmp_path: Path) -> None:
    artifact = tmp_path / "m.joblib"
    artifact.write_bytes(b"x")
    with pytest.raises(TypeError, match=r"unknown registration field.*class_label\b"):
        build_model_registered(
            artifact,
            name="m",
            version="1",
            task="classification",
            features=["a"],
            class_label=["x"],  # type: ignore[typeddict-unknown-key]
        )


def test_artifact_uri_is_where_the_mesh_reads_it_and_the_digest_is_local(tmp_path: Path) -> None:
    artifact = tmp_path / "m.joblib"
    artifact.write_bytes(b"model")
    data = build_model_registered(
        artifact,
        name="m",
        version="1",
        task="regression",
        features=["a"],
        artifact_uri="file:///artifacts/m.joblib",
    )
    assert data.artifact_uri == "file:///artifacts/m.joblib"
    assert data.artifact_sha256 == __import__("hashlib").sha256(b"model").hexdigest()


async def test_blocking_form_works_inside_a_running_event_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.get_running_loop().is_running()
    assert run_blocking(answer) == 42


def test_a_reference_sample_is_saved_beside_the_model_and_digest_checked(tmp_path: Path) -> None:
    from bentomesh_contracts.training import REFERENCE_ROWS, save_reference

    rng = np.random.default_rng(1)
    big = pd.DataFrame({"tenure": rng.normal(size=REFERENCE_ROWS + 500), "plan": "basic"})
    path = save_reference(big, tmp_path / "churn-1")
    assert path.name == "churn-1.reference.parquet"
    back = pd.read_parquet(path)
    assert len(back) == REFERENCE_ROWS
    assert list(back.columns) == ["tenure", "plan"]
    array = save_reference(big[["tenure"]].to_numpy(), tmp_path / "churn-2")
    with np.load(array) as data:
        assert data["X"].shape == (REFERENCE_ROWS, 1)
    artifact = tmp_path / "m.joblib"
    artifact.write_bytes(b"x")
    data = build_model_registered(
        artifact, name="churn", version="1", task="classification", reference_path=path
    )
    assert data.reference is not None
    assert data.reference.uri == path.resolve().as_uri()
    with pytest.raises(SignatureUnknown, match="2-D"):
        save_reference(np.zeros(3), tmp_path / "flat")
