"""Dead letters: the original bytes of an event a service could not read, plus the reason.

The record value is left exactly as received (so it can be inspected and replayed); everything the
mesh adds travels in headers prefixed ``bentomesh-dlq-``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker

from bentomesh_contracts import topics
from bentomesh_contracts.errors import EventDecodeError

logger = logging.getLogger("bentomesh.stage")

HEADER_PREFIX = "bentomesh-dlq-"


@dataclass(frozen=True)
class DeadLetter:
    """Where a message came from and why it was refused."""

    value: bytes
    key: bytes | None
    reason: str
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    field: str | None = None
    error_type: str = "EventDecodeError"

    def headers(self) -> dict[str, str]:
        headers = {
            "reason": self.reason,
            "error-type": self.error_type,
            "service": self.service,
            "source-topic": self.source_topic,
            "source-partition": str(self.source_partition),
            "source-offset": str(self.source_offset),
            "time": datetime.now(UTC).isoformat(),
        }
        if self.field:
            headers["field"] = self.field
        return {HEADER_PREFIX + k: v for k, v in headers.items()}


def dlq_headers(headers: list[tuple[str, bytes]] | dict[str, str]) -> dict[str, str]:
    """The ``bentomesh-dlq-*`` headers of a record, prefix removed."""
    items = headers.items() if isinstance(headers, dict) else headers
    out = {}
    for key, value in items:
        if key.startswith(HEADER_PREFIX):
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            out[key.removeprefix(HEADER_PREFIX)] = text
    return out


async def dead_letter(
    broker: KafkaBroker, record: Any, raw: bytes, error: EventDecodeError, *, service: str
) -> None:
    """Send the original bytes of ``record`` to the dead-letter topic with the reason."""
    letter = DeadLetter(
        value=raw,
        key=getattr(record, "key", None),
        reason=error.reason,
        field=error.field,
        service=service,
        source_topic=getattr(record, "topic", "?"),
        source_partition=int(getattr(record, "partition", -1)),
        source_offset=int(getattr(record, "offset", -1)),
    )
    logger.warning(
        "%s: dead-lettered %s[%s]@%s: %s",
        service,
        letter.source_topic,
        letter.source_partition,
        letter.source_offset,
        letter.reason,
    )
    await broker.publish(letter.value, topics.DEAD_LETTER, key=letter.key, headers=letter.headers())
