"""Models fitted on DataFrames, registered with no feature list, built into real bentos and
served over HTTP: they answer requests keyed by their own column names exactly as in-process,
and refuse what they cannot take with a 400 naming the column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bentomesh_contracts.publish import build_model_registered
from services.packager.pipeline import PackagedBento, package
from services.runtime.bento_server import LocalBentoServer
from tests.frame_models import FRAME_KINDS, FrameCase, make_frame_case, request_rows
from tests.integration.conftest import serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cases(artifact_root: Path) -> dict[str, FrameCase]:
    return {kind: make_frame_case(kind, artifact_root / "frames") for kind in FRAME_KINDS}


@pytest.fixture(scope="module")
def built(cases: dict[str, FrameCase]) -> dict[str, PackagedBento]:
    """Registered with no feature list. LightGBM records spaces in column names as '_': its
    registration carries an input example (a CSV of a few rows) for the real names, and the
    types still come from the model."""
    out = {}
    for kind, case in cases.items():
        example = None
        if kind == "lightgbm-categorical":
            example = case.path.with_suffix(".example.csv")
            case.x_test.head(5).to_csv(example, index=False)
        data = build_model_registered(
            case.path,
            name=kind,
            version="1",
            task="classification",
            input_example_path=example,
        )
        out[kind] = package(data, chain_id=f"test-{kind}")
    return out


@pytest.fixture(scope="module")
def served(built: dict[str, PackagedBento], session_home: Path) -> Iterator[dict[str, Any]]:
    with serving(built, session_home) as servers:
        yield servers


def proba(server: LocalBentoServer, rows: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/predict_proba", json={"rows": rows}, timeout=60)


@pytest.mark.parametrize("kind", FRAME_KINDS)
def test_serves_in_process_probabilities_keyed_by_its_own_columns(
    kind: str, cases: dict[str, FrameCase], built: dict[str, PackagedBento], served: dict[str, Any]
) -> None:
    case = cases[kind]
    assert [f.name for f in built[kind].built.features] == list(case.x_test.columns)
    expected = case.model.predict_proba(case.x_test)
    response = proba(served[kind], request_rows(case.x_test))
    assert response.status_code == 200, response.text
    labels = [str(c) for c in case.model.classes_]
    got = np.array([[p[c] for c in labels] for p in response.json()["probabilities"]])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_signature_read_from_the_pipeline(built: dict[str, PackagedBento]) -> None:
    features = {f.name: f for f in built["churn-pipeline"].built.features}
    assert features["plan type"].dtype == "string"
    assert features["plan type"].categories == ("basic", "max", "pro")
    assert not features["plan type"].accept_unknown  # OneHotEncoder(handle_unknown="error")
    assert features["monthly charges ($)"].allow_nan  # the imputer takes gaps
    hgb = {f.name: f for f in built["hgb-categorical"].built.features}
    assert hgb["plan type"].dtype == "category"
    assert hgb["plan type"].accept_unknown  # unseen categories are missing values to it
    xgb = {f.name: f for f in built["xgboost-categorical"].built.features}
    assert not xgb["payment/method"].accept_unknown  # XGBoost refuses a category it never saw


def test_column_oriented_requests_and_arrays_answer_the_same(
    cases: dict[str, FrameCase], served: dict[str, Any]
) -> None:
    case = cases["churn-pipeline"]
    rows = request_rows(case.x_test.iloc[:5])
    objects = proba(served["churn-pipeline"], rows).json()
    columns = list(reversed(case.x_test.columns))  # any column order
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    assert proba(served["churn-pipeline"], split).json() == objects
    arrays = [[r[c] for c in case.x_test.columns] for r in rows]
    assert proba(served["churn-pipeline"], arrays).json() == objects


@pytest.mark.parametrize("kind", ["churn-pipeline", "xgboost-categorical"])
def test_unseen_category_the_model_cannot_take_is_a_400_naming_the_column(
    kind: str, cases: dict[str, FrameCase], served: dict[str, Any]
) -> None:
    row = request_rows(cases[kind].x_test.iloc[:1])[0]
    row["payment/method"] = "crypto"
    response = proba(served[kind], [row])
    assert response.status_code == 400, response.text
    assert "payment/method" in response.text
    assert "'card'" in response.text  # what it would take


def test_unseen_category_a_model_ignores_is_served(
    cases: dict[str, FrameCase], served: dict[str, Any]
) -> None:
    row = request_rows(cases["hgb-categorical"].x_test.iloc[:1])[0]
    row["plan type"] = "enterprise"
    assert proba(served["hgb-categorical"], [row]).status_code == 200


def test_wrongly_typed_column_is_a_400_naming_it(
    cases: dict[str, FrameCase], served: dict[str, Any]
) -> None:
    row = request_rows(cases["churn-pipeline"].x_test.iloc[:1])[0]
    row["support calls"] = "many"
    response = proba(served["churn-pipeline"], [row])
    assert response.status_code == 400
    assert "support calls" in response.text
    missing = request_rows(cases["churn-pipeline"].x_test.iloc[:1])[0]
    del missing["plan type"]  # a gap the model cannot take
    response = proba(served["churn-pipeline"], [missing])
    assert response.status_code == 400
    assert "plan type" in response.text


def test_a_dataframe_regressor_serves_conformal_intervals_from_a_csv_calibration_table(
    artifact_root: Path, session_home: Path
) -> None:
    """Regression on a table with categories and gaps, calibrated on a CSV of held-out rows
    (the model's columns and 'y'): predictions as in-process, intervals that cover."""
    import joblib
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tests.frame_models import _categorical, churn_table

    table, _ = churn_table(3000, seed=3)
    table = _categorical(table)
    target = table.pop("monthly charges ($)").fillna(60.0).to_numpy()
    rng = np.random.default_rng(3)
    target = target + 10 * (table["plan type"] == "max") + rng.normal(0, 5, len(target))
    model = HistGradientBoostingRegressor(max_iter=60, categorical_features="from_dtype")
    model.fit(table.iloc[:2000], target[:2000])
    directory = artifact_root / "frames"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "charges.joblib"
    joblib.dump(model, path)
    calibration = directory / "charges-calibration.csv"
    table.iloc[2000:2500].assign(y=target[2000:2500]).to_csv(calibration, index=False)
    data = build_model_registered(
        path, name="charges", version="1", task="regression", calibration_path=calibration
    )
    bento = package(data, chain_id="test-charges").built
    server = LocalBentoServer(bento.bento_tag, log_path=session_home / "serve-charges.log")
    server.start()
    try:
        server.wait_ready(timeout=180)
        test = table.iloc[2500:]
        response = httpx.post(
            f"{server.url}/predict",
            json={"rows": request_rows(test), "confidence": 0.9},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        np.testing.assert_allclose(body["predictions"], model.predict(test), rtol=1e-6)
        lower, upper = np.array(body["lower"]), np.array(body["upper"])
        covered = float(np.mean((target[2500:] >= lower) & (target[2500:] <= upper)))
        assert 0.85 <= covered <= 0.95, covered  # nominal 0.9 on 500 held-out rows
    finally:
        server.stop()
