"""A burst of 200 registrations: builds run at most ``BENTOMESH_BUILD_CONCURRENCY`` at a time,
the packager's memory does not grow with the burst, and each model's versions come out of every
stage in the order they were registered.

The packager and the builder (process backend) take the burst; deploying 200 versions one after
the other would take most of CI's time, and the deployer's own guard against an older version
replacing a newer one is tested in ``test_deploy_process`` (the chaos test checks that every model
ends on its newest version).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import psutil
import pytest
from sklearn.linear_model import LogisticRegression

from bentomesh_contracts import new_chain, topics
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from tests.integration.faults.report import FaultRow
from tests.kafka_helpers import Collector, send_signed

pytestmark = [pytest.mark.soak, pytest.mark.faults, pytest.mark.integration]

MODELS = tuple(f"burst-{i}" for i in range(8))
VERSIONS = 25  # 8 models x 25 versions = 200 registrations
CONCURRENCY = 2
MIB = 1024 * 1024


@dataclass
class Sampler:
    """Samples the packager every 0.1 s: the builds running (its ``bentoml build`` children)
    and the service process's own memory. Children are not added to it: a child between fork
    and exec shows the parent's shared pages as its own RSS, which would count them twice."""

    pid: int
    builds: list[int] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        service = psutil.Process(self.pid)
        while not self.stop.wait(0.1):
            try:
                children = service.children()
                building = [p for p in children if "bentoml" in " ".join(p.cmdline())]
                self.builds.append(len(building))
                self.rss.append((time.monotonic(), service.memory_info().rss))
            except psutil.NoSuchProcess:
                continue


@pytest.fixture(scope="module")
def burst_mesh(session_home: Path) -> Iterator[LocalMesh]:
    # Its own broker: 200 ImageReady left on the session broker's topics would be the first
    # work of every deployer that later joins the group (they have no deployer here).
    with EmbeddedBroker(log_path=session_home / "broker-burst.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        mesh = LocalMesh(
            kafka,
            RuntimeSettings(home=session_home / "burst"),
            services=tuple(s for s in SERVICES if s.name in ("packager", "builder")),
            free_ports=True,
            extra_env={
                "BENTOMESH_RUNTIME": "process",
                "BENTOMESH_BUILD_CONCURRENCY": str(CONCURRENCY),
            },
        )
        mesh.start(timeout=180)
        try:
            yield mesh
        finally:
            mesh.stop()


def burst(artifact: Path) -> list[CloudEvent[Any]]:
    """Version after version, each model in turn: the order every stage must keep per model."""
    events = []
    for version in range(1, VERSIONS + 1):
        for model in MODELS:
            data = build_model_registered(
                artifact, name=model, version=str(version), task="classification", features=["a"]
            )
            events.append(new_chain(data, source="burst"))
    return events


@pytest.mark.timeout(2400)
def test_burst_of_200_registrations_is_bounded_and_keeps_per_model_order(
    burst_mesh: LocalMesh, artifact_root: Path, matrix: list[FaultRow]
) -> None:
    kafka = burst_mesh.kafka
    x = np.random.default_rng(5).normal(size=(100, 1))
    artifact = artifact_root / "burst.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), artifact)
    chains = burst(artifact)
    wanted = {e.chainid for e in chains}
    packager = next(p for p in burst_mesh.processes if p.info.name == "packager")
    assert packager.process is not None
    sampler = Sampler(packager.process.pid)
    watcher = threading.Thread(target=sampler.run, daemon=True)

    async def run() -> tuple[Collector, float, float]:
        async with Collector(kafka) as collector:
            watcher.start()
            started = time.monotonic()
            for event in chains:
                await send_signed(event, kafka)
            halfway = 0.0
            deadline = started + 2000
            while True:
                done = {
                    e.chainid
                    for t in (topics.IMAGE_READY, topics.STAGE_FAILED)
                    for e in collector.events(t)
                    if e.chainid in wanted
                }
                if not halfway and len(done) >= len(chains) // 2:
                    halfway = time.monotonic()
                if done == wanted:
                    break
                assert time.monotonic() < deadline, f"{len(wanted - done)} of 200 unfinished"
                await collector.poll()
            sampler.stop.set()
            return collector, halfway, time.monotonic() - started

    collector, halfway, elapsed = asyncio.run(run())
    watcher.join(10)

    failed = [e for e in collector.events(topics.STAGE_FAILED) if e.chainid in wanted]
    assert failed == [], [f"{e.subject}: {e.data.reason}" for e in failed]
    outcomes: dict[str, dict[str, set[str]]] = {}
    for topic in (topics.BENTO_BUILT, topics.IMAGE_READY):
        ids: dict[str, set[str]] = defaultdict(set)
        order: dict[str, list[int]] = defaultdict(list)
        for event in collector.events(topic):
            if event.chainid in wanted and event.id not in ids[event.chainid]:
                ids[event.chainid].add(event.id)  # a redelivered record (same id) counts once
                order[event.data.model_name].append(int(event.data.model_version))
        outcomes[topic] = ids
        for model in MODELS:  # per-model order: versions in registration order, none twice
            assert order[model] == list(range(1, VERSIONS + 1)), (topic, model, order[model])
    lost = wanted - set(outcomes[topics.IMAGE_READY])
    duplicated = [c for c, found in outcomes[topics.IMAGE_READY].items() if len(found) > 1]

    peak_builds = max(sampler.builds)
    # bounded memory: the packager's peak over the second half of the burst vs. the first half
    first_half = max(rss for t, rss in sampler.rss if t <= halfway)
    second_half = max(rss for t, rss in sampler.rss if t > halfway)
    matrix.append(
        FaultRow(
            f"burst of {len(chains)} registrations (build concurrency {CONCURRENCY})",
            1,
            len(chains),
            len(lost),
            len(duplicated),
            elapsed,
            f"packaged and imaged in {elapsed:.0f} s; at most {peak_builds} builds at once; "
            f"packager peak RSS {first_half / MIB:.0f} MiB over the first 100, "
            f"{second_half / MIB:.0f} MiB over the last 100; per-model order kept at both "
            "stages (recovery column: time to drain)",
        )
    )
    assert not lost
    assert not duplicated
    assert peak_builds == CONCURRENCY, f"builds at once: {sorted(set(sampler.builds))}"
    growth = second_half - first_half
    assert growth < 64 * MIB, f"packager grew by {growth / MIB:.0f} MiB over the second half"
