"""Dead letters: the original bytes of an event a service could not read, plus the reason.

The record value is left exactly as received (so it can be inspected and replayed); everything the
mesh adds travels in headers prefixed ``bentomesh-dlq-``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
