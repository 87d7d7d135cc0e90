"""Models on a Docker Swarm of two hosts, images through a registry (swarm_cluster.py).

One registration runs as a replicated Swarm service with a replica on each host, both pulled
by digest from the mesh's registry (with a login); the gateway balances over the replicas. A
next version replaces it blue/green, a version that never becomes ready is removed while the
serving one keeps the traffic, and when the second host is lost its replica is rescheduled on
the first while clients keep getting answers; the monitor, watching every replica, alerts on
the lost one and resolves the alert once it moved.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bentomesh_contracts.events import HealthAlert, ImageReady
from services.builder.backend import docker_available
from services.builder.base_image import build_base_image
from services.builder.docker_image import build_image
from services.builder.settings import BuilderSettings
from services.deployer.app import create_deployer
from services.deployer.gateway import Gateway
from services.deployer.rollout import Deployer
from services.deployer.settings import DeployerSettings
from services.errors import DeployFailed
from services.monitor.monitor import HealthMonitor
from services.monitor.service import WatchSet
from services.monitor.sync import DeployerSync, as_cause
from services.packager.pipeline import PackagedBento, package
from services.runtime.ports import free_port
from tests.conftest import require
from tests.integration.conftest import register_case
from tests.integration.registry_server import PASSWORD, USER, needed, start_registry
from tests.integration.swarm_cluster import MANAGER_ADDR, WORKER_ADDR, TwoHosts, run, wait_for
from tests.models import FEATURES, ModelCase

pytestmark = [pytest.mark.integration, pytest.mark.docker]

MODEL = "sklearn-classifier"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHosts]:
    for tool in ("ip", "nsenter", "unshare", "dockerd"):
        needed(tool)
    require(os.geteuid() == 0, "root", "a second Docker engine in a network namespace needs it")
    require(docker_available(), "a Docker engine", ".ci/run installs docker.io, starts dockerd")
    in_swarm = run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}") == "active"
    require(not in_swarm, "an engine in no swarm", "the test makes a cluster of its own")
    home = tmp_path_factory.mktemp("swarm")
    port = free_port()
    registry = start_registry(home, "0.0.0.0", port)
    hosts = TwoHosts(home, port)
    try:
        yield hosts.start()
    finally:
        hosts.stop()
        registry.terminate()
        registry.wait(10)


def pushed(cluster: TwoHosts, bento: PackagedBento) -> ImageReady:
    build_base_image()  # no-op when it exists (CI builds it before the tests)
    settings = BuilderSettings(
        registry=f"127.0.0.1:{cluster.registry_port}",
        registry_username=USER,
        registry_password=PASSWORD,  # type: ignore[arg-type]
    )
    image = build_image(bento.built, settings)
    prefs = image.deployment.model_copy(update={"runtime": "swarm", "replicas": 2})
    return image.model_copy(update={"backend": "swarm", "deployment": prefs})


def swarm_deployer(cluster: TwoHosts, home: Path, ready_timeout_s: float = 240) -> Deployer:
    settings = DeployerSettings(
        home=home,
        registry=f"127.0.0.1:{cluster.registry_port}",
        registry_username=USER,
        registry_password=PASSWORD,  # type: ignore[arg-type]
        ready_timeout_s=ready_timeout_s,
        drain_s=0.5,
    )
    deployer = create_deployer(settings)
    assert "swarm" in deployer.runtimes, "the swarm runtime should be up on a manager"
    return deployer


class GatewayServer:
    """The deployer's gateway over a real HTTP server, as clients reach it."""

    def __init__(self, deployer: Deployer) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            Gateway(deployer.store), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_for("gateway up", lambda: self.server.started, 10)
        return f"http://127.0.0.1:{self.port}/models/{MODEL}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Clients:
    """Predictions through the gateway, one after another, for as long as the test needs."""

    def __init__(self, url: str, rows: list[dict[str, float]]) -> None:
        self.url, self.rows = url, rows
        self.codes: list[int] = []
        self.versions: set[str] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    answer = client.post(f"{self.url}/predict", json={"rows": self.rows})
                    self.codes.append(answer.status_code)
                    if answer.status_code != 200:
                        self.errors.append(answer.text[:300])
                    self.versions.add(answer.headers.get("x-bentomesh-version", ""))
                except httpx.HTTPError:
                    self.codes.append(0)
                time.sleep(0.05)

    def __enter__(self) -> Clients:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


class Watching:
    """The monitor, following the deployer's store as its sync does, checking every replica
    twice a second, in a thread of its own; the alerts it sends are kept."""

    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer
        self.monitor = HealthMonitor(check_interval=0.5)
        self.alerts: list[HealthAlert] = []
        self.monitor.add_alert_handler(self.alerts.append)
        self.watch = WatchSet(self.monitor)
        self.sync = DeployerSync(self.watch, "http://127.0.0.1:1", None, 1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with self.monitor.session() as client:
            while not self._stop.is_set():
                rows = {d.id: d.to_dict() for d in self.deployer.store.all_active()}
                for deployment_id, row in rows.items():
                    if deployment_id not in self.watch.causes:
                        self.watch.apply(as_cause(row))
                self.sync.follow_replicas(rows)
                await self.watch.flush()
                await self.monitor.run_once(client, wait=1)
                await asyncio.sleep(0.5)

    def __enter__(self) -> Watching:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def said(self, state: str, on: str) -> bool:
        return any(
            a.rule == "endpoint_down" and a.state == state and a.deployment_id.startswith(on)
            for a in self.alerts
        )


def hosts_of(endpoints: str | None) -> list[str]:
    return sorted(url.split("//")[1].split(":")[0] for url in (endpoints or "").split())


def test_a_model_serves_from_two_hosts_and_survives_losing_one(
    cluster: TwoHosts,
    built_bentos: dict[str, PackagedBento],
    model_cases: dict[str, ModelCase],
    tmp_path: Path,
) -> None:
    case = model_cases[MODEL]
    rows = [dict(zip(FEATURES, map(float, r), strict=True)) for r in case.x_test[:3]]
    deployer = swarm_deployer(cluster, tmp_path)
    first = pushed(cluster, built_bentos[MODEL])
    second_bento = package(register_case(case, version="2"), chain_id="test-swarm-2")  # type: ignore[arg-type]
    second = pushed(cluster, second_bento)

    # version 1: a replica on each host, both pulled from the registry by digest
    deployed = deployer.deploy(first, cause_id="swarm-1", chain_id="test-swarm")
    one = deployer.store.get(deployed.deployment_id)
    assert one is not None
    assert one.runtime == "swarm"
    assert one.ref == first.image_ref
    assert hosts_of(one.endpoints) == [MANAGER_ADDR, WORKER_ADDR]
    assert cluster.worker("images", "--format", "{{.Repository}}").count("bentomesh/") >= 1
    labels = run(
        "docker", "service", "inspect", one.handle or "", "--format", "{{json .Spec.Labels}}"
    )
    assert f'"bentomesh.model":"{MODEL}"' in labels
    assert f'"bentomesh.deployment":"{one.id}"' in labels

    with GatewayServer(deployer) as url, Clients(url, rows) as clients:
        wait_for("answers through the gateway", lambda: clients.codes.count(200) >= 5, 30)

        # version 2 replaces it blue/green: started beside, switched when ready, old removed
        replaced = deployer.deploy(second, cause_id="swarm-2", chain_id="test-swarm-2")
        two = deployer.store.get(replaced.deployment_id)
        assert two is not None
        assert two.status == "active"
        assert two.replaced_id == one.id
        assert hosts_of(two.endpoints) == [MANAGER_ADDR, WORKER_ADDR]
        assert run("docker", "service", "ls", "--format", "{{.Name}}") == f"bentomesh-{two.id}"
        wait_for("version 2 answers", lambda: "2" in clients.versions, 30)

        # a version that never becomes ready is removed; version 2 keeps serving
        hasty = swarm_deployer(cluster, tmp_path, ready_timeout_s=2)
        with pytest.raises(DeployFailed, match="did not become ready"):
            hasty.deploy(first, cause_id="swarm-3", chain_id="test-swarm-3")
        assert deployer.store.active(MODEL).id == two.id  # type: ignore[union-attr]
        services = run("docker", "service", "ls", "--format", "{{.Name}}").split()
        assert services == [f"bentomesh-{two.id}"], services

        # the second host is lost: its replica moves to the first, clients keep answers, the
        # monitor alerts on the lost replica and resolves the alert once it moved
        watching = Watching(deployer).__enter__()
        wait_for("replicas watched", lambda: len(watching.monitor.targets) == 2, 30)
        lost_replica = f"{two.id}/{WORKER_ADDR}:"
        before = len(clients.codes)
        lost = time.monotonic()
        cluster.stop_worker_engine()
        wait_for("the worker node is down", lambda: "Down" in cluster.nodes().values(), 90)
        down_s = time.monotonic() - lost

        def both_on_the_manager() -> bool:
            deployer.supervise()
            now = deployer.store.get(two.id)
            return now is not None and hosts_of(now.endpoints) == [MANAGER_ADDR] * 2

        try:
            wait_for("the lost replica rescheduled", both_on_the_manager, 120)
        except AssertionError as exc:
            tasks = run("docker", "service", "ps", "--no-trunc", f"bentomesh-{two.id}")
            raise AssertionError(f"{exc}; store: {deployer.store.get(two.id)}; {tasks}") from None
        after = len(clients.codes)
        moved_s = time.monotonic() - lost
        wait_for("answers after the move", lambda: len(clients.codes) > after + 5, 30)
        wait_for(
            "the moved replica's alert resolved",
            lambda: watching.said("resolved", lost_replica),
            30,
        )
        watching.__exit__()
        assert watching.said("firing", lost_replica), watching.alerts

    during: list[Any] = clients.codes[before:]
    print(
        f"\nhost lost: node down after {down_s:.1f} s, replica serving on the manager after "
        f"{moved_s:.1f} s; {len(during)} requests meanwhile, {during.count(200)} answered 200"
    )
    assert during.count(200) > 20
    assert set(during) == {200}, f"answers while a host was lost: {clients.errors}"
