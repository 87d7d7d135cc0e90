"""Bytes on the wire <-> typed CloudEvents.

Structured mode: the Kafka record value is the whole CloudEvent as JSON; the record key is the model
name, so all events about one model stay in order on one partition.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.events import DATA_BY_EVENT_TYPE, EventData

DataT = TypeVar("DataT", bound=EventData)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


def encode(event: CloudEvent[Any]) -> bytes:
    """Serialize to structured-mode JSON, leaving out unset optional attributes."""
    body = event.model_dump(mode="json")
    body = {k: v for k, v in body.items() if v is not None}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def partition_key(event: CloudEvent[Any]) -> bytes:
    """Record key: the model name when the event has one, else the chain id."""
    name = getattr(event.data, "model_name", None)
    return (name or event.chainid).encode()


def _describe(exc: ValidationError, limit: int = 5) -> EventDecodeError:
    """One readable line naming each offending field; ``field`` is the first of them."""
    parts = []
    fields = []
    for err in exc.errors()[:limit]:
        field = ".".join(str(p) for p in err["loc"])
        fields.append(field)
        parts.append(f"'{field}': {err['msg']}" if field else err["msg"])
    more = exc.error_count() - limit
    suffix = f"; and {more} more" if more > 0 else ""
    return EventDecodeError(
        "invalid event: " + "; ".join(parts) + suffix, field=fields[0] if fields else None
    )


def _load_json(raw: bytes | str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EventDecodeError(f"not a JSON object but {type(body).__name__}")
    _refuse_control_characters(body, "")
    return cast(dict[str, Any], body)


# C0 controls but tab and newline, DEL and C1: terminal escape sequences, NUL, carriage returns
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _refuse_control_characters(value: Any, path: str) -> None:
    """No string anywhere in an event (keys included) carries a control character."""
    if isinstance(value, str):
        found = CONTROL.search(value)
        if found is not None:
            raise EventDecodeError(
                f"'{path or '.'}': control character {found[0]!r} refused", field=path or None
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            _refuse_control_characters(key, where)
            _refuse_control_characters(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_control_characters(item, f"{path}.{i}")


def decode_as(raw: bytes | str, data_type: type[DataT]) -> CloudEvent[DataT]:
    """Parse ``raw`` as a CloudEvent whose data is ``data_type``, or raise EventDecodeError."""
    body = _load_json(raw)
    try:
        return CloudEvent[data_type].model_validate(body)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise _describe(exc) from exc


def decode(raw: bytes | str) -> CloudEvent[Any]:
    """Parse any BentoMesh event, choosing the data model from its ``type``."""
    body = _load_json(raw)
    event_type = body.get("type")
    data_type = DATA_BY_EVENT_TYPE.get(event_type) if isinstance(event_type, str) else None
    if data_type is None:
        known = ", ".join(sorted(DATA_BY_EVENT_TYPE))
        raise EventDecodeError(
            f"unknown event type {event_type!r}; expected one of {known}", field="type"
        )
    return decode_as(raw, data_type)
