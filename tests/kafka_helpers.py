"""Reading mesh topics in tests: collect every event and wait for the one you expect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bentomesh_contracts import decode, topics
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.events import EventData, StageFailed
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.keys import SigningSettings
from bentomesh_contracts.publish import send_event
from bentomesh_contracts.signing import MAY_EMIT

DataT = TypeVar("DataT", bound=EventData)


class Collector:
    """Reads the given topics from the beginning (no consumer group) into ``records``."""

    def __init__(self, settings: KafkaSettings, names: tuple[str, ...] = topics.ALL_TOPICS) -> None:
        self.settings = settings
        self.names = names
        self.records: list[Any] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Collector:
        self._consumer = AIOKafkaConsumer(fetch_max_wait_ms=20, **self.settings.aiokafka_kwargs())
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        parts = [
            TopicPartition(t, p)
            for t in self.names
            for p in (self._consumer.partitions_for_topic(t) or {0})
        ]
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=100)
        for records in batch.values():
            self.records.extend(records)

    def events(self, topic: str) -> list[Any]:
        """The events on ``topic``; records that are no event (other tests' malformed input
        on a shared broker) are left out."""
        return [e for r in self.records if r.topic == topic and (e := _event(r.value))]

    async def wait_for(
        self, predicate: Callable[[Any], bool], *, topic: str, timeout: float = 120
    ) -> Any:
        """The first event on ``topic`` matching ``predicate`` (dead letters: raw records)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records:
                if record.topic != topic:
                    continue
                item = record if topic == topics.DEAD_LETTER else _event(record.value)
                if item is not None and predicate(item):
                    return item
            await self.poll()
        raise AssertionError(f"nothing matching on {topic} within {timeout}s")


def _event(value: bytes | None) -> Any:
    try:
        return decode(value) if value is not None else None
    except EventDecodeError:
        return None


async def wait_deployed(collector: Collector, chain_id: str, timeout: float) -> Any:
    """The ``Deployed`` event of a chain; fails at once with the reason if a stage failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in collector.events(topics.STAGE_FAILED):
            if event.chainid == chain_id:
                raise AssertionError(f"stage failed: {event.data}")
        for event in collector.events(topics.DEPLOYED):
            if event.chainid == chain_id:
                return event
        await collector.poll()
    raise AssertionError(f"chain {chain_id} not deployed within {timeout}s")


async def produce_raw(
    settings: KafkaSettings, topic: str, value: bytes, key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def signed_as(producer: str, event: CloudEvent[DataT]) -> CloudEvent[DataT]:
    """``event`` signed with the session's key of ``producer`` (what that service would emit)."""
    return SigningSettings().keys.signer(producer).sign(event)


def producer_for(event: CloudEvent[Any]) -> str:
    """The producer that legitimately emits ``event``."""
    if isinstance(event.data, StageFailed):
        return event.data.stage
    return next(p for p, types in MAY_EMIT.items() if event.type in types)


async def send_signed(event: CloudEvent[Any], settings: KafkaSettings) -> None:
    """Send ``event`` as its legitimate producer would: signed with that producer's key."""
    if event.signature is None:
        event = signed_as(producer_for(event), event)
    await send_event(event, settings)
