"""Taking in an event another service produced: only if its legitimate producer signed it; any
other record goes to the dead-letter topic with the reason."""

from __future__ import annotations

from typing import Any

from faststream.kafka.annotations import KafkaMessage

from bentomesh_contracts.codec import decode_as
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import EventDecodeError
from services.errors import Unauthorized
from services.runtime.dead_letter import dead_letter
from services.runtime.trust import Trust


async def raw_body(message: Any) -> Any:
    """A FastStream decoder that leaves the record's bytes alone (they are checked first)."""
    return message.body


async def admitted(
    reader: Trust, message: KafkaMessage, data_type: type[Any], broker: Any, *, service: str
) -> CloudEvent[Any] | None:
    """The event in ``message`` once its signature checks out; None after dead-lettering it."""
    raw = bytes(message.body)
    try:
        reader.check(raw)
        return decode_as(raw, data_type)
    except (Unauthorized, EventDecodeError) as exc:
        reason = EventDecodeError(getattr(exc, "reason", str(exc)), field="signature")
        await dead_letter(broker, message.raw_message, raw, reason, service=service)
        return None
