"""The chain to a serving endpoint on the process runtime, through the real broker.

packager -> builder -> deployer run as their own processes; the deployer starts each model as a
``bentoml serve`` process and routes ``/models/<name>`` to the active version.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from bentomesh_contracts import ImageReady, follow_up, new_chain, topics
from bentomesh_contracts.kafka import KafkaSettings
from services.mesh.local import LocalMesh, ServiceProcess
from services.registry import SERVICES
from services.runtime.control import ControlSettings
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.integration.conftest import register_case
from tests.kafka_helpers import Collector, send_signed
from tests.models import FEATURES, ModelCase

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {ControlSettings().required_token()}"}

CHAIN = ("packager", "builder", "deployer")


@pytest.fixture(scope="module")
def mesh(kafka: KafkaSettings, session_home: Path) -> Iterator[LocalMesh]:
    local = LocalMesh(
        kafka,
        RuntimeSettings(home=session_home / "mesh"),
        services=tuple(s for s in SERVICES if s.name in CHAIN),
        free_ports=True,
        # model processes outlive a deployer restart and are re-adopted
        extra_env={
            "BENTOMESH_RUNTIME": "process",
            "BENTOMESH_READY_TIMEOUT_S": "90",
            "BENTOMESH_STOP_DEPLOYMENTS_ON_EXIT": "false",
        },
    )
    local.start(timeout=120)
    yield local
    local.stop()
    import subprocess

    subprocess.run(["pkill", "-f", "bentoml serve sklearn-classifier:"], check=False)


def deployer_of(mesh: LocalMesh) -> ServiceProcess:
    return next(p for p in mesh.processes if p.info.name == "deployer")


def rows(x: np.ndarray[Any, Any]) -> list[dict[str, float]]:
    return [dict(zip(FEATURES, map(float, r), strict=True)) for r in x]


async def register_and_wait(kafka: KafkaSettings, case: ModelCase, version: str) -> Any:
    event = new_chain(register_case(case, version=version), source="test")  # type: ignore[arg-type]
    async with Collector(kafka) as collector:
        await send_signed(event, kafka)
        return await collector.wait_for(
            lambda e: e.chainid == event.chainid, topic=topics.DEPLOYED, timeout=240
        )


def environment_names(pid: int) -> set[str]:
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return {entry.split(b"=", 1)[0].decode() for entry in environment if entry}


def count_serving(bento_tag: str) -> int:
    """``bentoml serve`` processes of this bento started by this test session (same store)."""
    import os
    import subprocess

    home = f"BENTOML_HOME={os.environ['BENTOML_HOME']}".encode()
    pids = subprocess.run(
        ["pgrep", "-f", f"bentoml serve {bento_tag} "], capture_output=True, text=True
    ).stdout.split()
    count = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if home in handle.read().split(b"\0"):
                    count += 1
        except OSError:
            continue
    return count


async def test_registered_model_ends_deployed_and_predicts_like_in_process(
    mesh: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase]
) -> None:
    case = model_cases["sklearn-classifier"]
    deployed = await register_and_wait(kafka, case, "p1")
    assert deployed.data.runtime == "process"
    body = {"rows": rows(case.x_test)}
    direct = httpx.post(f"{deployed.data.endpoint_url}/predict_proba", json=body, timeout=30)
    stable = httpx.post(
        f"{deployer_of(mesh).url}/models/sklearn-classifier/predict_proba", json=body, timeout=30
    )
    for response in (direct, stable):
        assert response.status_code == 200, response.text
        got = np.array([[p["stays"], p["churns"]] for p in response.json()["probabilities"]])
        np.testing.assert_allclose(got, case.model.predict_proba(case.x_test), rtol=1e-6)
    assert stable.headers["x-bentomesh-version"] == "p1"
    # the model process (code from a pickle) has none of the mesh's secrets in its environment
    pid = subprocess.run(
        ["pgrep", "-f", "bentoml serve sklearn-classifier:p1 "], capture_output=True, text=True
    ).stdout.split()[0]
    names = environment_names(int(pid))
    assert "BENTOML_HOME" in names
    assert not names & {"BENTOMESH_API_TOKEN", "BENTOMESH_KEYS_DIR"}


async def test_new_version_replaces_old_with_no_failed_request(
    mesh: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase]
) -> None:
    case = model_cases["sklearn-classifier"]
    url = f"{deployer_of(mesh).url}/models/sklearn-classifier/predict"
    body = {"rows": rows(case.x_test[:2])}
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(url, json=body)
                statuses.append(response.status_code)
                versions.append(response.headers.get("x-bentomesh-version", ""))
                time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        deployed = await register_and_wait(kafka, case, "p2")
        await asyncio.sleep(3)  # keep polling after the old version stopped
    finally:
        stop.set()
        poller.join()
    assert deployed.data.replaced_version == "p1"
    assert len(statuses) > 50
    assert set(statuses) == {200}, f"{len(statuses)} requests: {sorted(set(statuses))}"
    assert versions[0] == "p1"
    assert versions[-1] == "p2"
    assert count_serving("sklearn-classifier:p1") == 0


async def test_version_that_fails_to_load_leaves_old_serving(
    mesh: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase], session_home: Path
) -> None:
    import bentoml

    case = model_cases["sklearn-classifier"]
    from services.packager.pipeline import package

    built = package(register_case(case, version="broken"), chain_id="broken")  # type: ignore[arg-type]
    bento = bentoml.bentos.get(built.built.bento_tag)
    stored = bentoml.models.get(built.built.model_tag)
    # corrupted after packaging: the service cannot load its model (the artifact, nor the
    # compiled trees it would serve instead), so it never gets ready
    for name in ("model.joblib", "trees.so"):
        (Path(stored.path) / name).write_bytes(b"corrupted after packaging")
    cause = new_chain(register_case(case, version="broken"), source="test")  # type: ignore[arg-type]
    image = follow_up(
        cause,
        ImageReady(
            model_name=case.kind,
            model_version="broken",
            bento_tag=built.built.bento_tag,
            backend="process",
            size_bytes=1,
            build_seconds=0.0,
            deployment=built.built.deployment,
        ),
        source="test",
    )
    async with Collector(kafka) as collector:
        await send_signed(image, kafka)
        failed = await collector.wait_for(
            lambda e: e.causationid == image.id, topic=topics.STAGE_FAILED, timeout=180
        )
    assert failed.data.stage == "deployer"
    assert failed.data.error_type == "DeployFailed"
    assert "keeps serving" in failed.data.reason
    stable = httpx.post(
        f"{deployer_of(mesh).url}/models/sklearn-classifier/predict",
        json={"rows": rows(case.x_test[:1])},
        timeout=30,
    )
    assert stable.status_code == 200
    assert stable.headers["x-bentomesh-version"] == "p2"
    assert count_serving(f"{case.kind}:broken") == 0
    shutil.rmtree(bento.path, ignore_errors=True)


async def test_redelivered_image_ready_starts_no_second_process(
    mesh: LocalMesh, kafka: KafkaSettings, model_cases: dict[str, ModelCase]
) -> None:
    case = model_cases["sklearn-classifier"]
    async with Collector(kafka) as collector:
        images = [e for e in collector.events(topics.IMAGE_READY)] or []
        while not any(e.data.model_version == "p2" for e in images):
            await collector.poll()
            images = collector.events(topics.IMAGE_READY)
        image = next(e for e in images if e.data.model_version == "p2")
        before = len(collector.events(topics.DEPLOYED))
        await send_signed(image, kafka)  # the same event, delivered again
        deadline = time.monotonic() + 60
        while len(collector.events(topics.DEPLOYED)) <= before:
            assert time.monotonic() < deadline
            await collector.poll()
        again = collector.events(topics.DEPLOYED)[-1]
    first = next(e for e in collector.events(topics.DEPLOYED) if e.causationid == image.id)
    assert again.id == first.id
    assert again.data.deployment_id == first.data.deployment_id
    assert count_serving(f"{case.kind}:p2") == 1


async def test_late_image_of_an_older_registration_never_replaces_the_newer_version(
    mesh: LocalMesh, kafka: KafkaSettings
) -> None:
    """p1's build arriving again as a new event (a replay, a slow retry) after p2 serves."""
    deployer = deployer_of(mesh)
    async with Collector(kafka) as collector:
        while not any(e.data.model_version == "p1" for e in collector.events(topics.IMAGE_READY)):
            await collector.poll()
        old = next(e for e in collector.events(topics.IMAGE_READY) if e.data.model_version == "p1")
        late = old.model_copy(update={"id": str(uuid.uuid4()), "signature": None})  # re-signed
        assert late.chaintime is not None
        assert late.chaintime < datetime.now(UTC)
        await send_signed(late, kafka)
        failed = await collector.wait_for(
            lambda e: e.causationid == late.id, topic=topics.STAGE_FAILED, timeout=60
        )
    assert failed.data.error_type == "Superseded"
    assert not failed.data.retryable
    assert "registered before the serving version p2" in failed.data.reason
    assert not [e for e in collector.events(topics.DEPLOYED) if e.causationid == late.id]
    listing = httpx.get(f"{deployer.url}/models/sklearn-classifier", timeout=10).json()
    assert listing["version"] == "p2"
    assert count_serving("sklearn-classifier:p1") == 0


def test_model_process_that_dies_is_restarted(mesh: LocalMesh) -> None:
    import os
    import signal

    deployer = deployer_of(mesh)

    def active() -> dict[str, Any]:
        rows = httpx.get(f"{deployer.url}/deployments", timeout=10).json()
        return next(
            d for d in rows if d["status"] == "active" and d["model"] == "sklearn-classifier"
        )

    before = active()
    os.killpg(int(before["handle"]), signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "not restarted"
        try:
            now = active()
            ready = httpx.get(f"{deployer.url}/models/sklearn-classifier/readyz", timeout=10)
        except httpx.HTTPError:  # the new server has bound the port but is not answering yet
            continue
        if now["handle"] != before["handle"] and ready.status_code == 200:
            break
        time.sleep(1)
    assert now["id"] == before["id"]  # the same deployment, restarted in place
    assert now["endpoint"] == before["endpoint"]  # on the same port: watchers keep working
    # The killed server's workers (own sessions) must not live on holding the port: whoever
    # answers now is the new server's, and the new server stays up (it could bind).
    time.sleep(3)
    assert active()["handle"] == now["handle"]
    port = int(now["endpoint"].rsplit(":", 1)[1])
    listeners = {
        c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid
    }
    assert listeners
    for pid in listeners:
        family = {pid, *(p.pid for p in psutil.Process(pid).parents())}
        assert int(now["handle"]) in family
    assert count_serving("sklearn-classifier:p2") == 1


async def test_rollback_serves_the_replaced_version_again_and_announces_it(
    mesh: LocalMesh, kafka: KafkaSettings
) -> None:
    deployer = deployer_of(mesh)
    async with Collector(kafka) as collector:
        response = await asyncio.to_thread(
            httpx.post,
            f"{deployer.url}/deployments/sklearn-classifier/rollback",
            headers=AUTH,
            timeout=180,
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == "p1"
        announced = await collector.wait_for(
            lambda e: e.data.deployment_id == response.json()["id"], topic=topics.DEPLOYED
        )
    assert announced.data.model_version == "p1"
    assert announced.data.replaced_version == "p2"
    listing = httpx.get(f"{deployer.url}/models/sklearn-classifier", timeout=10).json()
    assert listing["version"] == "p1"
    assert count_serving("sklearn-classifier:p2") == 0  # drained and stopped before it answered
    # and forward again, so the restart test below sees p2
    again = httpx.post(
        f"{deployer.url}/deployments/sklearn-classifier/rollback", headers=AUTH, timeout=180
    )
    assert again.json()["version"] == "p2"


def test_a_50_mib_body_gets_413_while_the_model_keeps_answering(
    mesh: LocalMesh, model_cases: dict[str, ModelCase]
) -> None:
    """Streamed without a Content-Length, so the gateway must read it to refuse it: it stops
    at the limit, and the deployer's loop (which the Kafka consumer shares) is not held."""
    url = f"{deployer_of(mesh).url}/models/sklearn-classifier/predict"
    small = {"rows": rows(model_cases["sklearn-classifier"].x_test[:1])}

    def fifty_mib() -> Iterator[bytes]:
        for _ in range(50):
            yield b" " * (1 << 20)

    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            outcome["status"] = httpx.post(url, content=fifty_mib(), timeout=60).status_code
        except httpx.HTTPError as exc:  # the server may close while the client still sends
            outcome["error"] = repr(exc)

    uploader = threading.Thread(target=upload)
    uploader.start()
    latencies = []
    while uploader.is_alive() or len(latencies) < 10:
        started = time.perf_counter()
        assert httpx.post(url, json=small, timeout=30).status_code == 200
        latencies.append(time.perf_counter() - started)
    uploader.join()
    print(f"small requests during the upload: {len(latencies)}, max {max(latencies):.3f} s")
    assert outcome.get("status") == 413 or "error" in outcome, outcome
    assert max(latencies) < 5.0  # not held behind the upload (it took 10 s before the fix)
    declared = httpx.post(url, content=b" " * (50 << 20), timeout=60)
    assert declared.status_code == 413
    assert "bytes" in declared.json()["error"]


def test_rollback_without_history_is_refused(mesh: LocalMesh) -> None:
    url = f"{deployer_of(mesh).url}/deployments/nothing-here/rollback"
    response = httpx.post(url, headers=AUTH, timeout=30)
    assert response.status_code == 409
    assert "no earlier version" in response.json()["error"]


def test_the_control_plane_needs_the_token_and_refuses_other_sites(mesh: LocalMesh) -> None:
    url = f"{deployer_of(mesh).url}/deployments/sklearn-classifier/rollback"
    serving = httpx.get(f"{deployer_of(mesh).url}/deployments", timeout=10).json()
    assert httpx.post(url, timeout=30).status_code == 401
    wrong = httpx.post(url, headers={"Authorization": "Bearer guessed"}, timeout=30)
    assert wrong.status_code == 401
    assert "token is required" in wrong.json()["error"]
    foreign = httpx.post(url, headers={**AUTH, "Origin": "https://evil.example"}, timeout=30)
    assert foreign.status_code == 403
    rebound = httpx.post(url, headers={**AUTH, "Host": "evil.example:8103"}, timeout=30)
    assert rebound.status_code == 403
    assert httpx.get(f"{deployer_of(mesh).url}/deployments", timeout=10).json() == serving


def test_a_monitor_on_an_empty_broker_watches_what_the_deployer_serves(
    mesh: LocalMesh, session_home: Path
) -> None:
    """No Deployed event at all (a broker restarted empty, retention): the monitor asks the
    deployer what serves and watches it, checks included."""
    deployer = deployer_of(mesh)
    serving = {d["id"] for d in httpx.get(f"{deployer.url}/deployments", timeout=10).json()
               if d["status"] == "active"}  # fmt: skip
    assert serving
    with EmbeddedBroker(log_path=session_home / "broker-empty.log") as empty:
        kafka = KafkaSettings(bootstrap_servers=empty.bootstrap_servers)
        asyncio.run(ensure_topics(kafka, partitions=1))
        monitor = LocalMesh(
            kafka,
            RuntimeSettings(home=session_home / "mesh-sync"),
            services=tuple(s for s in SERVICES if s.name == "monitor"),
            free_ports=True,
            extra_env={
                "BENTOMESH_DEPLOYER_URL": deployer.url,
                "BENTOMESH_MONITOR_SYNC_S": "0.5",
                "BENTOMESH_MONITOR_INTERVAL_S": "0.5",
            },
        )
        monitor.start(timeout=60)
        try:
            url = f"{monitor.processes[0].url}/api/status"
            deadline = time.monotonic() + 30
            while True:
                rows = httpx.get(url, timeout=5).json()["deployments"]
                checked = {r["deployment_id"] for r in rows if r["healthy"] is not None}
                if serving <= checked or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            monitor.stop()
    assert serving <= checked, rows


def test_deployer_restart_keeps_state_and_endpoints(mesh: LocalMesh) -> None:
    deployer = deployer_of(mesh)
    before = httpx.get(f"{deployer.url}/deployments", timeout=10).json()
    assert deployer.process is not None
    deployer.process.terminate()
    deployer.process.wait(30)
    mesh.processes.remove(deployer)
    restarted = LocalMesh(
        mesh.kafka,
        mesh.runtime,
        services=(deployer.info,),
        free_ports=True,
        extra_env=mesh.extra_env,
    )
    restarted.start(timeout=120)
    try:
        [proc] = restarted.processes
        after = httpx.get(f"{proc.url}/deployments", timeout=10).json()
        assert [(d["id"], d["status"]) for d in after] == [(d["id"], d["status"]) for d in before]
        listing = httpx.get(f"{proc.url}/models", timeout=10).json()
        assert {m["model"]: m["version"] for m in listing}["sklearn-classifier"] == "p2"
        assert count_serving("sklearn-classifier:p2") == 1
    finally:
        restarted.stop()


async def test_undeploy_stops_the_model_and_announces_it(
    mesh: LocalMesh, kafka: KafkaSettings
) -> None:
    """Last in this module: nothing serves sklearn-classifier afterwards. The restart test
    above stopped the module's deployer, so this one starts its own on the same state."""
    own = LocalMesh(
        mesh.kafka,
        mesh.runtime,
        services=tuple(s for s in SERVICES if s.name == "deployer"),
        free_ports=True,
        extra_env=mesh.extra_env,
    )
    await asyncio.to_thread(own.start, timeout=120)
    try:
        [deployer] = own.processes
        assert count_serving("sklearn-classifier:p2") == 1
        async with Collector(kafka, (topics.UNDEPLOYED,)) as collector:
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "services.cli.main", "--deployer-url", deployer.url,
                 "undeploy", "--model", "sklearn-classifier"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "nothing serves sklearn-classifier" in done.stdout
            removed = await collector.wait_for(
                lambda e: e.data.model_name == "sklearn-classifier", topic=topics.UNDEPLOYED
            )
        assert removed.data.model_version == "p2"
        assert count_serving("sklearn-classifier:p2") == 0
        gateway = httpx.get(f"{deployer.url}/models/sklearn-classifier/predict", timeout=10)
        assert gateway.status_code == 404
        again = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "--deployer-url", deployer.url,
             "undeploy", "--model", "sklearn-classifier"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == 1
        assert "has no active deployment" in again.stderr
    finally:
        own.stop()
