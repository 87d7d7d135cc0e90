"""What every event's data shares: frozen, no unknown fields, fields added later written only
when set; and the small vocabularies the events use."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

Framework = Literal["sklearn", "xgboost", "lightgbm", "econml"]
Task = Literal["classification", "regression", "causal"]
Stage = Literal["packager", "builder", "deployer", "monitor"]
Severity = Literal["info", "warning", "critical"]
AlertState = Literal["firing", "resolved"]


class EventData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    ADDED_LATER: ClassVar[tuple[str, ...]] = ()  # written only when set: older readers forbid them

    @model_serializer(mode="wrap")
    def _leave_out_unset_later_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        unset = [n for n in self.ADDED_LATER if isinstance(data, dict) and data.get(n) is None]
        return {k: v for k, v in data.items() if k not in unset} if unset else data
