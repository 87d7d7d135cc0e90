"""kill -9 of every service at random moments while registrations flow, and a broker stall.

Afterwards every registration has exactly one ``Deployed`` (none lost, none twice), each model
ends on its newest version (per-model order held), and what runs is exactly what the deployer's
state says: one server per active deployment, nothing orphaned.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import psutil
import pytest
from sklearn.linear_model import LogisticRegression

from bentomesh_contracts import new_chain, topics
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered
from services.deployer.runtimes import OWNER_ENV, owner_id
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.integration.faults.report import FaultRow
from tests.kafka_helpers import Collector, send_signed
from tests.monitor_status import wait_until_checked_healthy

pytestmark = [pytest.mark.faults, pytest.mark.integration]

MODELS = ("k-alpha", "k-beta", "k-gamma", "k-delta")
SERVICE_NAMES = tuple(s.name for s in SERVICES)


@dataclass
class ChaosMesh:
    mesh: LocalMesh
    kafka: KafkaSettings
    broker: EmbeddedBroker
    home: Path
    artifact: Path
    registered: list[CloudEvent[Any]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return next(p.url for p in self.mesh.processes if p.info.name == name)

    def pid(self, name: str) -> int:
        proc = next(p for p in self.mesh.processes if p.info.name == name)
        assert proc.process is not None
        return proc.process.pid


@pytest.fixture(scope="module")
def chaos(session_home: Path, artifact_root: Path) -> Iterator[ChaosMesh]:
    home = session_home / "faults"
    x = np.random.default_rng(3).normal(size=(200, 3))
    artifact = artifact_root / "faults.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), artifact)
    with EmbeddedBroker(log_path=session_home / "broker-faults.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        asyncio.run(ensure_topics(kafka, partitions=3))
        mesh = LocalMesh(
            kafka,
            RuntimeSettings(home=home),
            free_ports=True,
            extra_env={
                "BENTOMESH_SUPERVISE_INTERVAL_S": "1",
                "BENTOMESH_RUNTIME": "process",
                # A model server restarts within 2-4 s (detection, then ~2.3 s to ready): checks
                # every 0.5 s see the three failures that fire endpoint_down (at 1 s they saw two
                # or three). A restarted server accepts connections before it answers; each check
                # then waits for its timeout, for /readyz and then /livez.
                "BENTOMESH_MONITOR_INTERVAL_S": "0.5",
                "BENTOMESH_MONITOR_TIMEOUT_S": "0.5",
            },
        )
        mesh.start(timeout=180)
        try:
            yield ChaosMesh(mesh, kafka, broker, home, artifact)
        finally:
            mesh.stop()


def registrations(chaos: ChaosMesh, versions: range) -> list[CloudEvent[Any]]:
    events = []
    for version in versions:  # in version order: per-model order is what is checked
        for model in MODELS:
            data = build_model_registered(
                chaos.artifact,
                name=model,
                version=str(version),
                task="classification",
                features=["a", "b", "c"],
            )
            events.append(new_chain(data, source="faults"))
    return events


@dataclass
class Outcome:
    lost: list[str]
    duplicated: list[str]
    failed: list[str]
    redelivered_records: int


async def outcome_of(collector: Collector, chains: list[CloudEvent[Any]]) -> Outcome:
    ids: dict[str, set[str]] = defaultdict(set)
    records: dict[str, int] = defaultdict(int)
    failed = []
    for event in collector.events(topics.DEPLOYED):
        ids[event.chainid].add(event.id)
        records[event.chainid] += 1
    for event in collector.events(topics.STAGE_FAILED):
        failed.append(f"{event.subject}: {event.data.reason}")
    wanted = {e.chainid for e in chains}
    return Outcome(
        lost=[c for c in wanted if not ids.get(c)],
        duplicated=[c for c in wanted if len(ids.get(c, ())) > 1],
        failed=failed,
        redelivered_records=sum(records[c] - len(ids[c]) for c in wanted),
    )


async def wait_all_final(collector: Collector, chains: list[CloudEvent[Any]], limit: float) -> None:
    wanted = {e.chainid for e in chains}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        final = {
            e.chainid for t in (topics.DEPLOYED, topics.STAGE_FAILED) for e in collector.events(t)
        }
        if wanted <= final:
            return
        await collector.poll()
    raise AssertionError(f"{len(wanted - final)} chains unfinished after {limit:.0f}s")


def assert_state_matches_reality(chaos: ChaosMesh, newest: str) -> None:
    """One active deployment per model, on its newest version, each with exactly one live server
    of this deployer; no server of this deployer that the state does not account for."""
    rows = httpx.get(f"{chaos.url('deployer')}/deployments?history=true", timeout=10).json()
    active = [r for r in rows if r["status"] == "active" and r["model"] in MODELS]
    assert sorted(r["model"] for r in active) == sorted(MODELS), active
    assert {r["version"] for r in active} == {newest}, [(r["model"], r["version"]) for r in active]
    assert_servers_match_state(chaos)
    for row in active:
        ready = httpx.get(f"{row['endpoint']}/readyz", timeout=10)
        assert ready.status_code == 200


def owner_of(process: psutil.Process) -> str | None:
    """The deployer a process was started by, if any (init, a zombie: none)."""
    try:
        return process.environ().get(OWNER_ENV)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def assert_servers_match_state(chaos: ChaosMesh) -> None:
    """Exactly one live server (a ``bentoml serve`` of this deployer, alone or supervising its
    workers) per active deployment."""
    rows = httpx.get(f"{chaos.url('deployer')}/deployments", timeout=10).json()
    active = [r for r in rows if r["status"] == "active"]
    owner = owner_id(chaos.home / "deployer.db")
    servers: dict[int, list[int]] = defaultdict(list)  # server pid -> its processes
    for process in psutil.process_iter():
        if owner_of(process) != owner:
            continue
        try:
            parent = process.parent()  # a server alone, or bentoml serve's worker: its server
        except psutil.NoSuchProcess:
            continue
        same_owner = parent is not None and owner_of(parent) == owner
        servers[parent.pid if same_owner and parent else process.pid].append(process.pid)
    assert sorted(servers) == sorted(int(r["handle"]) for r in active), (servers, active)


def print_log_tails(chaos: ChaosMesh, names: tuple[str, ...], lines: int = 60) -> None:
    """What the services said last: the only witness of a failure in a CI log."""
    for name in names:
        log = chaos.home / "logs" / f"{name}.log"
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- last {len(tail)} lines of {log}", *tail, sep="\n")


@pytest.mark.timeout(3000)
def test_kill_minus_nine_of_every_service_loses_and_duplicates_nothing(
    chaos: ChaosMesh, soak: bool, matrix: list[FaultRow]
) -> None:
    rounds = 15 if soak else 5
    seed = int(os.environ.get("BENTOMESH_FAULT_SEED", str(random.SystemRandom().randrange(10**6))))
    rng = random.Random(seed)
    chains = registrations(chaos, range(1, 6))
    recoveries: list[float] = []
    kills = [name for name in SERVICE_NAMES for _ in range(rounds)]
    rng.shuffle(kills)
    errors: list[BaseException] = []

    def chaos_monkey() -> None:
        """``rounds`` kills of each service in random order, at random gaps, so they land at
        every stage of the pipeline while the registrations flow (each kill is followed by a
        restart, as a supervisor would do)."""
        try:
            for name in kills:
                time.sleep(rng.uniform(2.0, 10.0))
                os.kill(chaos.pid(name), signal.SIGKILL)
                started = time.monotonic()
                chaos.mesh.restart(name, timeout=180)
                recoveries.append(time.monotonic() - started)
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    async def run() -> Outcome:
        async with Collector(chaos.kafka) as collector:
            for event in chains:
                await send_signed(event, chaos.kafka)
            monkey = threading.Thread(target=chaos_monkey, daemon=True)
            monkey.start()
            await wait_all_final(collector, chains, limit=2000)
            await asyncio.to_thread(monkey.join, 900)
            assert not errors, errors
            await asyncio.sleep(3)  # a supervision cycle after the last restart
            await collector.poll()
            return await outcome_of(collector, chains)

    outcome = asyncio.run(run())
    matrix.append(
        FaultRow(
            "kill -9 of a service (each of 4, random moments)",
            len(kills),
            len(chains),
            len(outcome.lost),
            len(outcome.duplicated),
            max(recoveries, default=0.0),
            f"seed {seed}; {outcome.redelivered_records} redelivered records (same id)",
        )
    )
    assert outcome.lost == [], f"seed {seed}"
    assert outcome.duplicated == [], f"seed {seed}"
    assert outcome.failed == [], f"seed {seed}"
    assert_state_matches_reality(chaos, newest="5")
    chaos.registered.extend(chains)


@pytest.mark.timeout(1200)
def test_broker_stall_of_ten_seconds_is_ridden_out_without_restarts(
    chaos: ChaosMesh, matrix: list[FaultRow]
) -> None:
    pids = {name: chaos.pid(name) for name in SERVICE_NAMES}
    chains = registrations(chaos, range(6, 7))
    broker_pid = chaos.broker.pid
    assert broker_pid is not None

    async def run() -> tuple[Outcome, float]:
        async with Collector(chaos.kafka) as collector:
            for event in chains:
                await send_signed(event, chaos.kafka)
            # Stall mid-stream: after the first stage has answered once.
            await collector.wait_for(
                lambda e: e.chainid in {c.chainid for c in chains},
                topic=topics.BENTO_BUILT,
                timeout=300,
            )
            os.kill(broker_pid, signal.SIGSTOP)
            await asyncio.sleep(10)
            os.kill(broker_pid, signal.SIGCONT)
            resumed = time.time()
            # Recovery: until the mesh produces its first event after the stall.
            while not [r for r in collector.records if r.timestamp / 1000 > resumed]:
                await collector.poll()
            first = min(
                r.timestamp / 1000 for r in collector.records if r.timestamp / 1000 > resumed
            )
            recovery = first - resumed
            await wait_all_final(collector, chains, limit=600)
            return await outcome_of(collector, chains), recovery

    outcome, recovery = asyncio.run(run())
    matrix.append(
        FaultRow(
            "broker stall (SIGSTOP 10 s, SIGCONT)",
            1,
            len(chains),
            len(outcome.lost),
            len(outcome.duplicated),
            recovery,
            f"{outcome.redelivered_records} redelivered records (same id)",
        )
    )
    assert outcome.lost == []
    assert outcome.duplicated == []
    assert outcome.failed == []
    assert {name: chaos.pid(name) for name in SERVICE_NAMES} == pids  # nobody restarted
    for name in SERVICE_NAMES:
        proc = next(p for p in chaos.mesh.processes if p.info.name == name)
        assert proc.process is not None
        assert proc.process.poll() is None, f"{name} died"
    assert_state_matches_reality(chaos, newest="6")


@pytest.mark.timeout(900)
def test_model_server_that_crashes_is_restarted_once_and_alerted(
    chaos: ChaosMesh, matrix: list[FaultRow]
) -> None:
    """kill -9 of a model server: the deployer restarts it in place (same deployment, same
    endpoint, one server), the monitor fires ``HealthAlert`` and resolves it."""
    data = build_model_registered(
        chaos.artifact, name="k-crash", version="1", task="classification", features=["a", "b", "c"]
    )
    registered = new_chain(data, source="faults")

    async def run() -> tuple[list[Any], float]:
        async with Collector(chaos.kafka) as collector:
            await send_signed(registered, chaos.kafka)
            deployed = await collector.wait_for(
                lambda e: e.chainid == registered.chainid, topic=topics.DEPLOYED, timeout=300
            )
            rows = httpx.get(f"{chaos.url('deployer')}/deployments?model=k-crash", timeout=10)
            before = next(r for r in rows.json() if r["status"] == "active")
            # the monitor learns of the deployment from Kafka, and may lag after the stall
            await asyncio.to_thread(wait_until_checked_healthy, chaos.url("monitor"), before["id"])
            os.killpg(int(before["handle"]), signal.SIGKILL)  # the server and its process group
            crashed = time.monotonic()

            def alert(state: str) -> Any:
                return lambda e: (
                    e.data.deployment_id == deployed.data.deployment_id and e.data.state == state
                )

            await collector.wait_for(alert("firing"), topic=topics.HEALTH_ALERT, timeout=120)
            await collector.wait_for(alert("resolved"), topic=topics.HEALTH_ALERT, timeout=180)
            recovery = time.monotonic() - crashed
            after = next(
                r
                for r in httpx.get(
                    f"{chaos.url('deployer')}/deployments?model=k-crash", timeout=10
                ).json()
                if r["status"] == "active"
            )
            assert after["id"] == before["id"]
            assert after["endpoint"] == before["endpoint"]
            assert after["handle"] != before["handle"]
            alerts = [
                e
                for e in collector.events(topics.HEALTH_ALERT)
                if e.data.deployment_id == deployed.data.deployment_id
            ]
            return alerts, recovery

    try:
        alerts, recovery = asyncio.run(run())
    except AssertionError:
        print_log_tails(chaos, ("monitor", "deployer"))
        raise
    firing = {e.id for e in alerts if e.data.state == "firing"}
    matrix.append(
        FaultRow(
            "model server kill -9 (restart by policy, alert)",
            1,
            1,
            0,
            0,
            recovery,
            f"{len(firing)} firing and {len(alerts) - len(firing)} resolved HealthAlert",
        )
    )
    assert len(firing) == 1
    assert_servers_match_state(chaos)


@pytest.mark.timeout(1500)
def test_replicas_added_and_killed_mid_stream_give_one_outcome_per_registration(
    chaos: ChaosMesh, matrix: list[FaultRow]
) -> None:
    """A second replica of each stage (one consumer group each) before 20 registrations; while
    they flow, the first replica of each is killed (-9, not restarted) and a third is added.
    Rebalances hand events that one replica is still working on to another: each registration
    still ends in exactly one ``Deployed`` id and no ``StageFailed``."""
    stages = tuple(s for s in SERVICES if s.name in ("packager", "builder", "deployer"))

    def replica(info: Any) -> LocalMesh:
        mesh = LocalMesh(
            chaos.kafka,
            chaos.mesh.runtime,
            services=(info,),
            free_ports=True,
            extra_env=chaos.mesh.extra_env,
        )
        mesh.start(timeout=180)
        return mesh

    replicas = [replica(info) for info in stages]
    chains = registrations(chaos, range(10, 15))
    errors: list[BaseException] = []
    recoveries: list[float] = []

    def churn() -> None:
        try:
            time.sleep(6)
            for info in stages:  # the first replicas die in the middle of their work
                os.kill(chaos.pid(info.name), signal.SIGKILL)
            time.sleep(4)
            for info in stages:
                started = time.monotonic()
                replicas.append(replica(info))
                recoveries.append(time.monotonic() - started)
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    async def run() -> Outcome:
        async with Collector(chaos.kafka) as collector:
            for event in chains:
                await send_signed(event, chaos.kafka)
            changes = threading.Thread(target=churn, daemon=True)
            changes.start()
            await wait_all_final(collector, chains, limit=1200)
            await asyncio.to_thread(changes.join, 600)
            assert not errors, errors
            await asyncio.sleep(3)
            await collector.poll()
            return await outcome_of(collector, chains)

    try:
        outcome = asyncio.run(run())
    finally:
        for mesh in replicas:
            mesh.stop()
        for info in stages:  # the module's mesh as the other tests expect it
            chaos.mesh.restart(info.name, timeout=180)
    matrix.append(
        FaultRow(
            "replicas: 2 per stage, 1 killed and 1 added mid-stream (each of 3)",
            len(stages) * 2,
            len(chains),
            len(outcome.lost),
            len(outcome.duplicated),
            max(recoveries, default=0.0),
            f"{outcome.redelivered_records} redelivered records (same id); "
            f"{len(outcome.failed)} failed",
        )
    )
    assert outcome.lost == []
    assert outcome.duplicated == []
    assert outcome.failed == []
    assert_state_matches_reality(chaos, newest="14")
