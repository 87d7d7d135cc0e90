"""Every model kind, built into a real bento and served over HTTP, answers like in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from services.packager.pipeline import PackagedBento
from services.runtime.bento_server import LocalBentoServer
from tests.models import ALL_KINDS, FEATURES, ModelCase

pytestmark = pytest.mark.integration

CLASSIFIERS = [k for k in ALL_KINDS if k.endswith("classifier")]
REGRESSORS = [k for k in ALL_KINDS if k.endswith("regressor")]
CAUSAL = [k for k in ALL_KINDS if k.startswith("econml")]


def post(server: LocalBentoServer, route: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/{route}", json=body, timeout=60)


def requests_counted(server: LocalBentoServer, code: str = "200") -> float:
    """The answers with ``code`` to ``/predict`` that the server's ``/metrics`` counts."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    prefix = 'bentoml_service_request_total{endpoint="/predict",http_response_code="' + code
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if prefix in line)


def rows(x: np.ndarray[Any, Any], as_objects: bool = True) -> list[Any]:
    if as_objects:
        return [dict(zip(FEATURES, map(float, r), strict=True)) for r in x]
    return [list(map(float, r)) for r in x]


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_classifier_serves_in_process_probabilities(
    kind: str, model_cases: dict[str, ModelCase], served: dict[str, LocalBentoServer]
) -> None:
    case = model_cases[kind]
    expected = case.model.predict_proba(case.x_test)
    response = post(served[kind], "predict_proba", {"rows": rows(case.x_test)})
    assert response.status_code == 200, response.text
    body = response.json()
    got = np.array([[p["stays"], p["churns"]] for p in body["probabilities"]])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    labels = np.array(case.class_labels)[expected.argmax(axis=1)]
    assert body["labels"] == labels.tolist()
    as_arrays = post(served[kind], "predict", {"rows": rows(case.x_test, as_objects=False)})
    assert as_arrays.json()["labels"] == labels.tolist()


@pytest.mark.parametrize("kind", REGRESSORS)
def test_regressor_serves_in_process_predictions_with_calibrated_intervals(
    kind: str, model_cases: dict[str, ModelCase], served: dict[str, LocalBentoServer]
) -> None:
    case = model_cases[kind]
    response = post(served[kind], "predict", {"rows": rows(case.x_test), "confidence": 0.9})
    assert response.status_code == 200, response.text
    body = response.json()
    # compiled trees: equal to the original's values within 1e-6 (XGBoost sums in float32)
    np.testing.assert_allclose(
        body["predictions"], case.model.predict(case.x_test), rtol=1e-6, atol=1e-6
    )
    lower, upper = np.array(body["lower"]), np.array(body["upper"])
    coverage = float(np.mean((case.y_test >= lower) & (case.y_test <= upper)))
    # split conformal guarantees >= 0.9 in expectation; 2,000 held-out rows: sd ~ 0.007
    assert coverage >= 0.88, coverage
    assert coverage <= 0.95, f"intervals too wide: {coverage}"
    wider = post(served[kind], "predict", {"rows": rows(case.x_test[:5]), "confidence": 0.99})
    assert np.all(np.array(wider.json()["upper"]) > upper[:5])


@pytest.mark.parametrize("kind", CAUSAL)
def test_causal_model_serves_in_process_effects(
    kind: str, model_cases: dict[str, ModelCase], served: dict[str, LocalBentoServer]
) -> None:
    case = model_cases[kind]
    response = post(served[kind], "effect_interval", {"rows": rows(case.x_test), "alpha": 0.05})
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(body["effects"], case.model.effect(case.x_test), rtol=1e-6)
    lo, hi = case.model.effect_interval(case.x_test, alpha=0.05)
    np.testing.assert_allclose(body["lower"], lo, rtol=1e-6)
    np.testing.assert_allclose(body["upper"], hi, rtol=1e-6)
    assert body["average_effect"] == pytest.approx(float(np.mean(body["effects"])))
    assert body["average_lower"] <= body["average_effect"] <= body["average_upper"]
    effect = post(served[kind], "effect", {"rows": rows(case.x_test[:3])}).json()
    np.testing.assert_allclose(effect["effects"], case.model.effect(case.x_test[:3]), rtol=1e-6)


def test_linear_dml_served_intervals_cover_the_true_effect(
    model_cases: dict[str, ModelCase], served: dict[str, LocalBentoServer]
) -> None:
    """LinearDML is well specified for the data (tau(x) = 1 + 2 x0, randomized treatment).

    One fit's CATE intervals share one estimated coefficient vector, so the share of test points
    covered is correlated across points: it is checked loosely here and over repeated draws below.
    """
    case = model_cases["econml-lineardml"]
    body = post(
        served["econml-lineardml"], "effect_interval", {"rows": rows(case.x_test), "alpha": 0.05}
    ).json()
    lower, upper = np.array(body["lower"]), np.array(body["upper"])
    coverage = float(np.mean((case.true_effect >= lower) & (case.true_effect <= upper)))
    assert coverage >= 0.8, coverage
    true_ate = float(np.mean(case.true_effect))
    assert body["average_lower"] <= true_ate <= body["average_upper"]


def test_linear_dml_interval_coverage_over_repeated_draws() -> None:
    """Mean coverage of 95% CATE intervals over 10 independent data sets is near nominal."""
    from econml.dml import LinearDML
    from sklearn.linear_model import LassoCV, LogisticRegressionCV

    x_test = np.random.default_rng(3).normal(size=(200, 5))
    truth = 1 + 2 * x_test[:, 0]
    coverages = []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        x = rng.normal(size=(2000, 5))
        t = rng.binomial(1, 0.5, size=2000)
        y = (1 + 2 * x[:, 0]) * t + x[:, 1] + 0.5 * x[:, 2] + rng.normal(scale=0.5, size=2000)
        model = LinearDML(
            model_y=LassoCV(),
            model_t=LogisticRegressionCV(),
            discrete_treatment=True,
            random_state=0,
        ).fit(y, t, X=x)
        lo, hi = model.effect_interval(x_test, alpha=0.05)
        coverages.append(np.mean((truth >= lo) & (truth <= hi)))
    assert 0.9 <= float(np.mean(coverages)) <= 1.0, coverages


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"rows": [{"x0": 1, "x1": 2, "x2": 3, "x3": 4}]}, 400, "x4"),
        ({"rows": [{"x0": 1, "x1": 2, "x2": 3, "x3": 4, "x4": 5, "x9": 0}]}, 400, "x9"),
        ({"rows": [{"x0": "high", "x1": 2, "x2": 3, "x3": 4, "x4": 5}]}, 400, "x0"),
        ({"rows": [[1, 2, 3]]}, 400, "x0, x1, x2, x3, x4"),
        ({"rows": []}, 400, "rows"),
        ({"rowz": []}, 400, "rows"),
    ],
)
def test_bad_prediction_requests_get_a_4xx_naming_the_field(
    served: dict[str, LocalBentoServer], body: dict[str, Any], status: int, names: str
) -> None:
    response = post(served["sklearn-classifier"], "predict", body)
    assert response.status_code == status, response.text
    assert names in response.text


def test_nan_is_refused_where_not_allowed(served: dict[str, LocalBentoServer]) -> None:
    raw = '{"rows": [{"x0": NaN, "x1": 2, "x2": 3, "x3": 4, "x4": 5}]}'
    response = httpx.post(
        f"{served['sklearn-classifier'].url}/predict",
        content=raw,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "x0" in response.text


def test_openapi_documents_the_feature_schema(served: dict[str, LocalBentoServer]) -> None:
    spec = httpx.get(f"{served['sklearn-classifier'].url}/docs.json", timeout=30).json()
    assert "/predict_proba" in spec["paths"]
    text = str(spec)
    assert all(name in text for name in FEATURES)


def test_a_body_over_the_limit_gets_413_naming_it(served: dict[str, LocalBentoServer]) -> None:
    url = f"{served['sklearn-classifier'].url}/predict"
    declared = httpx.post(url, content=b" " * (11 << 20), timeout=60)
    assert declared.status_code == 413, declared.text
    assert "10485760 bytes" in declared.json()["error"]

    def streamed() -> Iterator[bytes]:
        for _ in range(11):
            yield b" " * (1 << 20)

    chunked = httpx.post(
        url, content=streamed(), headers={"content-type": "application/json"}, timeout=60
    )
    assert chunked.status_code == 413, chunked.text
    assert post(served["sklearn-classifier"], "predict", {"rows": [[1, 2, 3, 4, 5]]}).is_success


def test_tree_ensembles_are_served_compiled_and_the_checks_above_hold_for_them(
    built_bentos: dict[str, PackagedBento],
) -> None:
    """The served predictions above are compared with the original model's: for every tree
    ensemble they come from its compiled trees (tl2cgen), so these tests are the regression
    check that compiled and original never differ."""
    for kind, packaged in built_bentos.items():
        serving = packaged.built.serving or ""
        if kind.startswith("econml"):
            assert serving == "causal models are served as trained", serving
        else:
            assert serving.startswith("compiled with tl2cgen"), (kind, serving)


@pytest.mark.parametrize(
    ("kind", "route"),
    [
        ("sklearn-classifier", "predict_proba"),
        ("xgboost-regressor", "predict"),
        ("econml-lineardml", "effect_interval"),
    ],
)
def test_the_short_path_answers_byte_for_byte_what_bentoml_answers(
    kind: str, route: str, model_cases: dict[str, ModelCase], served: dict[str, LocalBentoServer]
) -> None:
    """JSON predictions are answered by the templates' short path; a body it passes on (any
    other content type) is answered by BentoML's own route, which parses it as JSON too."""
    body = httpx.Request("POST", "/", json={"rows": rows(model_cases[kind].x_test[:7])}).content
    url = f"{served[kind].url}/{route}"
    short = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    bentoml_own = httpx.post(url, content=body, headers={"content-type": "text/plain"}, timeout=60)
    chunks = httpx.post(  # a body in several reads
        url,
        content=iter([body[:10], body[10:100], body[100:]]),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert short.status_code == bentoml_own.status_code == chunks.status_code == 200, short.text
    assert short.content == bentoml_own.content == chunks.content
    assert "x-bentoml-request-id" not in short.headers  # answered on the short path
    assert short.headers["content-type"] == "application/json"


def test_short_path_errors_are_bentomls_and_every_answer_is_counted(
    served: dict[str, LocalBentoServer],
) -> None:
    server = served["sklearn-classifier"]

    def counted(code: str) -> float:
        return requests_counted(server, code)

    before_ok, before_bad = counted("200"), counted("400")
    wrong = post(server, "predict", {"rows": [{"x0": "high", "x1": 2, "x2": 3, "x3": 4, "x4": 5}]})
    assert wrong.status_code == 400, wrong.text
    assert "x0" in wrong.text
    assert "validation error" in wrong.json()["error"]
    for _ in range(3):
        assert post(server, "predict", {"rows": [[1, 2, 3, 4, 5]]}).status_code == 200
    assert counted("200") - before_ok == 3
    assert counted("400") - before_bad == 1


@pytest.mark.parametrize("supervised", [False, True], ids=["worker alone", "bentoml serve"])
def test_a_server_started_later_neither_wipes_nor_shares_another_servers_counts(
    served: dict[str, LocalBentoServer],
    built_bentos: dict[str, PackagedBento],
    tmp_path: Path,
    supervised: bool,
) -> None:
    """BentoML empties one Prometheus directory per home at every start: servers of one home used
    to lose their counts whenever another model started (the monitor saw no traffic). The later
    server runs as the mesh runs a one-worker bento (its worker alone), or under ``bentoml serve``
    (several workers)."""
    running = served["sklearn-classifier"]
    before = requests_counted(running)
    for _ in range(2):
        assert post(running, "predict", {"rows": [[1, 2, 3, 4, 5]]}).status_code == 200
    tag = built_bentos["sklearn-classifier"].built.bento_tag
    with LocalBentoServer(tag, log_path=tmp_path / "later.log", supervised=supervised) as later:
        assert requests_counted(running) - before == 2
        assert requests_counted(later) == 0
        assert post(later, "predict", {"rows": [[1, 2, 3, 4, 5]]}).status_code == 200
        assert requests_counted(later) == 1
        assert requests_counted(running) - before == 2
