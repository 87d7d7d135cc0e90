"""Canary and shadow rollouts on the real mesh: packager, builder and deployer processes, real
model servers, and a client load through the gateway for the whole rollout.

A bad candidate is aborted before it has all the traffic, with its figures in the events and no
user request reaching it after the decision; a good one walks every step to promotion without a
failed request; a deployer killed mid-canary leaves one serving version and no candidate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from bentomesh_contracts import new_chain, topics
from bentomesh_contracts.events import DeploymentPrefs
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered
from bentomesh_contracts.rollout import RolloutPrefs
from services.mesh.local import LocalMesh, ServiceProcess
from services.registry import SERVICES
from services.runtime.control import ControlSettings
from services.runtime.settings import RuntimeSettings
from tests.kafka_helpers import Collector, send_signed

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {ControlSettings().required_token()}"}
COLUMNS = ["monthly spend", "support calls", "tenure months"]


@pytest.fixture(scope="module")
def mesh(kafka: KafkaSettings, session_home: Path) -> Iterator[LocalMesh]:
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "rollouts"),
        services=tuple(s for s in SERVICES if s.name in ("packager", "builder", "deployer")),
        free_ports=True,
        extra_env={
            "BENTOMESH_RUNTIME": "process",
            "BENTOMESH_READY_TIMEOUT_S": "90",
            "BENTOMESH_ROLLOUT_INTERVAL_S": "0.5",
            "BENTOMESH_ROLLOUT_BAKE_S": "3",
            "BENTOMESH_ROLLOUT_MAX_WAIT_S": "60",
            "BENTOMESH_STOP_DEPLOYMENTS_ON_EXIT": "true",
        },
    )
    local.start(timeout=120)
    yield local
    local.stop()


def deployer_of(mesh: LocalMesh) -> ServiceProcess:
    return next(p for p in mesh.processes if p.info.name == "deployer")


def customers(seed: int, n: int = 1500) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({c: rng.uniform(1, 10, n) for c in COLUMNS})
    y = np.where(x["monthly spend"] + x["support calls"] > 11, "churn", "stay")
    return x, y


def artifact(root: Path, name: str, model: Any) -> Path:
    folder = root / "rollouts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.joblib"
    joblib.dump(model, path)
    return path


def serving_model() -> Any:
    return LogisticRegression().fit(*customers(1))


async def register(kafka: KafkaSettings, path: Path, model: str, version: str, **prefs: Any) -> Any:
    """Register and wait for the chain's terminal event: ``Deployed`` or ``StageFailed``."""
    data = build_model_registered(
        path,
        name=model,
        version=version,
        task="classification",
        deployment=DeploymentPrefs(**prefs),
    )
    event = new_chain(data, source="test")
    async with Collector(kafka) as collector:
        await send_signed(event, kafka)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for topic in (topics.DEPLOYED, topics.STAGE_FAILED):
                for done in collector.events(topic):
                    if done.chainid == event.chainid:
                        return done
            await collector.poll()
    raise AssertionError(f"{model}:{version} reached no terminal event")


async def chain_events(kafka: KafkaSettings, chain_id: str, topic: str) -> list[Any]:
    async with Collector(kafka, (topic,)) as collector:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            await collector.poll()
        return [e for e in collector.events(topic) if e.chainid == chain_id]


@dataclass
class Answer:
    sent: float
    status: int
    version: str


@dataclass
class Load:
    """A client calling the model's stable endpoint for as long as the test needs."""

    url: str
    rows: list[dict[str, float]]
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                row = self.rows[i % len(self.rows)]
                i += 1
                sent = time.time()
                try:
                    response = client.post(self.url, json={"rows": [row]})
                    version = response.headers.get("x-bentomesh-version", "")
                    self.answers.append(Answer(sent, response.status_code, version))
                except httpx.HTTPError:
                    self.answers.append(Answer(sent, 0, ""))
                time.sleep(0.01)

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self.run) for _ in range(3)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def rows(x: pd.DataFrame) -> list[dict[str, float]]:
    return [{c: float(v) for c, v in zip(COLUMNS, r, strict=True)} for r in x.to_numpy()]


def deployments(mesh: LocalMesh, model: str) -> list[dict[str, Any]]:
    url = f"{deployer_of(mesh).url}/deployments"
    found: list[dict[str, Any]] = httpx.get(url, params={"model": model}, headers=AUTH).json()
    return found


def at(event: Any) -> float:
    return datetime.fromisoformat(str(event.time)).timestamp()


async def roll_out(
    mesh: LocalMesh,
    kafka: KafkaSettings,
    root: Path,
    model: str,
    candidate: Any,
    sample: list[dict[str, float]],
    *,
    after_s: float = 0.0,
    **prefs: Any,
) -> tuple[Any, Load]:
    """Serve version 1, then register ``candidate`` as version 2 with ``prefs`` while a client
    calls the model (``after_s`` longer): the chain's terminal event, and what the client saw."""
    first = await register(kafka, artifact(root, f"{model}-1", serving_model()), model, "1")
    assert first.type.endswith("deployment.ready.v1"), first.data
    url = f"{deployer_of(mesh).url}/models/{model}/predict"
    with Load(url, sample) as load:
        done = await register(kafka, artifact(root, f"{model}-2", candidate), model, "2", **prefs)
        await asyncio.sleep(after_s)
    return done, load


async def aborted_step(kafka: KafkaSettings, done: Any, why: str) -> Any:
    """The chain ended in ``RolloutAborted`` for ``why``, short of all traffic: its last step."""
    assert done.type.endswith("stage.failed.v1"), done.data.reason
    assert done.data.error_type == "RolloutAborted", done.data.reason
    assert why in done.data.reason
    last = (await chain_events(kafka, done.chainid, topics.ROLLOUTS))[-1]
    assert last.data.decision == "aborted"
    assert last.data.share < 1.0 or last.data.strategy == "shadow"  # never all the traffic
    return last


async def test_a_good_canary_walks_every_step_to_promotion_without_a_failed_request(
    mesh: LocalMesh, kafka: KafkaSettings, artifact_root: Path
) -> None:
    better = LogisticRegression(C=0.5).fit(*customers(2))
    canary = RolloutPrefs(steps=[0.2, 0.5, 1.0], bake_s=3)
    done, load = await roll_out(
        mesh,
        kafka,
        artifact_root,
        "rollout-good",
        better,
        rows(customers(7, 200)[0]),
        after_s=1,
        strategy="canary",
        rollout=canary,
    )
    assert done.type.endswith("deployment.ready.v1"), done.data.reason
    assert done.data.replaced_version == "1"
    steps = await chain_events(kafka, done.chainid, topics.ROLLOUTS)
    decisions = [(e.data.decision, e.data.share) for e in steps if e.data.decision != "waiting"]
    assert decisions == [("started", 0.2), ("advanced", 0.5), ("advanced", 1.0), ("promoted", 1.0)]
    for waited in (e for e in steps if e.data.decision == "waiting"):  # for evidence, said once
        assert "of 50" in waited.data.reason
    statuses = {a.status for a in load.answers}
    assert statuses == {200}, f"{len(load.answers)} requests: {statuses}"
    served = {a.version for a in load.answers}
    assert served == {"1", "2"}
    active = deployments(mesh, "rollout-good")
    assert [d["version"] for d in active if d["status"] == "active"] == ["2"]


async def test_a_canary_failing_30_percent_is_aborted_before_all_traffic_and_nobody_after(
    mesh: LocalMesh, kafka: KafkaSettings, artifact_root: Path
) -> None:
    """Version 2 takes the square root of its inputs: the 30% of rows with a negative value fail."""
    fragile = make_pipeline(FunctionTransformer(np.sqrt), LogisticRegression()).fit(*customers(2))
    sample = rows(customers(8, 100)[0])
    for row in sample[:30]:
        row["support calls"] = -1.0  # a real input the serving version answers
    canary = RolloutPrefs(steps=[0.2, 0.5, 1.0], bake_s=3)
    done, load = await roll_out(
        mesh,
        kafka,
        artifact_root,
        "rollout-failing",
        fragile,
        sample,
        after_s=3,  # users keep calling after the abort
        strategy="canary",
        rollout=canary,
    )
    aborted = await aborted_step(kafka, done, "5xx share")
    assert aborted.data.analysis.error_share > 0.1
    alerts = await chain_events(kafka, done.chainid, topics.HEALTH_ALERT)
    assert [a.data.rule for a in alerts] == ["rollout_aborted"]
    after = [a for a in load.answers if a.sent > at(aborted) + 0.05]
    assert len(after) > 20
    assert {(a.status, a.version) for a in after} == {(200, "1")}
    assert any(a.status == 500 and a.version == "2" for a in load.answers)  # it did fail users
    rows_now = deployments(mesh, "rollout-failing")
    active = [d for d in rows_now if d["status"] in ("active", "candidate")]
    assert [(d["version"], d["status"]) for d in active] == [("1", "active")]
    failed = sum(a.status != 200 for a in load.answers)
    print(
        f"failing canary: aborted at share {aborted.data.share:.0%}, 5xx share "
        f"{aborted.data.analysis.error_share:.1%}; {failed} of {len(load.answers)} requests "
        f"failed, {len(after)} after the abort, none failed"
    )


async def test_a_canary_several_times_slower_is_aborted_on_p99(
    mesh: LocalMesh, kafka: KafkaSettings, artifact_root: Path
) -> None:
    """Version 2 is a brute-force nearest-neighbours model over two million rows: the same
    answers, about 50 ms of work per row where the serving logistic regression needs 1."""
    slow = KNeighborsClassifier(n_neighbors=25, algorithm="brute").fit(*customers(2, 2_000_000))
    canary = RolloutPrefs(steps=[0.3, 1.0], bake_s=6)
    done, load = await roll_out(
        mesh,
        kafka,
        artifact_root,
        "rollout-slow",
        slow,
        rows(customers(11, 200)[0]),
        strategy="canary",
        rollout=canary,
    )
    aborted = await aborted_step(kafka, done, "p99")
    figures = aborted.data.analysis
    assert figures.p99_ms > 2 * figures.serving_p99_ms
    assert {a.status for a in load.answers} == {200}  # slow, not failing
    print(f"slow canary: p99 {figures.p99_ms:.1f} ms against {figures.serving_p99_ms:.1f} ms")


async def test_a_shadow_that_disagrees_is_never_promoted_and_its_agreement_is_recorded(
    mesh: LocalMesh, kafka: KafkaSettings, artifact_root: Path
) -> None:
    x, y = customers(2)
    flipped = LogisticRegression().fit(x, np.where(y == "churn", "stay", "churn"))
    shadow = RolloutPrefs(steps=[1.0], bake_s=3)
    done, load = await roll_out(
        mesh,
        kafka,
        artifact_root,
        "rollout-shadow",
        flipped,
        rows(customers(9, 200)[0]),
        strategy="shadow",
        rollout=shadow,
    )
    aborted = await aborted_step(kafka, done, "agree on")
    assert aborted.data.analysis.compared >= 20
    assert aborted.data.analysis.agreement < 0.2
    assert "agree on" in aborted.data.reason
    assert {(a.status, a.version) for a in load.answers} == {(200, "1")}  # users saw only v1
    figures = aborted.data.analysis
    print(f"shadow: agreement {figures.agreement:.1%} on {figures.compared} mirrored requests")


async def test_an_operator_sees_a_rollout_and_aborts_it(
    mesh: LocalMesh, kafka: KafkaSettings, artifact_root: Path
) -> None:
    model = "rollout-manual"
    await register(kafka, artifact(artifact_root, "manual-1", serving_model()), model, "1")
    data = build_model_registered(
        artifact(artifact_root, "manual-2", LogisticRegression(C=0.5).fit(*customers(2))),
        name=model,
        version="2",
        task="classification",
        deployment=DeploymentPrefs(
            strategy="canary", rollout=RolloutPrefs(steps=[0.25, 1.0], bake_s=600)
        ),
    )
    event = new_chain(data, source="test")
    api = f"{deployer_of(mesh).url}/deployments/{model}/rollout"
    with Load(f"{deployer_of(mesh).url}/models/{model}/predict", rows(customers(12, 50)[0])):
        async with Collector(kafka) as collector:
            await send_signed(event, kafka)
            await collector.wait_for(
                lambda e: e.chainid == event.chainid and e.data.decision == "started",
                topic=topics.ROLLOUTS,
                timeout=240,
            )
            await asyncio.sleep(2)
            view = httpx.get(api, headers=AUTH).json()
            assert view["candidate"]["version"] == "2"
            assert view["candidate"]["share"] == 0.25
            assert view["serving"]["version"] == "1"
            assert view["candidate_figures"]["requests"] > 0
            shown = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "services.cli.main", "rollout", "status", model],
                capture_output=True,
                text=True,
                env={**os.environ, "BENTOMESH_DEPLOYER_URL": deployer_of(mesh).url},
            )
            assert shown.returncode == 0, shown.stderr
            assert f"{model}: canary of 2 beside 1, share 25%" in shown.stdout
            rollback = f"{deployer_of(mesh).url}/deployments/{model}/rollback"
            busy = httpx.post(rollback, headers=AUTH)  # refused at once, not held for the rollout
            assert busy.status_code == 409
            assert "rollout abort" in busy.json()["error"]
            asked = httpx.post(f"{api}/abort", headers=AUTH)
            assert asked.status_code == 202
            failed = await collector.wait_for(
                lambda e: e.chainid == event.chainid, topic=topics.STAGE_FAILED, timeout=60
            )
    assert failed.data.error_type == "RolloutAborted"
    assert "aborted by an operator" in failed.data.reason
    assert httpx.get(api, headers=AUTH).status_code == 404  # no rollout any more
    refused = httpx.post(f"{api}/promote", headers=AUTH)
    assert refused.status_code == 409
    assert "no rollout in progress" in refused.json()["error"]


async def test_a_deployer_killed_mid_canary_ends_with_one_serving_version_and_no_candidate(
    mesh: LocalMesh, kafka: KafkaSettings, artifact_root: Path
) -> None:
    model = "rollout-crash"
    await register(kafka, artifact(artifact_root, "crash-1", serving_model()), model, "1")
    better = LogisticRegression(C=0.5).fit(*customers(2))
    data = build_model_registered(
        artifact(artifact_root, "crash-2", better),
        name=model,
        version="2",
        task="classification",
        deployment=DeploymentPrefs(strategy="canary", rollout=RolloutPrefs(steps=[0.5], bake_s=5)),
    )
    event = new_chain(data, source="test")
    url = f"{deployer_of(mesh).url}/models/{model}/predict"
    with Load(url, rows(customers(10, 100)[0])):
        async with Collector(kafka) as collector:
            await send_signed(event, kafka)
            await collector.wait_for(
                lambda e: e.chainid == event.chainid and e.data.decision == "started",
                topic=topics.ROLLOUTS,
                timeout=240,
            )
            candidate = next(d for d in deployments(mesh, model) if d["status"] == "candidate")
            os.kill(deployer_of(mesh).process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            await asyncio.to_thread(mesh.restart, "deployer")
            deadline = time.monotonic() + 240
            ends: list[Any] = []
            while not ends and time.monotonic() < deadline:
                await collector.poll()
                ends = [
                    e
                    for topic in (topics.DEPLOYED, topics.STAGE_FAILED)
                    for e in collector.events(topic)
                    if e.chainid == event.chainid
                ]
            settle = time.monotonic() + 3
            while time.monotonic() < settle:
                await collector.poll()
            ends = [
                e
                for topic in (topics.DEPLOYED, topics.STAGE_FAILED)
                for e in collector.events(topic)
                if e.chainid == event.chainid
            ]
    assert len(ends) == 1, ends  # exactly one terminal outcome
    rows_now = deployments(mesh, model)
    live = [(d["version"], d["status"]) for d in rows_now if d["status"] in ("active", "candidate")]
    assert len(live) == 1
    assert live[0][1] == "active"
    first_try = next(d for d in rows_now if d["id"] == candidate["id"])
    assert first_try["status"] in ("failed", "active")
    if first_try["status"] == "failed":  # its process was stopped
        assert _stopped(int(first_try["handle"]))


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True  # gone
