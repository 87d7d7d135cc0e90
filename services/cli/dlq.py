"""``bentomesh dlq list`` and ``bentomesh dlq replay``: inspect and re-drive dead letters.

A dead letter keeps the original bytes and key; replaying sends them, unchanged, back to the
topic they came from (after the producer or the mesh was fixed), with a header naming the dead
letter it came from. Nothing is removed from the dead-letter topic: it is the record of what
happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.runtime.dead_letter import dlq_headers
from services.runtime.history import read_topic

REPLAYED_HEADER = "bentomesh-replayed-from"


@dataclass(frozen=True)
class Letter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def ref(self) -> str:
        """How to name it on the command line: ``partition:offset`` in the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def source_topic(self) -> str:
        return self.headers.get("source-topic", "")


async def read_letters(settings: KafkaSettings) -> list[Letter]:
    """Every dead letter, oldest first (no consumer group: reading changes nothing)."""
    letters = [
        Letter(
            r.partition,
            r.offset,
            r.timestamp,
            r.key,
            r.value or b"",
            dlq_headers(list(r.headers or [])),
        )
        for r in await read_topic(settings, topics.DEAD_LETTER)
    ]
    return sorted(letters, key=lambda letter: letter.timestamp_ms)


def select(letters: Iterable[Letter], refs: Iterable[str], reason: str | None) -> list[Letter]:
    """The letters named by ``refs`` (``partition:offset``), or all, narrowed by reason text."""
    wanted = set(refs)
    chosen = [letter for letter in letters if not wanted or letter.ref in wanted]
    missing = wanted - {letter.ref for letter in chosen}
    if missing:
        raise KeyError(f"no dead letter {sorted(missing)[0]} (see `bentomesh dlq list`)")
    if reason:
        chosen = [c for c in chosen if reason.lower() in c.headers.get("reason", "").lower()]
    return chosen


async def replay(settings: KafkaSettings, letters: list[Letter]) -> int:
    """Send each letter's original bytes back to its source topic; returns how many were sent."""
    producer = AIOKafkaProducer(acks="all", **settings.aiokafka_kwargs())
    try:
        await producer.start()
        for letter in letters:
            if letter.source_topic not in topics.ALL_TOPICS:
                raise ValueError(f"dead letter {letter.ref} names no mesh source topic")
            await producer.send_and_wait(
                letter.source_topic,
                letter.value,
                key=letter.key,
                headers=[(REPLAYED_HEADER, f"{topics.DEAD_LETTER}:{letter.ref}".encode())],
            )
        return len(letters)
    finally:
        await producer.stop()
