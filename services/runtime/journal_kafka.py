"""The journal and a Kafka-protocol broker: :func:`restore` replays it into a fresh broker
before any service starts; :class:`Recorder` appends every new record while the mesh runs and
snapshots the consumer groups' committed offsets, last of all when the mesh stops."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from bentomesh_contracts.kafka import KafkaSettings
from services.errors import MeshError
from services.runtime.journal import GroupOffsets, Journal, Partition, Record, translate

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Restored:
    records: int
    groups: int
    # where the recorder goes on from: the end of every partition after the replay
    ends: dict[Partition, int]


async def restore(
    settings: KafkaSettings,
    journal: Journal,
    topics: Iterable[str],
    *,
    partitions: int,
    retention_s: float | None = None,
    progress: Progress = lambda _: None,
) -> Restored:
    """Create the topics, replay every journaled record younger than ``retention_s`` in order,
    commit each group's offsets (translated to the offsets the replay gave), and rewrite the
    journal with what was kept and its new offsets."""
    counts = {**{topic: partitions for topic in topics}, **journal.topics()}
    await _create_topics(settings, counts)
    everything = list(journal.records())
    records = _retained(everything, retention_s)
    replayed = await _replay(settings, records, progress) if records else []
    old: dict[Partition, list[int]] = defaultdict(list)
    new: dict[Partition, list[int]] = defaultdict(list)
    for before, after in zip(records, replayed, strict=True):
        old[(before.topic, before.partition)].append(before.offset)
        new[(after.topic, after.partition)].append(after.offset)
    groups = {
        group: {tp: translate(offset, old[tp], new[tp]) for tp, offset in by.items()}
        for group, by in journal.offsets().items()
    }
    await _commit(settings, groups)
    if replayed != everything:
        journal.rewrite(replayed)
    journal.save_offsets(groups)
    journal.save_topics(counts)
    ends = {
        (topic, partition): (new[(topic, partition)][-1] + 1 if new[(topic, partition)] else 0)
        for topic, count in counts.items()
        for partition in range(count)
    }
    return Restored(records=len(records), groups=len(groups), ends=ends)


def _retained(records: list[Record], retention_s: float | None) -> list[Record]:
    if retention_s is None:
        return records
    cutoff_ms = (time.time() - retention_s) * 1000
    return [r for r in records if r.timestamp_ms is None or r.timestamp_ms >= cutoff_ms]


async def _create_topics(settings: KafkaSettings, counts: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=topic, num_partitions=count, replication_factor=1)
            for topic, count in counts.items()
            if topic not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


async def _replay(
    settings: KafkaSettings, records: list[Record], progress: Progress
) -> list[Record]:
    """Every record to its own partition, in order. One record per request: Tansu 0.6 reports
    a partition's end as one past the *first* record of its last batch, so batched writes
    would leave consumers' lag and history readers short."""
    by_partition: dict[Partition, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_partition[(record.topic, record.partition)].append(index)
    offsets: list[int] = [0] * len(records)
    done = 0
    producer = AIOKafkaProducer(acks="all", **settings.aiokafka_kwargs())
    await producer.start()

    async def replay_partition(indexes: list[int]) -> None:
        nonlocal done
        for index in indexes:
            record = records[index]
            metadata = await producer.send_and_wait(
                record.topic,
                record.value,
                key=record.key,
                partition=record.partition,
                headers=list(record.headers),
                timestamp_ms=record.timestamp_ms,
            )
            offsets[index] = metadata.offset
            done += 1
            if done % 2000 == 0:
                progress(f"journal: replayed {done} of {len(records)} records")

    try:
        await asyncio.gather(*(replay_partition(ix) for ix in by_partition.values()))
    finally:
        await producer.stop()
    return [
        Record(r.topic, r.partition, offset, r.key, r.value, r.headers, r.timestamp_ms)
        for r, offset in zip(records, offsets, strict=True)
    ]


async def _commit(settings: KafkaSettings, groups: GroupOffsets) -> None:
    for group, by in groups.items():
        if not by:
            continue
        consumer = AIOKafkaConsumer(
            group_id=group, enable_auto_commit=False, **settings.aiokafka_kwargs()
        )
        await consumer.start()
        try:
            parts = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in by.items()}
            consumer.assign(list(parts))
            await consumer.commit(parts)
        finally:
            await consumer.stop()


async def committed_offsets(settings: KafkaSettings, parts: list[Partition]) -> GroupOffsets:
    """Every consumer group's committed offsets on ``parts`` (groups that committed none are
    left out)."""
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs())
    await admin.start()
    try:
        names = [name for name, _ in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    groups: GroupOffsets = {}
    for group in names:
        consumer = AIOKafkaConsumer(
            group_id=group, enable_auto_commit=False, **settings.aiokafka_kwargs()
        )
        await consumer.start()
        try:
            found = {}
            for topic, partition in parts:
                offset = await consumer.committed(TopicPartition(topic, partition))
                if offset is not None:
                    found[(topic, partition)] = offset
        finally:
            await consumer.stop()
        if found:
            groups[group] = found
    return groups


class Recorder:
    """Appends every new record of the journaled partitions, and snapshots committed offsets
    every ``interval_s``; runs in a thread of its own so the mesh's launcher stays simple."""

    def __init__(
        self,
        settings: KafkaSettings,
        journal: Journal,
        starts: dict[Partition, int],
        *,
        interval_s: float = 2.0,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.starts = dict(starts)
        self.interval_s = interval_s
        self.recorded = 0
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="journal", daemon=True)

    def start(self, timeout: float = 30.0) -> Recorder:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise MeshError(f"the journal could not start: {self._error}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Record what is left up to the current end, save the offsets, and stop."""
        self._stopping.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # a failed journal must not take the mesh down
            self._error = error
            self._ready.set()
            logger.exception("journal stopped")

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.settings.aiokafka_kwargs())
        await consumer.start()
        try:
            parts = [TopicPartition(t, p) for t, p in self.starts]
            consumer.assign(parts)
            for tp in parts:
                consumer.seek(tp, self.starts[(tp.topic, tp.partition)])
            self._ready.set()
            loop = asyncio.get_running_loop()
            next_snapshot = loop.time() + self.interval_s
            while not self._stopping.is_set():
                await self._take(consumer, timeout_ms=200)
                if loop.time() >= next_snapshot:
                    await self._snapshot()
                    next_snapshot = loop.time() + self.interval_s
            end = await consumer.end_offsets(parts)
            while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
                await self._take(consumer, timeout_ms=500)
            await self._snapshot()
        finally:
            await consumer.stop()

    async def _take(self, consumer: AIOKafkaConsumer, *, timeout_ms: int) -> None:
        batch = await consumer.getmany(timeout_ms=timeout_ms)
        records = [
            Record(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                headers=tuple(r.headers),
                timestamp_ms=r.timestamp,
            )
            for found in batch.values()
            for r in found
        ]
        self.recorded += self.journal.append(records)

    async def _snapshot(self) -> None:
        """Save the groups' offsets; a failed attempt is logged and the next one tried, so a
        broker hiccup never ends the recording."""
        try:
            groups = await committed_offsets(self.settings, list(self.starts))
        except Exception as exc:
            logger.warning("journal: could not read committed offsets (%s); trying again", exc)
            return
        self.journal.save_offsets(groups)
