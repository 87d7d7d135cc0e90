"""From a real MLflow server to a served model: webhooks, the poller, aliases, the round trip.

A training script logs a scikit-learn pipeline (human column names, a categorical column) with
its signature and input example, and registers it in MLflow. The bridge, told by MLflow's own
signed webhook (or by polling), publishes ``ModelRegistered``; the mesh serves the version; the
predictions are the logged model's; MLflow's model version shows where it serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.demo.mlflow_server import MlflowServer
from services.mesh.local import LocalMesh, ServiceProcess
from services.registry import REGISTRY_BRIDGE, SERVICES
from services.registry_bridge.webhook import sign
from services.runtime.settings import RuntimeSettings
from tests.kafka_helpers import Collector

pytestmark = pytest.mark.integration

SECRET = "mlflow-webhook-secret"
CHAIN = ("packager", "builder", "deployer")


@pytest.fixture(scope="module")
def mlflow_server(session_home: Path) -> Iterator[MlflowServer]:
    with MlflowServer(session_home / "mlflow") as server:
        yield server


def bridge_env(server: MlflowServer, **extra: str) -> dict[str, str]:
    return {
        "BENTOMESH_MLFLOW_TRACKING_URI": server.url,
        "BENTOMESH_MLFLOW_WEBHOOK_SECRET": SECRET,
        "BENTOMESH_RUNTIME": "process",
        "BENTOMESH_READY_TIMEOUT_S": "90",
        **extra,
    }


@pytest.fixture(scope="module")
def mesh(
    kafka: KafkaSettings, session_home: Path, mlflow_server: MlflowServer
) -> Iterator[LocalMesh]:
    """Packager, builder, deployer, and a bridge that follows new versions of 'churn' by
    webhook."""
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mlflow-mesh"),
        services=(*(s for s in SERVICES if s.name in CHAIN), REGISTRY_BRIDGE),
        free_ports=True,
        extra_env=bridge_env(mlflow_server, BENTOMESH_MLFLOW_MODELS="churn"),
    )
    local.start(timeout=120)
    yield local
    local.stop()


@pytest.fixture(scope="module")
def poller(
    kafka: KafkaSettings, session_home: Path, mlflow_server: MlflowServer, mesh: LocalMesh
) -> Iterator[LocalMesh]:
    """A second bridge (own home) that polls for the 'champion' alias of 'fraud'."""
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mlflow-poller"),
        services=(REGISTRY_BRIDGE,),
        free_ports=True,
        extra_env=bridge_env(
            mlflow_server,
            BENTOMESH_MLFLOW_MODELS="fraud",
            BENTOMESH_MLFLOW_ALIAS="champion",
            BENTOMESH_MLFLOW_POLL_S="1",
        ),
    )
    local.start(timeout=60)
    yield local
    local.stop()


def bridge_of(mesh: LocalMesh) -> ServiceProcess:
    return next(p for p in mesh.processes if p.info.name == REGISTRY_BRIDGE.name)


def training_data(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "monthly charges ($)": rng.uniform(10, 120, 300),
            "contract type": rng.choice(["month-to-month", "one year", "two year"], 300),
            "tenure months": rng.integers(0, 72, 300),
        }
    )
    y = ((x["tenure months"] < 20) & (x["contract type"] == "month-to-month")).astype(int)
    return x, y


def train_and_register(server: MlflowServer, model: str, seed: int) -> tuple[Any, str]:
    """What a training job does: fit, log with signature and example, register."""
    import mlflow

    mlflow.set_tracking_uri(server.url)
    x, y = training_data(seed)
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["contract type"]),
            remainder=StandardScaler(),
        ),
        LogisticRegression(C=0.5 + seed),
    ).fit(x, y)
    mlflow.set_experiment("churn-training")
    with mlflow.start_run():
        mlflow.log_param("C", 0.5 + seed)
        mlflow.log_metric("accuracy", float(pipeline.score(x, y)))
        info = mlflow.sklearn.log_model(
            pipeline, name="model", input_example=x.head(3), registered_model_name=model
        )
    return pipeline, str(info.registered_model_version)


def version_tags(server: MlflowServer, model: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(MlflowClient(server.url).get_model_version(model, version).tags)


def wait_tag(server: MlflowServer, model: str, version: str, status: str) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tags = version_tags(server, model, version)
        if tags.get("bentomesh.status") == status:
            return tags
        time.sleep(0.5)
    raise AssertionError(f"{model} v{version} never tagged {status}: {tags}")


def rows_of(x: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(x.to_json(orient="records"))
    return rows


def assert_serves_like(endpoint: str, pipeline: Any, seed: int) -> None:
    x, _ = training_data(seed + 100)
    x = x.head(20)
    response = httpx.post(f"{endpoint}/predict_proba", json={"rows": rows_of(x)}, timeout=60)
    assert response.status_code == 200, response.text
    labels = [str(c) for c in pipeline.classes_]
    served = np.array([[p[c] for c in labels] for p in response.json()["probabilities"]])
    np.testing.assert_allclose(served, pipeline.predict_proba(x), rtol=1e-6, atol=1e-9)


def registered_for(collector: Collector, model: str) -> list[Any]:
    return [
        e
        for e in collector.events(topics.MODEL_REGISTERED)
        if e.data.tags.get("mlflow.model") == model
    ]


def delivery(
    model: str, version: str, *, secret: str = SECRET, age_s: float = 0
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an MLflow ``model_version.created`` webhook, signed as MLflow
    signs it, sent ``age_s`` seconds ago."""
    body = json.dumps(
        {
            "entity": "model_version",
            "action": "created",
            "timestamp": "2026-11-30T00:00:00+00:00",
            "data": {"name": model, "version": version},
        }
    ).encode()
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time() - age_s))
    return body, {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery_id, stamp, body),
    }


def test_a_version_registered_in_mlflow_is_served_and_mlflow_shows_where(
    mesh: LocalMesh, mlflow_server: MlflowServer, kafka: KafkaSettings
) -> None:
    from mlflow import MlflowClient

    MlflowClient(mlflow_server.url).create_webhook(
        name="bentomesh",
        url=f"{bridge_of(mesh).url}/webhooks/mlflow",
        events=["model_version.created"],
        secret=SECRET,
    )

    async def run() -> tuple[Any, Any, str, Any]:
        async with Collector(kafka) as collector:
            pipeline, version = await asyncio.to_thread(
                train_and_register, mlflow_server, "churn", 1
            )
            registered = await collector.wait_for(
                lambda e: e.data.tags.get("mlflow.model") == "churn",
                topic=topics.MODEL_REGISTERED,
                timeout=90,
            )
            deployed = await collector.wait_for(
                lambda e: e.chainid == registered.chainid, topic=topics.DEPLOYED, timeout=300
            )
            return registered, deployed, version, pipeline

    registered, deployed, version, pipeline = asyncio.run(run())
    data = registered.data
    assert registered.signature is not None
    assert ":bridge-" in registered.signature
    assert data.tags["mlflow.model_uri"] == f"models:/churn/{version}"
    assert data.tags["mlflow.experiment"] == "churn-training"
    assert data.tags["mlflow.run_id"]
    assert data.metrics["accuracy"] > 0.5
    assert [f.name for f in data.features] == [
        "monthly charges ($)",
        "contract type",
        "tenure months",
    ]
    assert data.task == "classification"
    assert data.library_versions["scikit-learn"]
    assert data.input_example is not None
    assert_serves_like(deployed.data.endpoint_url, pipeline, 1)
    tags = wait_tag(mlflow_server, "churn", version, "deployed")
    assert tags["bentomesh.endpoint"] == deployed.data.endpoint_url
    assert tags["bentomesh.deployment_id"] == deployed.data.deployment_id


def test_a_webhook_with_a_bad_signature_or_an_old_timestamp_is_refused(mesh: LocalMesh) -> None:
    url = f"{bridge_of(mesh).url}/webhooks/mlflow"
    body, forged = delivery("churn", "99", secret="not-the-secret")
    refused = httpx.post(url, content=body, headers=forged, timeout=10)
    assert refused.status_code == 401
    assert "signature does not match" in refused.json()["error"]
    body, replayed = delivery("churn", "99", age_s=3600)
    stale = httpx.post(url, content=body, headers=replayed, timeout=10)
    assert stale.status_code == 401
    assert "s old" in stale.json()["error"]
    metrics = httpx.get(f"{bridge_of(mesh).url}/metrics", timeout=10).text
    assert 'bentomesh_bridge_webhooks_total{answer="refused"} 2.0' in metrics
    assert 'bentomesh_bridge_offers_total{outcome="published"} 1.0' in metrics  # churn 1
    assert 'bentomesh_bridge_outcomes_written_total{status="deployed"} 1.0' in metrics


def test_the_poller_deploys_the_version_that_gets_the_champion_alias(
    poller: LocalMesh, mlflow_server: MlflowServer, kafka: KafkaSettings
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.url)

    async def run() -> tuple[Any, list[Any], Any]:
        async with Collector(kafka) as collector:
            await asyncio.to_thread(train_and_register, mlflow_server, "fraud", 2)
            second, version = await asyncio.to_thread(train_and_register, mlflow_server, "fraud", 3)
            assert version == "2"
            await asyncio.sleep(3)  # polls go by: no alias yet, nothing to deploy
            assert registered_for(collector, "fraud") == []
            client.set_registered_model_alias("fraud", "champion", "2")
            registered = await collector.wait_for(
                lambda e: e.data.tags.get("mlflow.model") == "fraud",
                topic=topics.MODEL_REGISTERED,
                timeout=60,
            )
            deployed = await collector.wait_for(
                lambda e: e.chainid == registered.chainid, topic=topics.DEPLOYED, timeout=300
            )
            await asyncio.sleep(3)  # more polls: the alias did not move, nothing again
            return deployed, registered_for(collector, "fraud"), second

    deployed, registrations, second = asyncio.run(run())
    assert [e.data.model_version for e in registrations] == ["2"]
    assert registrations[0].data.tags["mlflow.alias"] == "champion"
    assert deployed.data.model_version == "2"
    assert_serves_like(deployed.data.endpoint_url, second, 3)
    wait_tag(mlflow_server, "fraud", "2", "deployed")


def test_a_restarted_bridge_publishes_nothing_twice(
    mesh: LocalMesh, poller: LocalMesh, mlflow_server: MlflowServer, kafka: KafkaSettings
) -> None:
    """kill -9 of both bridges; then MLflow delivers the webhook of 'churn' version 1 again and
    the poller sees the same alias: neither publishes."""
    for local in (mesh, poller):
        os.kill(bridge_of(local).process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        local.restart(REGISTRY_BRIDGE.name, timeout=60)
    body, headers = delivery("churn", "1")  # MLflow delivering version 1's webhook again

    async def run() -> list[Any]:
        async with Collector(kafka) as collector:
            again = httpx.post(
                f"{bridge_of(mesh).url}/webhooks/mlflow", content=body, headers=headers, timeout=60
            )
            assert again.status_code == 200, again.text
            assert again.json()["outcome"] == "unchanged"
            await asyncio.sleep(4)  # several polls of the restarted poller
            await collector.poll()
            return collector.events(topics.MODEL_REGISTERED)

    everything = asyncio.run(run())  # the topic from its beginning
    published = sorted(
        (e.data.tags["mlflow.model"], e.data.model_version)
        for e in everything
        if "mlflow.model" in e.data.tags  # the shared broker has other tests' registrations
    )
    assert published == [("churn", "1"), ("fraud", "2")]  # each once, before the restarts


def test_the_cli_registers_a_version_straight_from_mlflow(
    mesh: LocalMesh, mlflow_server: MlflowServer, kafka: KafkaSettings
) -> None:
    """``bentomesh register --from-mlflow models:/fraud/1``: one-off, no bridge involved."""
    env = {
        **os.environ,
        "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "COLUMNS": "250",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "register", "--from-mlflow",
         "models:/fraud/1", "--tracking-uri", mlflow_server.url, "--timeout", "300"],
        env=env, capture_output=True, text=True, timeout=360,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fraud:1 deployed at http" in done.stdout
    endpoint = done.stdout.split(" deployed at ")[1].split()[0]
    x, _ = training_data(5)
    response = httpx.post(f"{endpoint}/predict_proba", json={"rows": rows_of(x.head(3))})
    assert response.status_code == 200, response.text
    unknown = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "register", "--from-mlflow",
         "models:/fraud@nobody", "--tracking-uri", mlflow_server.url, "--no-wait"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unknown.returncode != 0
    assert "no version of fraud holds the alias 'nobody'" in unknown.stderr + unknown.stdout


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_xgboost_and_lightgbm_flavors_build_from_mlflow(
    mlflow_server: MlflowServer, flavor: str
) -> None:
    """MLflow's xgboost (UBJSON booster) and lightgbm (skops) flavors: their task and features
    from the signature, the packager loads and builds them (``bentomesh build``, no Kafka)."""
    import mlflow

    x, y = training_data(11)
    x = x.drop(columns=["contract type"])  # numeric columns: both libraries take them as is
    mlflow.set_tracking_uri(mlflow_server.url)
    name = f"{flavor}-model"
    with mlflow.start_run():
        if flavor == "xgboost":
            from xgboost import XGBClassifier

            model: Any = XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)
            mlflow.xgboost.log_model(
                model, name="model", input_example=x.head(3), registered_model_name=name
            )
        else:
            from lightgbm import LGBMRegressor

            model = LGBMRegressor(n_estimators=20, verbose=-1).fit(x, x["tenure months"] * 2.0)
            mlflow.lightgbm.log_model(
                model, name="model", input_example=x.head(3), registered_model_name=name
            )
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "build", "--from-mlflow", f"models:/{name}/1",
         "--tracking-uri", mlflow_server.url],
        env={**os.environ, "COLUMNS": "250"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name}:1" in done.stdout
