"""Sampled predictions on a real served model: the monitor publishes the share of rows the
registration asked for, by column name and with the model's own predictions, each sample once,
and caps what one sample may weigh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bentomesh_contracts import topics
from bentomesh_contracts.events import DeploymentPrefs
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered
from services.mesh.local import LocalMesh
from services.packager.pipeline import package
from services.runtime.bento_server import LocalBentoServer
from tests.integration.conftest import deployed_event
from tests.kafka_helpers import Collector, send_signed

pytestmark = pytest.mark.integration


def customers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure months": rng.normal(24, 10, n).round(1),
            "plan": rng.choice(["basic", "pro", "max"], n),
        }
    )


@pytest.fixture(scope="module")
def logging_server(
    artifact_root: Path, session_home: Path
) -> Iterator[tuple[LocalBentoServer, Pipeline]]:
    rng = np.random.default_rng(3)
    x = customers(rng, 2000)
    y = np.where(x["tenure months"] < 15, "churn", "stay")
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder=StandardScaler()
        ),
        LogisticRegression(),
    ).fit(x, y)
    folder = artifact_root / "prediction-log"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "logged.joblib")
    event = build_model_registered(
        folder / "logged.joblib",
        name="logged",
        version="1",
        task="classification",
        deployment=DeploymentPrefs(log_predictions=0.5),
    )
    built = package(event, chain_id="test-prediction-log")
    server = LocalBentoServer(built.built.bento_tag, log_path=session_home / "serve-logged.log")
    server.start()
    try:
        server.wait_ready(timeout=180)
        yield server, model
    finally:
        server.stop()


def test_the_monitor_publishes_the_share_of_rows_asked_for_each_sample_once(
    logging_server: tuple[LocalBentoServer, Pipeline], monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    server, model = logging_server
    event = deployed_event(server, "logged", "1")
    rng = np.random.default_rng(4)
    sent = customers(rng, 400)
    big = customers(rng, 1000)  # one request whose half is over a sample's 16 KiB

    async def run() -> list[Any]:
        async with Collector(kafka, (topics.PREDICTIONS,)) as collector:
            await send_signed(event, kafka)
            rows = json.loads(sent.to_json(orient="records"))
            async with httpx.AsyncClient(timeout=30) as client:
                for start in range(0, len(rows), 20):
                    answer = await client.post(
                        f"{server.url}/predict", json={"rows": rows[start : start + 20]}
                    )
                    assert answer.status_code == 200, answer.text
                big_rows = json.loads(big.to_json(orient="records"))
                answer = await client.post(f"{server.url}/predict", json={"rows": big_rows})
                assert answer.status_code == 200, answer.text
            for _ in range(100):  # the monitor checks every 0.5 s
                await asyncio.sleep(0.2)
                await collector.poll()
                mine = [
                    e
                    for e in collector.events(topics.PREDICTIONS)
                    if e.data.deployment_id == event.data.deployment_id
                ]
                if sum(e.data.sampled_rows for e in mine) >= 600 and any(
                    e.data.truncated for e in mine
                ):
                    await asyncio.sleep(2)  # anything published twice would come now
                    await collector.poll()
                    break
            return [
                e
                for e in collector.events(topics.PREDICTIONS)
                if e.data.deployment_id == event.data.deployment_id
            ]

    published = asyncio.run(run())
    assert published, "no sampled predictions published"
    samples = [e.data for e in published]
    keys = [(s.worker, s.seq) for s in samples]
    assert len(keys) == len(set(keys)), "a sample was published twice"
    assert all(e.source == "bentomesh/monitor" and e.signature for e in published)
    assert all(e.chainid == event.chainid for e in published)  # in the version's lineage
    total = sum(s.sampled_rows for s in samples)
    assert 600 <= total <= 800, total  # half of 1,400 rows: 700 ± 5 standard deviations
    truncated = [s for s in samples if s.truncated]
    assert len(truncated) == 1
    assert 0 < len(truncated[0].rows) < truncated[0].sampled_rows
    assert len(json.dumps(truncated[0].rows)) < 17_000
    rows = [r for s in samples for r in s.rows]
    assert set(rows[0]) == {"tenure months", "plan"}  # the columns' own names
    expected = model.predict(pd.DataFrame(rows)).tolist()
    assert [p for s in samples for p in s.predictions] == expected
