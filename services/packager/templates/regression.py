"""Regression: point predictions and split-conformal prediction intervals, calibrated on
held-out data at packaging time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bentoml
import numpy as np
from pydantic import BaseModel, Field

from . import body_limit, fast
from . import helpers as bms
from . import live as lv
from . import rows as rq

BENTO = bms.load()
CONFIG, INPUT = BENTO.config, BENTO.input
LIVE = lv.LiveProfile(CONFIG.get("reference"), INPUT.names, CONFIG.get("prediction_log"))
SHORT = fast.Routes()  # answered on the short path once an instance is bound
RETURN_INTERVALS = bool(BENTO.service["options"].get("return_intervals", True))
if TYPE_CHECKING:
    Rows = list[dict[str, Any]]
else:
    Rows = rq.request_type(CONFIG["features"])


class Prediction(BaseModel):
    predictions: list[float] = Field(description="Point prediction of each row.")
    lower: list[float] | None = Field(default=None, description="Lower interval bounds.")
    upper: list[float] | None = Field(default=None, description="Upper interval bounds.")
    confidence: float | None = Field(default=None, description="Nominal coverage of intervals.")


@bentoml.service(**BENTO.options())
class Regressor:
    model_ref = BENTO.model

    def __init__(self) -> None:
        self.model = bms.load_model(
            BENTO.model.stored.path, CONFIG["artifact_format"], "regression"
        )
        scores = CONFIG.get("conformal_scores")
        self.scores = np.sort(np.asarray(scores)) if scores else None
        self.predict_batched = bms.MicroBatcher(
            LIVE.watching(INPUT.calling(self.model.predict), lambda yhat: yhat),
            merge=INPUT.merge,
        )
        SHORT.bind(self)
        bms.freeze_heap()

    @bentoml.api
    async def predict(
        self,
        rows: Rows = Field(
            description="Rows to score: objects by column name, arrays, or {columns, data}."
        ),
        intervals: bool = Field(
            default=RETURN_INTERVALS, description="Return prediction intervals."
        ),
        confidence: float = Field(
            default=0.9, gt=0, lt=1, description="Nominal interval coverage."
        ),
    ) -> Prediction:
        """Point predictions and, if calibrated, conformal prediction intervals."""
        yhat = np.asarray(await self.predict_batched(bms.prepared(INPUT, rows)), dtype=float)
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


body_limit.limit_body(Regressor)  # 413 past BENTOMESH_MAX_BODY_BYTES
lv.expose(Regressor, LIVE)  # what it receives, for the monitor
fast.expose(Regressor, SHORT)  # JSON predictions without BentoML's request machinery
