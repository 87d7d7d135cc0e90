"""Drift on a real served model with traffic from the test: quiet on reference traffic, a
``data_drift`` naming the one shifted feature, ``data_quality`` for an unseen category, and
both resolved once the traffic is back to normal. The model is built with a reference sample,
served by BentoML, and watched by the real monitor service."""

from __future__ import annotations

import asyncio
import json
import time
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
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered
from bentomesh_contracts.training import save_reference
from services.mesh.local import LocalMesh
from services.packager.pipeline import package
from services.runtime.bento_server import LocalBentoServer
from tests.integration.conftest import deployed_event
from tests.kafka_helpers import Collector, send_signed

pytestmark = pytest.mark.integration


def traffic(rng: np.random.Generator, n: int, shift: float = 0.0, plan: str | None = None) -> Any:
    frame = pd.DataFrame(
        {
            "tenure months": rng.normal(24 + 10 * shift, 10, n),  # shift: in deviations
            "monthly charges ($)": rng.uniform(10, 120, n),
            "plan": rng.choice(["basic", "pro", "max"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    if plan is not None:
        frame.loc[: n // 3, "plan"] = plan
    return frame


@pytest.fixture(scope="module")
def drifting_server(artifact_root: Path, session_home: Path) -> Iterator[LocalBentoServer]:
    rng = np.random.default_rng(8)
    x = traffic(rng, 5000)
    y = (x["tenure months"] < 15).astype(int)
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder=StandardScaler()
        ),
        LogisticRegression(),
    ).fit(x, y)
    folder = artifact_root / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "drifting.joblib")
    event = build_model_registered(
        folder / "drifting.joblib",
        name="drifting",
        version="1",
        task="classification",
        reference_path=save_reference(x, folder / "drifting"),
    )
    built = package(event, chain_id="test-drift")
    server = LocalBentoServer(built.built.bento_tag, log_path=session_home / "serve-drift.log")
    server.start()
    try:
        server.wait_ready(timeout=180)
        yield server
    finally:
        server.stop()


def send(url: str, frame: pd.DataFrame) -> None:
    rows = json.loads(frame.to_json(orient="records"))
    for start in range(0, len(rows), 100):
        answer = httpx.post(f"{url}/predict", json={"rows": rows[start : start + 100]}, timeout=30)
        assert answer.status_code == 200, answer.text


def test_a_shifted_feature_and_an_unseen_category_alert_by_name_and_resolve(
    drifting_server: LocalBentoServer, monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    rng = np.random.default_rng(9)
    event = deployed_event(drifting_server, "drifting", "1")
    deployment = event.data.deployment_id
    status_url = f"{monitor.processes[0].url}/api/status"

    def alerts(collector: Collector) -> list[Any]:
        return [
            e.data
            for e in collector.events(topics.HEALTH_ALERT)
            if e.data.deployment_id == deployment
        ]

    async def phase(collector: Collector, frames: int, **shape: Any) -> None:
        """``frames`` rounds of 300 rows, each read by the monitor (0.5 s checks)."""
        for _ in range(frames):
            await asyncio.to_thread(send, drifting_server.url, traffic(rng, 300, **shape))
            await asyncio.sleep(1.2)
            await collector.poll()

    async def run() -> tuple[list[Any], list[Any], list[Any], dict[str, Any]]:
        async with Collector(kafka, (topics.HEALTH_ALERT,)) as collector:
            await send_signed(event, kafka)
            await asyncio.sleep(2)  # watched
            await phase(collector, 12)  # reference traffic: 12 windows
            quiet = alerts(collector)
            await phase(collector, 6, shift=2.0)
            shifted = alerts(collector)
            row = next(
                r
                for r in httpx.get(status_url, timeout=10).json()["deployments"]
                if r["deployment_id"] == deployment
            )
            await phase(collector, 8)  # back to normal: the shift's alerts resolve
            calm = len(alerts(collector))
            await phase(collector, 6, plan="enterprise")
            await phase(collector, 8)  # back to normal
            return quiet, shifted, alerts(collector)[calm:], row

    quiet, shifted, final, row = asyncio.run(run())
    assert [a for a in quiet if a.rule in ("data_drift", "data_quality", "prediction_drift")] == []
    drift = [a for a in shifted if a.rule == "data_drift" and a.state == "firing"]
    assert len(drift) == 1, shifted
    assert "tenure months (PSI" in drift[0].message
    assert "monthly charges" not in drift[0].message
    assert "plan (" not in drift[0].message
    # two deviations up also puts some tenures beyond the largest in the reference: if that
    # fires data_quality, it names tenure alone
    for alert in (a for a in shifted if a.rule == "data_quality" and a.state == "firing"):
        assert "tenure months (bad" in alert.message
        assert "plan (" not in alert.message
    assert row["drift"]["features"][0][0] == "tenure months"  # worst first on the status page
    quality = [a for a in final if a.rule == "data_quality" and a.state == "firing"]
    assert len(quality) == 1, final
    assert "plan (bad" in quality[0].message
    assert "tenure" not in quality[0].message
    assert [a.state for a in final if a.rule == "data_quality"] == ["firing", "resolved"]
    # a third of the rows in a category never seen moves plan's shares too: drift, of plan alone
    for alert in (a for a in final if a.rule == "data_drift" and a.state == "firing"):
        assert "plan (PSI" in alert.message
        assert "tenure" not in alert.message


def test_a_model_without_reference_serves_as_before_and_says_so(
    built_bentos: Any, session_home: Path, monitor: LocalMesh, kafka: KafkaSettings
) -> None:
    classifier = built_bentos["sklearn-classifier"]
    server = LocalBentoServer(classifier.built.bento_tag, log_path=session_home / "serve-noref.log")
    server.start()
    try:
        server.wait_ready(timeout=180)
        assert httpx.get(f"{server.url}/bentomesh/live", timeout=10).status_code == 404
        event = deployed_event(server, "no-reference", "1")
        asyncio.run(send_signed(event, kafka))
        deadline = time.monotonic() + 30
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            rows = httpx.get(f"{monitor.processes[0].url}/api/status", timeout=10).json()
            row = next(
                (r for r in rows["deployments"] if r["deployment_id"] == event.data.deployment_id),
                {},
            )
            if row.get("drift") == {"reference": False}:
                break
            time.sleep(0.5)
        assert row.get("drift") == {"reference": False}, row
    finally:
        server.stop()
