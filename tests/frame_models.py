"""Models as people train them: on pandas DataFrames with human column names, string and
categorical columns, missing values. Shared by the served-frame tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from services.demo.examples import churn_pipeline, churn_table

FRAME_KINDS = (
    "churn-pipeline",
    "hgb-categorical",
    "lightgbm-categorical",
    "xgboost-categorical",
    "breast-cancer",
    "wine",
)


@dataclass(frozen=True)
class FrameCase:
    kind: str
    path: Path
    model: Any
    x_test: pd.DataFrame
    class_labels: tuple[str, ...]


def _categorical(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for column in ("plan type", "payment/method"):
        out[column] = out[column].astype("category")
    return out


def make_frame_case(kind: str, directory: Path) -> FrameCase:
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    directory.mkdir(parents=True, exist_ok=True)
    table, labels = churn_table()
    if kind == "churn-pipeline":
        x, y = table, labels
        model = churn_pipeline(handle_unknown="error").fit(x, y)
    elif kind == "hgb-categorical":
        x, y = _categorical(table), labels
        model = HistGradientBoostingClassifier(max_iter=40, categorical_features="from_dtype")
        model.fit(x, y)
    elif kind == "lightgbm-categorical":
        import lightgbm

        x, y = _categorical(table), labels
        model = lightgbm.LGBMClassifier(n_estimators=40, verbose=-1).fit(x, y)
    elif kind == "xgboost-categorical":
        import xgboost

        x, y = _categorical(table), (labels == "churns").astype(int)
        model = xgboost.XGBClassifier(n_estimators=40, enable_categorical=True, max_depth=3)
        model.fit(x, y)
    elif kind == "breast-cancer":
        data = load_breast_cancer(as_frame=True)
        x, y = data.data, data.target.map(dict(enumerate(data.target_names)))
        model = RandomForestClassifier(n_estimators=30, random_state=0).fit(x, y)
    elif kind == "wine":
        data = load_wine(as_frame=True)
        x, y = data.data, data.target.map(dict(enumerate(data.target_names)))
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    else:
        raise ValueError(kind)
    path = directory / f"{kind}.joblib"
    joblib.dump(model, path)
    classes = tuple(str(c) for c in model.classes_)
    return FrameCase(kind, path, model, x.iloc[:40].copy(), classes)


def request_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as a client sends them: objects keyed by column name, gaps as null."""
    plain = frame.astype(object)
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in plain.to_dict(orient="records")
    ]
