"""``bentomesh register`` and a foreign Kafka client both show in ``events tail``.

The foreign client is librdkafka (through confluent-kafka), the C library behind kcat. Debian's
own kcat 1.7.1 bundles librdkafka 2.0.2, whose ApiVersionRequest Tansu 0.6 rejects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from tests.kafka_helpers import produce_raw

pytestmark = pytest.mark.integration


def bentomesh(
    kafka: KafkaSettings, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def produce_with_librdkafka(bootstrap: str, topic: str, key: str, value: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors: list[object] = []
    producer.produce(
        topic,
        value=value.encode(),
        key=key.encode(),
        on_delivery=lambda err, _msg: errors.append(err) if err else None,
    )
    assert producer.flush(30) == 0
    assert errors == []


async def test_register_and_kcat_events_show_in_tail(kafka: KafkaSettings, tmp_path: Path) -> None:
    model = tmp_path / "m.joblib"
    model.write_bytes(b"not really a model")
    registered = bentomesh(
        kafka,
        "register",
        "--model-path",
        str(model),
        "--name",
        "cli-model",
        "--version",
        "1",
        "--task",
        "classification",
        "--features",
        "a,b",
        "--no-wait",
    )
    assert registered.returncode == 0, registered.stderr
    assert "registered cli-model:1" in registered.stdout

    chain = f"kcat-{uuid.uuid4().hex[:8]}"
    raw = json.dumps(
        {
            "specversion": "1.0",
            "id": f"{chain}-1",
            "source": "kcat",
            "time": "2026-11-27T10:00:00Z",
            "type": "bentomesh.model.registered.v1",
            "chainid": chain,
            "data": {
                "model_name": "kcat-model",
                "model_version": "7",
                "task": "regression",
                "artifact_uri": "/models/kcat.joblib",
                "artifact_sha256": "1" * 64,
                "features": [{"name": "x"}],
            },
        }
    )
    produce_with_librdkafka(kafka.bootstrap_servers, topics.MODEL_REGISTERED, "kcat-model", raw)
    await produce_raw(kafka, topics.DEAD_LETTER, b"{bad", b"x")

    tail = bentomesh(kafka, "events", "tail", "--no-follow")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert any("model.registered" in line and "cli-model:1" in line for line in lines), lines
    assert any("model.registered" in line and "kcat-model:7" in line for line in lines), lines

    only_chain = bentomesh(kafka, "events", "tail", "--no-follow", "--chain", chain)
    assert [line for line in only_chain.stdout.splitlines() if line.strip()] == [
        line for line in lines if "kcat-model:7" in line
    ]


def test_register_refuses_bad_input_with_the_field_named(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    model = tmp_path / "m.joblib"
    model.write_bytes(b"x")
    result = bentomesh(
        kafka,
        "register",
        "--model-path",
        str(model),
        "--name",
        "Bad Name",
        "--version",
        "1",
        "--task",
        "classification",
        "--features",
        "a",
    )
    assert result.returncode == 2  # usage: the flag and what it should be
    assert "--model 'Bad Name' is not valid" in result.stderr


def test_contracts_export_writes_schemas(tmp_path: Path, kafka: KafkaSettings) -> None:
    result = bentomesh(kafka, "contracts", "export", str(tmp_path / "schemas"))
    assert result.returncode == 0, result.stderr
    from bentomesh_contracts.events import EVENT_DATA_TYPES

    written = sorted(p.name for p in (tmp_path / "schemas").glob("*.json"))
    assert written == sorted(f"{t.EVENT_TYPE}.json" for t in EVENT_DATA_TYPES)
