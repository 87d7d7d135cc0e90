"""Small models of each supported kind, trained on synthetic data with known truth.

Shared by unit and integration tests (and the benchmarks), so every kind is built the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from bentomesh_contracts.events import Framework, Task

N_FEATURES = 5
FEATURES = [f"x{i}" for i in range(N_FEATURES)]


@dataclass(frozen=True)
class ModelCase:
    kind: str
    task: Task
    framework: Framework
    path: Path
    model: Any
    x_test: np.ndarray[Any, Any]
    y_test: np.ndarray[Any, Any] | None = None
    calibration: Path | None = None
    true_effect: np.ndarray[Any, Any] | None = None
    class_labels: tuple[str, ...] | None = None


def classification_data(
    n: int = 600, seed: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    logits = 1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
    return x, (logits + rng.normal(scale=0.5, size=n) > 0).astype(int)


def regression_data(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    y = 2 * x[:, 0] + np.sin(3 * x[:, 1]) + 0.5 * x[:, 2] ** 2 + rng.normal(scale=0.5, size=n)
    return x, y


def _save(model: Any, path: Path) -> Path:
    joblib.dump(model, path)
    return path


def make_case(kind: str, directory: Path) -> ModelCase:
    """Train the model ``kind`` (e.g. ``sklearn-classifier``) and save it under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "xgboost-native-classifier":  # the library's own JSON format, not a pickle
        case = make_case("xgboost-classifier", directory / "native")
        path = directory / f"{kind}.json"
        case.model.save_model(path)
        return ModelCase(
            kind,
            case.task,
            case.framework,
            path,
            case.model,
            case.x_test,
            class_labels=case.class_labels,
        )
    if kind == "lightgbm-native-regressor":  # LightGBM's text model format
        case = make_case("lightgbm-regressor", directory / "native")
        path = directory / f"{kind}.txt"
        case.model.booster_.save_model(str(path))
        return ModelCase(
            kind,
            case.task,
            case.framework,
            path,
            case.model,
            case.x_test,
            case.y_test,
            case.calibration,
        )
    framework, role = kind.split("-", 1)
    if role == "classifier":
        x, y = classification_data()
        labels = ("stays", "churns")
        if framework == "sklearn":
            from sklearn.ensemble import HistGradientBoostingClassifier

            model: Any = HistGradientBoostingClassifier(max_iter=30).fit(x, y)
        elif framework == "xgboost":
            import xgboost

            model = xgboost.XGBClassifier(n_estimators=30, max_depth=3).fit(x, y)
        else:
            import lightgbm

            model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(x, y)
        path = _save(model, directory / f"{kind}.joblib")
        x_test, _ = classification_data(50, seed=1)
        return ModelCase(
            kind,
            "classification",
            framework,
            path,
            model,
            x_test,  # type: ignore[arg-type]
            class_labels=labels,
        )
    if role == "regressor":
        x, y = regression_data(2000, seed=0)
        x_cal, y_cal = regression_data(1000, seed=1)
        x_test, y_test = regression_data(2000, seed=2)
        if framework == "sklearn":
            from sklearn.ensemble import HistGradientBoostingRegressor

            model = HistGradientBoostingRegressor(max_iter=60).fit(x, y)
        elif framework == "xgboost":
            import xgboost

            model = xgboost.XGBRegressor(n_estimators=60, max_depth=4).fit(x, y)
        else:
            import lightgbm

            model = lightgbm.LGBMRegressor(n_estimators=60, verbose=-1).fit(x, y)
        path = _save(model, directory / f"{kind}.joblib")
        calibration = directory / f"{kind}-calibration.npz"
        np.savez(calibration, X=x_cal, y=y_cal)
        return ModelCase(kind, "regression", framework, path, model, x_test, y_test, calibration)  # type: ignore[arg-type]
    # causal: randomized treatment, y = tau(x) t + x1 + 0.5 x2 + noise with tau(x) = 1 + 2 x0.
    # Both nuisances (E[y|x] and E[t|x]) and the CATE are linear, so LinearDML is well specified.
    from econml.dml import CausalForestDML, LinearDML
    from sklearn.linear_model import LassoCV, LogisticRegressionCV

    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, N_FEATURES))
    t = rng.binomial(1, 0.5, size=n)
    tau = 1 + 2 * x[:, 0]
    y = tau * t + x[:, 1] + 0.5 * x[:, 2] + rng.normal(scale=0.5, size=n)
    common = {
        "model_y": LassoCV(),
        "model_t": LogisticRegressionCV(),
        "discrete_treatment": True,
        "random_state": 0,
    }
    if role == "lineardml":
        model = LinearDML(**common).fit(y, t, X=x)
    else:
        model = CausalForestDML(n_estimators=100, **common).fit(y, t, X=x)
    path = _save(model, directory / f"{kind}.joblib")
    x_test = np.random.default_rng(3).normal(size=(200, N_FEATURES))
    return ModelCase(
        kind, "causal", "econml", path, model, x_test, true_effect=1 + 2 * x_test[:, 0]
    )


ALL_KINDS = (
    "sklearn-classifier",
    "xgboost-classifier",
    "lightgbm-classifier",
    "sklearn-regressor",
    "xgboost-regressor",
    "lightgbm-regressor",
    "econml-lineardml",
    "econml-causalforestdml",
    "xgboost-native-classifier",
    "lightgbm-native-regressor",
)
