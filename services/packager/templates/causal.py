"""Causal inference: the conditional average treatment effect (CATE) of each row, with
confidence intervals, and the average effect. Features are the effect modifiers X; the
treatment and outcome names are in ``service.json``."""

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


class Effects(BaseModel):
    effects: list[float] = Field(description="Conditional average treatment effect of each row.")
    average_effect: float = Field(description="Mean effect over the rows of the request.")


class EffectIntervals(BaseModel):
    effects: list[float] = Field(description="CATE of each row.")
    lower: list[float] = Field(description="Lower bounds of the CATE intervals.")
    upper: list[float] = Field(description="Upper bounds of the CATE intervals.")
    alpha: float = Field(description="Intervals have nominal coverage 1 - alpha.")
    average_effect: float = Field(description="Average effect over the rows.")
    average_lower: float = Field(description="Lower bound of the average effect.")
    average_upper: float = Field(description="Upper bound of the average effect.")


@bentoml.service(**BENTO.options(timeout=60, max_concurrency=256))
class CausalEffects:
    model_ref = BENTO.model

    def __init__(self) -> None:
        self.model = bms.load_model(BENTO.model.stored.path, CONFIG["artifact_format"], "causal")
        SHORT.bind(self)
        bms.freeze_heap()

    @bentoml.api
    async def effect(
        self,
        rows: Rows = Field(
            description="Rows (X): objects by column name, arrays, or {columns, data}."
        ),
    ) -> Effects:
        """CATE per row and the average over the batch."""
        batch = bms.prepared(INPUT, rows)
        effect = LIVE.watching(INPUT.calling(self.model.effect), lambda t: np.ravel(t))
        tau = np.asarray(effect(batch), dtype=float).ravel()
        return Effects(effects=tau.tolist(), average_effect=float(tau.mean()))

    @bentoml.api
    async def effect_interval(
        self,
        rows: Rows = Field(
            description="Rows (X): objects by column name, arrays, or {columns, data}."
        ),
        alpha: float = Field(default=0.05, gt=0, lt=1, description="1 - nominal coverage."),
    ) -> EffectIntervals:
        """CATE per row with confidence intervals, and the average effect with its interval."""
        x = bms.prepared(INPUT, rows)
        x = INPUT.calling(lambda frame: frame)(x)  # the matrix, or the frame built from rows
        tau = np.asarray(self.model.effect(x), dtype=float).ravel()
        lo, hi = self.model.effect_interval(x, alpha=alpha)
        ate_lo, ate_hi = self.model.ate_interval(x, alpha=alpha)
        return EffectIntervals(
            effects=tau.tolist(),
            lower=np.asarray(lo, dtype=float).ravel().tolist(),
            upper=np.asarray(hi, dtype=float).ravel().tolist(),
            alpha=alpha,
            average_effect=float(tau.mean()),
            average_lower=float(np.asarray(ate_lo).ravel()[0]),
            average_upper=float(np.asarray(ate_hi).ravel()[0]),
        )


body_limit.limit_body(CausalEffects)  # 413 past BENTOMESH_MAX_BODY_BYTES
lv.expose(CausalEffects, LIVE)  # what it receives, for the monitor
fast.expose(CausalEffects, SHORT)  # JSON predictions without BentoML's request machinery
