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
