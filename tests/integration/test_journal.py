"""The embedded broker forgets everything when it stops; the journal gives a restarted local
mesh its topics and its consumers' committed offsets back (real Tansu, stopped and started)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.errors import MeshError
from services.mesh.local import LocalMesh
from services.runtime.history import read_topic
from services.runtime.journal import Journal
from services.runtime.ports import free_port
from services.runtime.settings import RuntimeSettings


def _broker_only(home: Path, port: int) -> LocalMesh:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    return LocalMesh(kafka, RuntimeSettings(home=home), services=())


async def _produce(kafka: KafkaSettings, count: int, start: int) -> None:
    producer = AIOKafkaProducer(acks="all", **kafka.aiokafka_kwargs())
    await producer.start()
    try:
        for n in range(start, start + count):
            await producer.send_and_wait(
                topics.MODEL_REGISTERED,
                f'{{"n": {n}}}'.encode(),
                key=f"model-{n % 4}".encode(),
                headers=[("content-type", b"application/cloudevents+json")],
            )
    finally:
        await producer.stop()


async def _consume(kafka: KafkaSettings, group: str, count: int) -> list[bytes]:
    """Read ``count`` records as a consumer group would, committing after each."""
    consumer = AIOKafkaConsumer(
        topics.MODEL_REGISTERED,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        max_poll_records=1,
        **kafka.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < count:
            record = await asyncio.wait_for(consumer.getone(), 30)
            values.append(record.value)
            await consumer.commit()
        return values
    finally:
        await consumer.stop()


async def _lag(kafka: KafkaSettings, group: str) -> int:
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **kafka.aiokafka_kwargs())
    await consumer.start()
    try:
        parts = [TopicPartition(topics.MODEL_REGISTERED, p) for p in range(3)]
        ends = await consumer.end_offsets(parts)
        lag = 0
        for tp in parts:
            lag += ends[tp] - ((await consumer.committed(tp)) or 0)
        return lag
    finally:
        await consumer.stop()


def _kept(kafka: KafkaSettings) -> list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]]:
    records = asyncio.run(read_topic(kafka, topics.MODEL_REGISTERED))
    return sorted((r.key, r.value, tuple(r.headers)) for r in records)


def test_a_restarted_mesh_keeps_its_topics_and_resumes_each_group_where_it_was(
    tmp_path: Path,
) -> None:
    port = free_port()
    mesh = _broker_only(tmp_path, port)
    mesh.start()
    try:
        asyncio.run(_produce(mesh.kafka, 10, start=0))
        first_read = asyncio.run(_consume(mesh.kafka, "bentomesh-journal-test", 6))
        history = _kept(mesh.kafka)
    finally:
        mesh.stop()
    assert len(history) == 10

    mesh = _broker_only(tmp_path, port)  # a new broker process: empty until the journal replays
    mesh.start()
    try:
        again = _kept(mesh.kafka)
        assert again == history
        assert asyncio.run(_lag(mesh.kafka, "bentomesh-journal-test")) == 4
        asyncio.run(_produce(mesh.kafka, 3, start=10))
        rest = asyncio.run(_consume(mesh.kafka, "bentomesh-journal-test", 7))
    finally:
        mesh.stop()
    # nothing read twice, nothing skipped
    news = [b'{"n": 10}', b'{"n": 11}', b'{"n": 12}']
    assert sorted(first_read + rest) == sorted([value for _, value, _ in history] + news)

    mesh = _broker_only(tmp_path, port)  # the records of the second run were journaled too
    mesh.start()
    try:
        assert len(asyncio.run(read_topic(mesh.kafka, topics.MODEL_REGISTERED))) == 13
        assert asyncio.run(_lag(mesh.kafka, "bentomesh-journal-test")) == 0
    finally:
        mesh.stop()


async def _produce_aged(kafka: KafkaSettings, ages_h: list[float]) -> None:
    producer = AIOKafkaProducer(acks="all", **kafka.aiokafka_kwargs())
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        for n, age in enumerate(ages_h):
            await producer.send_and_wait(
                topics.DEAD_LETTER,
                f'{{"n": {n}}}'.encode(),
                partition=0,
                timestamp_ms=now_ms - int(age * 3600 * 1000),
            )
    finally:
        await producer.stop()


def test_records_past_the_retention_are_dropped_at_restart_and_offsets_follow(
    tmp_path: Path,
) -> None:
    port = free_port()
    mesh = _broker_only(tmp_path, port)
    mesh.start()
    try:  # two records from 9 days ago, three from the last hour
        asyncio.run(_produce_aged(mesh.kafka, [216, 200, 1, 0.5, 0]))
    finally:
        mesh.stop()
    mesh = _broker_only(tmp_path, port)
    mesh.start()
    try:
        kept = asyncio.run(read_topic(mesh.kafka, topics.DEAD_LETTER))
    finally:
        mesh.stop()
    assert [r.value for r in kept] == [b'{"n": 2}', b'{"n": 3}', b'{"n": 4}']
    assert [r.offset for r in kept] == [0, 1, 2]
    assert len(list(Journal(tmp_path / "journal").records())) == 3


def test_a_damaged_journal_stops_the_start_with_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal" / "records.jsonl").write_text("not a record\n{}\n")
    mesh = _broker_only(tmp_path, free_port())
    with pytest.raises(MeshError, match=r"journal .* is damaged .* move that folder aside"):
        mesh.start()
    mesh.stop()
