"""Compiled tree ensembles in a served model. This module imports nothing of BentoMesh: it
runs inside bentos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class CompiledTrees:
    """A tree ensemble compiled by the packager (tl2cgen), with the original's ``predict_proba``
    and ``predict``; the packager checked it is equal to the original before saving it."""

    def __init__(self, library: Path, task: str) -> None:
        import tl2cgen

        self.task = task
        self.predictor = tl2cgen.Predictor(str(library), nthread=1)
        self.matrix = tl2cgen.DMatrix

    def _raw(self, rows: Any) -> np.ndarray[Any, Any]:
        x = np.ascontiguousarray(rows, dtype=np.float64)
        raw = np.asarray(self.predictor.predict(self.matrix(x)), dtype=np.float64)
        return raw.reshape(len(x), -1)

    def predict_proba(self, rows: Any) -> np.ndarray[Any, Any]:
        raw = self._raw(rows)
        return np.column_stack([1.0 - raw[:, 0], raw[:, 0]]) if raw.shape[1] == 1 else raw

    def predict(self, rows: Any) -> np.ndarray[Any, Any]:
        return self._raw(rows)[:, 0]


class CompiledLinear:
    """A linear model (logistic or least squares) as its coefficients, with the original's
    ``predict_proba`` and ``predict``; serving it imports neither scikit-learn nor SciPy (2.5 s
    of a model server's start on these machines). The packager checked it equals the original."""

    def __init__(self, path: Path, task: str) -> None:
        with np.load(path) as saved:
            self.coef = np.ascontiguousarray(saved["coef"], dtype=np.float64)  # (outputs, features)
            self.intercept = np.asarray(saved["intercept"], dtype=np.float64)  # (outputs,)
        self.task = task

    def _decision(self, rows: Any) -> np.ndarray[Any, Any]:
        x = np.asarray(rows, dtype=np.float64)
        return np.asarray(x @ self.coef.T + self.intercept)

    def predict_proba(self, rows: Any) -> np.ndarray[Any, Any]:
        z = self._decision(rows)
        if z.shape[1] == 1:  # binary: the logistic of the one decision value
            p = np.exp(-np.logaddexp(0.0, -z[:, 0]))  # 1 / (1 + e^-z), no overflow
            return np.column_stack([1.0 - p, p])
        z = np.exp(z - z.max(axis=1, keepdims=True))  # multinomial: softmax
        return np.asarray(z / z.sum(axis=1, keepdims=True))

    def predict(self, rows: Any) -> np.ndarray[Any, Any]:
        return self._decision(rows)[:, 0]
