"""One monitor of a mesh checks and alerts at a time; the others stand by.

Every replica keeps its watch set and status page, but two replicas checking the same
deployments would announce every transition twice, under different ids. Kafka's group protocol
picks the one that acts, across processes and hosts: the replicas join one consumer group on
the ``HealthAlert`` topic (its partitions paused: nothing is read through it), and the member
assigned partition 0 leads. When the leader dies its session times out, the group rebalances
and another replica takes over (it first takes up the alert states the leader announced).
A leader keeps leading while the broker is unreachable, so an outage of the broker never
silences the checks; the cost is that two replicas may both lead for the moment of a
rebalance.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.runtime.settings import RuntimeSettings

logger = logging.getLogger("bentomesh.monitor")

GROUP = "bentomesh-monitor-leader"
LEAD_PARTITION = TopicPartition(topics.HEALTH_ALERT, 0)


class Leadership:
    """``leading`` is set while this replica leads, ``standing_by`` while it does not."""

    def __init__(self, kafka: KafkaSettings, runtime: RuntimeSettings | None = None) -> None:
        self.kafka = kafka
        self.runtime = runtime or RuntimeSettings()
        self.leading = asyncio.Event()
        self.standing_by = asyncio.Event()
        self.standing_by.set()
        self.terms = 0

    def _set(self, leads: bool) -> None:
        if leads and not self.leading.is_set():
            self.terms += 1
            logger.info("this monitor leads now: it checks and alerts")
        elif not leads and self.leading.is_set():
            logger.info("another monitor leads now: this one stands by")
        (self.leading if leads else self.standing_by).set()
        (self.standing_by if leads else self.leading).clear()

    async def run(self) -> None:
        """Take part in the group until cancelled; retries while the broker is unreachable."""
        while True:
            consumer = AIOKafkaConsumer(
                group_id=GROUP,
                enable_auto_commit=False,
                session_timeout_ms=self.runtime.session_timeout_ms,
                heartbeat_interval_ms=self.runtime.heartbeat_interval_ms,
                **self.kafka.aiokafka_kwargs(),
            )
            try:
                await consumer.start()
                consumer.subscribe([topics.HEALTH_ALERT], listener=_Listener(self, consumer))
                while True:  # partitions paused: this only keeps the membership alive
                    await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("leader election: %s; trying again", exc)
            finally:
                await consumer.stop()
            await asyncio.sleep(1.0)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: Leadership, consumer: AIOKafkaConsumer) -> None:
        self.owner = owner
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing yet: a lost broker revokes too, and a leader cut off from the broker keeps
        checking (its alerts wait in the outbox); the next assignment says who leads."""

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.consumer.pause(*assigned)
        self.owner._set(LEAD_PARTITION in assigned)
