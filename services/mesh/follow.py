"""Follow one model version's chain of events until it is deployed or a stage fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bentomesh_contracts.codec import decode
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.pipeline import CHAIN_TOPICS, TERMINAL_EVENTS
from services.runtime.trust import Trust, verified


class ChainFollower:
    """Reads the chain topics from their current end; start it *before* publishing."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic_names: tuple[str, ...] = CHAIN_TOPICS,
        *,
        trust: Trust | None = None,
    ) -> None:
        self.settings = settings
        self.topic_names = topic_names
        self.consumer: AIOKafkaConsumer | None = None
        self.trust = trust or Trust.load("cli")

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            enable_auto_commit=False, fetch_max_wait_ms=20, **self.settings.aiokafka_kwargs()
        )
        try:
            await self.consumer.start()
        except BaseException:
            await self.consumer.stop()
            raise
        await self.consumer._client.force_metadata_update()
        parts = [
            TopicPartition(t, p)
            for t in self.topic_names
            for p in sorted(self.consumer.partitions_for_topic(t) or {0})
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the end offsets now, before anything is published
            await self.consumer.position(tp)

    async def until_done(
        self, chain_id: str, on_event: Callable[[Any], None], limit_s: float
    ) -> Any:
        """Returns the ``Deployed`` or ``StageFailed`` event that ends the chain."""
        done = await self.until_all_done({chain_id}, on_event, limit_s)
        return done[chain_id]

    async def until_all_done(
        self, chain_ids: set[str], on_event: Callable[[Any], None], limit_s: float
    ) -> dict[str, Any]:
        """The final event of each chain, keyed by chain id."""
        done: dict[str, Any] = {}
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for event in await self._next_events():
                if event.chainid not in chain_ids or event.chainid in done:
                    continue
                on_event(event)
                if isinstance(event.data, TERMINAL_EVENTS):
                    done[event.chainid] = event
                    if len(done) == len(chain_ids):
                        return done
        missing = len(chain_ids) - len(done)
        raise TimeoutError(f"{missing} chain(s) did not finish within {limit_s:.0f}s")

    async def until(
        self, predicate: Callable[[Any], bool], limit_s: float, what: str = "event"
    ) -> Any:
        """The first event read that satisfies ``predicate``."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for event in await self._next_events():
                if predicate(event):
                    return event
        raise TimeoutError(f"no {what} within {limit_s:.0f}s")

    async def _next_events(self) -> list[Any]:
        """The mesh events of one fetch (up to 200 ms); records that are not events, or not
        signed by their producer (a forged ``Deployed`` must not end a chain), are skipped."""
        assert self.consumer is not None
        batch = await self.consumer.getmany(timeout_ms=200)
        events = []
        for records in batch.values():
            for record in records:
                if not verified(self.trust, record.value):
                    continue
                try:
                    events.append(decode(record.value))
                except EventDecodeError:
                    continue
        return events

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


async def send_and_follow(
    event: CloudEvent[Any],
    settings: KafkaSettings,
    on_event: Callable[[Any], None],
    limit_s: float,
) -> Any:
    """Publish ``event`` and return the event that ends its chain (``Deployed`` or
    ``StageFailed``). The producer starts first (its errors say what is wrong with the
    connection), then the follower, before anything is sent: no event of the chain is missed."""
    from bentomesh_contracts.publish import send_with, started_producer

    async with started_producer(settings) as producer:
        follower = ChainFollower(settings)
        await follower.start()
        try:
            await send_with(producer, event)
            return await follower.until_done(event.chainid, on_event, limit_s)
        finally:
            await follower.stop()
