"""Read a topic from its beginning to its current end, without a consumer group (reading
changes nothing): the dead letters for ``bentomesh dlq``, past alerts for the monitor."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bentomesh_contracts.kafka import KafkaSettings


async def read_topic(settings: KafkaSettings, topic: str) -> list[Any]:
    """Every record now in ``topic`` (aiokafka ``ConsumerRecord``s), in partition order."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.aiokafka_kwargs())
    try:
        await consumer.start()  # inside: a failed start still stops (closes) the consumer
        await consumer._client.force_metadata_update()
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        records: list[Any] = []
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for found in batch.values():
                records.extend(found)
        return records
    finally:
        await consumer.stop()
