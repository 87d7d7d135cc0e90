"""Regression: point predictions and split-conformal prediction intervals, calibrated on
held-out data at packaging time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bentoml
import numpy as np
from pydantic import BaseModel, Field

from . import helpers as bms

bms.limit_threads()

SERVICE = bms.service_settings()
MODEL = bentoml.models.BentoModel(SERVICE["model_tag"])
CONFIG = bms.read_config(MODEL.stored.path)
NAMES = [f["name"] for f in CONFIG["features"]]
RETURN_INTERVALS = bool(SERVICE["options"].get("return_intervals", True))
if TYPE_CHECKING:
    Row = dict[str, Any]
else:
    Row = bms.row_type(CONFIG["features"])


class Prediction(BaseModel):
    predictions: list[float] = Field(description="Point prediction of each row.")
    lower: list[float] | None = Field(default=None, description="Lower interval bounds.")
    upper: list[float] | None = Field(default=None, description="Upper interval bounds.")
    confidence: float | None = Field(default=None, description="Nominal coverage of intervals.")


@bentoml.service(
    name=SERVICE["service_name"],
    description=SERVICE["description"],
    workers=SERVICE["workers"],
    traffic=bms.TRAFFIC,
    metrics=bms.METRICS,
)
class Regressor:
    model_ref = MODEL

    def __init__(self) -> None:
        self.model = bms.load_model(MODEL.stored.path, CONFIG["artifact_format"], "regression")
        scores = CONFIG.get("conformal_scores")
        self.scores = np.sort(np.asarray(scores)) if scores else None
        self.predict_batched = bms.MicroBatcher(self.model.predict)
        bms.freeze_heap()

    @bentoml.api
    async def predict(
        self,
        rows: list[Row] = Field(min_length=1, max_length=10_000, description="Rows to score."),
        intervals: bool = Field(
            default=RETURN_INTERVALS, description="Return prediction intervals."
        ),
        confidence: float = Field(
            default=0.9, gt=0, lt=1, description="Nominal interval coverage."
        ),
    ) -> Prediction:
        """Point predictions and, if calibrated, conformal prediction intervals."""
        yhat = np.asarray(await self.predict_batched(bms.to_matrix(rows, NAMES)), dtype=float)
        if not intervals:
            return Prediction(predictions=yhat.tolist())
        if self.scores is None:
            raise bentoml.exceptions.InvalidArgument(
                "this model was registered without calibration data; intervals are unavailable"
            )
        half = bms.conformal_quantile(self.scores, confidence)
        if not np.isfinite(half):
            raise bentoml.exceptions.InvalidArgument(
                f"confidence {confidence} needs more calibration rows than {len(self.scores)}"
            )
        return Prediction(
            predictions=yhat.tolist(),
            lower=(yhat - half).tolist(),
            upper=(yhat + half).tolist(),
            confidence=confidence,
        )
