"""CloudEvents 1.0 envelope (structured JSON mode) with BentoMesh lineage extensions.

``chainid`` is one id for the whole life of one model version: its ``ModelRegistered`` and
every event that follows from it carry it. ``causationid`` is the ``id`` of the event that caused
this one. ``chaintime`` is when the chain began (the registration's ``time``): stages carry it
forward, so the deployer can tell a late event of an older registration from a newer one.
Follow-up events get a deterministic id derived from their cause, so a stage that processes a
redelivered event emits an event with the same id, and consumers can drop the duplicate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bentomesh_contracts.events import EventData

DataT = TypeVar("DataT", bound=EventData)

_LINEAGE_NAMESPACE = uuid.UUID("5f1b0c1e-6c3a-4c38-9d51-6b2d7f0a9e11")


class CloudEvent(BaseModel, Generic[DataT]):
    """A BentoMesh event: CloudEvents 1.0 attributes plus the typed ``data``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = Field(default="1.0", description="CloudEvents version.")
    id: str = Field(min_length=1, description="Unique id of this event.")
    source: str = Field(
        min_length=1,
        description="URI reference of the producer.",
        examples=["bentomesh/packager", "training/churn"],
    )
    type: str = Field(description="Event type, e.g. 'bentomesh.model.registered.v1'.")
    time: datetime = Field(description="When the event was produced (RFC 3339).")
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", description="Media type of data."
    )
    subject: str | None = Field(
        default=None, description="'<model_name>:<model_version>' the event is about."
    )
    chainid: str = Field(
        min_length=1,
        description="Lineage id shared by every event about one model version.",
    )
    causationid: str | None = Field(
        default=None, description="id of the event that caused this one (absent for the first)."
    )
    chaintime: datetime | None = Field(
        default=None,
        description="Extension: when the chain began, i.e. the time of its ModelRegistered "
        "(absent on that first event, whose own time it is).",
    )
    data: DataT = Field(description="The event's payload.")
    signature: str | None = Field(
        default=None,
        description="Extension: 'ed25519:<key id>:<base64url>', the producer's Ed25519 "
        "signature over the canonical event without this attribute (see "
        "bentomesh_contracts.signing); every consumer refuses events without a valid one.",
    )

    @model_validator(mode="after")
    def _type_matches_data(self) -> CloudEvent[DataT]:
        expected = type(self.data).EVENT_TYPE
        if self.type != expected:
            raise ValueError(f"type is {self.type!r} but data is a {expected!r} payload")
        return self


def chain_time(event: CloudEvent[Any]) -> datetime:
    """When the event's chain began: its registration's time."""
    return event.chaintime or event.time


def event_class(data_type: type[DataT]) -> type[CloudEvent[DataT]]:
    """``CloudEvent[data_type]``, the envelope model for one data type."""
    return CloudEvent[data_type]  # type: ignore[valid-type]


def _subject_of(data: EventData) -> str | None:
    name = getattr(data, "model_name", None)
    version = getattr(data, "model_version", None)
    if name and version:
        return f"{name}:{version}"
    return None


def new_chain(data: DataT, *, source: str, chainid: str | None = None) -> CloudEvent[DataT]:
    """Start a lineage chain with ``data`` (normally a ``ModelRegistered``)."""
    event_id = str(uuid.uuid4())
    return event_class(type(data))(
        id=event_id,
        source=source,
        type=type(data).EVENT_TYPE,
        time=datetime.now(UTC),
        subject=_subject_of(data),
        chainid=chainid or event_id,
        data=data,
    )


def follow_up(
    cause: CloudEvent[Any], data: DataT, *, source: str, key: str = ""
) -> CloudEvent[DataT]:
    """The event ``data`` caused by ``cause``: same chain, an id derived from the cause.

    ``key`` tells apart several events of one type caused by the same event (e.g. alerts).
    """
    event_type = type(data).EVENT_TYPE
    event_id = str(uuid.uuid5(_LINEAGE_NAMESPACE, f"{cause.id}/{event_type}/{key}"))
    return event_class(type(data))(
        id=event_id,
        source=source,
        type=event_type,
        time=datetime.now(UTC),
        subject=_subject_of(data) or cause.subject,
        chainid=cause.chainid,
        causationid=cause.id,
        chaintime=chain_time(cause),
        data=data,
    )
