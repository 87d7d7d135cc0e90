"""Read mesh topics and print them readably (``bentomesh events tail``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from bentomesh_contracts import topics
from bentomesh_contracts.codec import decode, encode
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.kafka import KafkaSettings
from services.runtime.dead_letter import dlq_headers
from services.status.render import dead_letter_line, event_line

EVENT_TOPICS = tuple(t for t in topics.ALL_TOPICS if t != topics.DEAD_LETTER)


async def tail_events(
    settings: KafkaSettings,
    *,
    topic_names: Sequence[str] = topics.ALL_TOPICS,
    chain: str | None = None,
    from_beginning: bool = True,
    follow: bool = True,
    emit: Callable[[str], None] = print,
    idle_timeout: float | None = None,
    as_json: bool = False,
) -> int:
    """Print events as lines; returns how many were printed.

    Without ``follow`` it stops once it has read up to the end offsets seen at start, and prints
    in time order across partitions. A consumer with no group is used, so tailing never disturbs
    the services' offsets.
    """
    buffered: list[tuple[int, str]] = []
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, fetch_max_wait_ms=50, **settings.aiokafka_kwargs()
    )
    printed = 0
    try:
        await consumer.start()  # inside: a failed start still stops (closes) the consumer
        partitions = [
            TopicPartition(t, p)
            for t in topic_names
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        end = await consumer.end_offsets(partitions) if not follow else {}
        while True:
            if not follow and await _caught_up(consumer, end):
                for _, text in sorted(buffered, key=lambda item: item[0]):
                    emit(text)
                return printed
            batch = await consumer.getmany(timeout_ms=200)
            if not batch and idle_timeout is not None:
                idle_timeout -= 0.2
                if idle_timeout <= 0:
                    return printed
            for records in batch.values():
                for record in records:
                    line = _line(record, chain, as_json)
                    if line is None:
                        continue
                    printed += 1
                    if follow:
                        emit(line)
                    else:
                        buffered.append((record.timestamp, line))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or {0}


async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


def _line(record: object, chain: str | None, as_json: bool = False) -> str | None:
    """One printable line for a record: readable, or (``as_json``) one JSON object per line."""
    value: bytes = getattr(record, "value", b"") or b""
    topic = getattr(record, "topic", "?")
    if topic == topics.DEAD_LETTER:
        if chain is not None:
            return None
        when = datetime.fromtimestamp(getattr(record, "timestamp", 0) / 1000, UTC)
        headers = dlq_headers(list(getattr(record, "headers", []) or []))
        if as_json:
            body = value.decode(errors="replace")
            return json.dumps({"topic": topic, "time": when.isoformat(), **headers, "value": body})
        return dead_letter_line(when.strftime("%H:%M:%S.%f")[:-3], headers, len(value))
    try:
        event = decode(value)
    except EventDecodeError as exc:
        if chain is not None:
            return None  # an unreadable record belongs to no chain
        if as_json:
            return json.dumps({"topic": topic, "unreadable": exc.reason})
        return f"{'?':<12}  {'unreadable':<18} {topic}: {exc.reason}"
    if chain is not None and not event.chainid.startswith(chain):
        return None
    return encode(event).decode() if as_json else event_line(event)


def run_tail(settings: KafkaSettings, **kwargs: object) -> int:
    try:
        return asyncio.run(tail_events(settings, **kwargs))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return 0
