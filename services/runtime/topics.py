"""Create the mesh topics explicitly, with a fixed partition count.

Auto-created topics get the broker's default partition count; after a broker restart (memory
storage) consumers can loop on unknown topics until they exist again.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.topics import ALL_TOPICS


async def ensure_topics(
    settings: KafkaSettings, *, partitions: int = 3, topics: tuple[str, ...] = ALL_TOPICS
) -> list[str]:
    """Create the missing topics; returns the names it created."""
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        return missing
    finally:
        await admin.close()
