"""Classification: the predicted class and the class probabilities of each row."""

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
if TYPE_CHECKING:
    Rows = list[dict[str, Any]]
else:
    Rows = rq.request_type(CONFIG["features"])


class Prediction(BaseModel):
    labels: list[str] = Field(description="Predicted class of each row.")


class Probabilities(BaseModel):
    labels: list[str] = Field(description="Predicted class of each row.")
    probabilities: list[dict[str, float]] = Field(description="Class -> probability, per row.")


@bentoml.service(**BENTO.options())
class Classifier:
    model_ref = BENTO.model

    def __init__(self) -> None:
        self.model = bms.load_model(
            BENTO.model.stored.path, CONFIG["artifact_format"], "classification"
        )
        self.labels = np.asarray(CONFIG["class_labels"], dtype=object)
        self.label_list = [str(label) for label in CONFIG["class_labels"]]
        labels = self.labels
        self.predict_proba_batched = bms.MicroBatcher(
            LIVE.watching(
                INPUT.calling(self.model.predict_proba),
                lambda proba: labels[np.asarray(proba).argmax(axis=1)].tolist(),
            ),
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
    ) -> Prediction:
        """Predicted class label of each row."""
        proba = await self.predict_proba_batched(bms.prepared(INPUT, rows))
        return Prediction(labels=self.labels[proba.argmax(axis=1)].tolist())

    @bentoml.api
    async def predict_proba(
        self,
        rows: Rows = Field(
            description="Rows to score: objects by column name, arrays, or {columns, data}."
        ),
    ) -> Probabilities:
        """Class probabilities of each row, keyed by the registered class names."""
        proba = await self.predict_proba_batched(bms.prepared(INPUT, rows))
        labels = self.label_list
        return Probabilities(
            labels=self.labels[proba.argmax(axis=1)].tolist(),
            probabilities=[dict(zip(labels, p, strict=False)) for p in proba.tolist()],
        )


body_limit.limit_body(Classifier)  # 413 past BENTOMESH_MAX_BODY_BYTES
lv.expose(Classifier, LIVE)  # what it receives, for the monitor
fast.expose(Classifier, SHORT)  # JSON predictions without BentoML's request machinery
