"""Serving helpers copied into every bento BentoMesh builds (needs numpy, pydantic, the model lib).

Kept free of BentoMesh imports so a bento runs without BentoMesh installed.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

ARTIFACT_FILES = {
    "joblib": "model.joblib",
    "xgboost-json": "model.json",
    "xgboost-ubj": "model.ubj",
    "lightgbm-txt": "model.txt",
}
_PY_TYPES: dict[str, Any] = {"float": float, "int": int, "bool": bool}


def limit_threads() -> None:
    """One OpenMP/BLAS thread per worker: many threads per worker thrash on small requests."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


def row_model(features: list[dict[str, Any]]) -> type[BaseModel]:
    """A pydantic model of one row; accepts an object by name or an array in feature order."""
    names = [f["name"] for f in features]
    fields: dict[str, Any] = {}
    for f in features:
        py_type = _PY_TYPES[f.get("dtype", "float")]
        if f.get("allow_nan"):
            fields[f["name"]] = (py_type | None, Field(default=None, allow_inf_nan=True))
        elif py_type is float:
            fields[f["name"]] = (float, Field(allow_inf_nan=False))
        else:
            fields[f["name"]] = (py_type, Field(strict=py_type is bool))

    def _from_array(cls: type[BaseModel], value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) != len(names):
                raise ValueError(
                    f"row has {len(value)} values but the model takes {len(names)} "
                    f"features in this order: {', '.join(names)}"
                )
            return dict(zip(names, value, strict=True))
        return value

    validators: dict[str, Any] = {"_from_array": model_validator(mode="before")(_from_array)}
    row: type[BaseModel] = create_model(
        "Row",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __validators__=validators,
        **fields,
    )
    return row


def to_matrix(rows: list[BaseModel], names: list[str]) -> np.ndarray[Any, Any]:
    """Rows as a float matrix in feature order (missing values become NaN)."""
    matrix = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        values = row.__dict__
        for j, name in enumerate(names):
            value = values[name]
            matrix[i, j] = math.nan if value is None else value
    return matrix


class _LightGBMClassifier:
    """predict/predict_proba over a native LightGBM Booster."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict_proba(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        p = np.asarray(self.booster.predict(x))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.predict_proba(x).argmax(axis=1))


class _Regressor:
    """predict over a native booster."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.booster.predict(x))


def load_model(model_dir: str | Path, artifact_format: str, task: str) -> Any:
    """Load the artifact saved in the model store by the packager (already digest-verified)."""
    path = Path(model_dir) / ARTIFACT_FILES[artifact_format]
    if artifact_format == "joblib":
        import joblib

        return joblib.load(path)
    if artifact_format.startswith("xgboost"):
        import xgboost

        model = xgboost.XGBClassifier() if task == "classification" else xgboost.XGBRegressor()
        model.load_model(path)
        return model
    if artifact_format == "lightgbm-txt":
        import lightgbm

        booster = lightgbm.Booster(model_file=str(path))
        return _LightGBMClassifier(booster) if task == "classification" else _Regressor(booster)
    raise ValueError(f"unknown artifact format {artifact_format!r}")


def conformal_quantile(scores: np.ndarray[Any, Any], confidence: float) -> float:
    """Split-conformal half-width: the ceil((n+1)c)/n empirical quantile of sorted scores."""
    n = len(scores)
    rank = math.ceil((n + 1) * confidence)
    if rank > n:
        return math.inf
    return float(scores[rank - 1])


def read_config(model_dir: str | Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((Path(model_dir) / "bentomesh.json").read_text())
    return config
