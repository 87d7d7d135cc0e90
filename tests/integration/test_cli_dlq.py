"""``bentomesh dlq list`` / ``dlq replay`` on the real broker, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.cli.dlq import REPLAYED_HEADER
from services.runtime.dead_letter import DeadLetter
from tests.kafka_helpers import Collector

pytestmark = pytest.mark.integration


def cli(kafka: KafkaSettings, *args: str) -> str:
    env = {**os.environ, "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_dead_letter_is_listed_and_replayed_byte_for_byte(kafka: KafkaSettings) -> None:
    value = f'{{"not": "an event", "marker": "{uuid.uuid4()}"}}'.encode()
    letter = DeadLetter(
        value=value,
        key=b"churn",
        reason="missing field: id",
        service="packager",
        source_topic=topics.MODEL_REGISTERED,
        source_partition=0,
        source_offset=7,
        field="id",
    )
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs())
    await producer.start()
    await producer.send_and_wait(
        topics.DEAD_LETTER,
        letter.value,
        key=letter.key,
        headers=[(k, v.encode()) for k, v in letter.headers().items()],
    )
    await producer.stop()

    listed = [json.loads(line) for line in cli(kafka, "list", "--json").splitlines()]
    ours = [item for item in listed if item["value"] == value.decode()]
    assert len(ours) == 1
    assert ours[0]["reason"] == "missing field: id"
    assert ours[0]["source-topic"] == topics.MODEL_REGISTERED
    assert "missing field" in cli(kafka, "list")  # the table names the reason

    ref = ours[0]["ref"]
    assert "would replay" in cli(kafka, "replay", ref, "--dry-run")
    assert "replayed 1 letters" in cli(kafka, "replay", ref)
    async with Collector(kafka, (topics.MODEL_REGISTERED,)) as collector:
        deadline = 100
        while deadline and not [r for r in collector.records if r.value == value]:
            await collector.poll()
            deadline -= 1
        replayed = [r for r in collector.records if r.value == value]
    assert len(replayed) == 1
    assert replayed[0].key == b"churn"
    assert dict(replayed[0].headers)[REPLAYED_HEADER] == f"{topics.DEAD_LETTER}:{ref}".encode()


def test_replay_of_an_unknown_letter_fails_clearly(kafka: KafkaSettings) -> None:
    env = {**os.environ, "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "dlq", "replay", "9:999999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no dead letter 9:999999" in result.stderr + result.stdout
