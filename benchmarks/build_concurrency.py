"""Packager throughput by build concurrency: the same registrations, one build at a time vs. more.

Run: ``uv run python -m benchmarks.build_concurrency [--registrations 12] [--levels 1,2,3]``.
Each level gets a fresh packager (``BENTOMESH_BUILD_CONCURRENCY``) and a fresh BentoML store on
one embedded broker, receives every registration at once (4 models, so 3 partitions all have
work) and is timed until the last ``BentoBuilt``. Prints registrations per minute, the ratio to
the first level, and the packager's peak memory (its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression

from bentomesh_contracts import new_chain, topics
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import build_model_registered, send_event
from services.mesh.follow import ChainFollower
from services.mesh.local import LocalMesh
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics

console = Console(emoji=False)


def artifact(directory: Path) -> Path:
    x = np.random.default_rng(1).normal(size=(200, 3))
    path = directory / "artifacts" / "bench.joblib"
    path.parent.mkdir(parents=True)
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
    return path


def peak_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.wait(0.2):
        try:
            out.append(process.memory_info().rss)
        except psutil.NoSuchProcess:
            return


async def run_level(
    kafka: KafkaSettings, work: Path, model: Path, level: int, registrations: int
) -> tuple[float, int]:
    home = work / f"level-{level}"
    mesh = LocalMesh(
        kafka,
        RuntimeSettings(home=home),
        services=tuple(s for s in SERVICES if s.name == "packager"),
        free_ports=True,
        extra_env={
            "BENTOMESH_BUILD_CONCURRENCY": str(level),
            "BENTOML_HOME": str(home / "bentoml"),
            "BENTOMESH_ARTIFACT_ROOTS": str(model.parent),
        },
    )
    await asyncio.to_thread(mesh.start, timeout=120)
    process = mesh.processes[0].process
    assert process is not None
    samples: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(target=peak_rss, args=(process.pid, stop, samples), daemon=True)
    try:
        await asyncio.sleep(3)  # the consumers join their group before the burst
        events = [
            new_chain(
                build_model_registered(
                    model,
                    name=f"bench-{i % 4}",
                    version=f"{level}-{i}",
                    task="classification",
                    features=["a", "b", "c"],
                ),
                source="benchmark",
            )
            for i in range(registrations)
        ]
        follower = ChainFollower(kafka, (topics.BENTO_BUILT, topics.STAGE_FAILED))
        await follower.start()
        wanted = {e.chainid for e in events}
        done: set[str] = set()
        sampler.start()
        started = time.perf_counter()
        for event in events:
            await send_event(event, kafka)
        with console.status(f"concurrency {level}: 0/{registrations} built") as status:

            def finished(event: Any) -> bool:
                if event.chainid in wanted:
                    done.add(event.chainid)
                    status.update(f"concurrency {level}: {len(done)}/{registrations} built")
                return done == wanted

            await follower.until(finished, limit_s=1800, what="the last bento")
        elapsed = time.perf_counter() - started
        await follower.stop()
    finally:
        stop.set()
        await asyncio.to_thread(mesh.stop)
    return elapsed, max(samples, default=0)


async def main_async(registrations: int, levels: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="bentomesh-bench-builds-") as tmp:
        work = Path(tmp)
        model = artifact(work)
        with EmbeddedBroker(log_path=work / "broker.log") as broker:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            await ensure_topics(kafka, partitions=3)
            results = []
            for level in levels:
                elapsed, rss = await run_level(kafka, work, model, level, registrations)
                console.print(f"concurrency {level}: {elapsed:.1f} s")
                results.append((level, elapsed, rss))
    base = results[0][1]
    table = Table(title=f"{registrations} registrations, {psutil.cpu_count()} CPUs")
    for column in ("build concurrency", "seconds", "per minute", "speed-up", "packager peak RSS"):
        table.add_column(column, justify="right")
    for level, elapsed, rss in results:
        table.add_row(
            str(level),
            f"{elapsed:.1f}",
            f"{registrations / elapsed * 60:.1f}",
            f"{base / elapsed:.2f}x",
            f"{rss / 2**20:.0f} MiB",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registrations", type=int, default=12)
    parser.add_argument("--levels", default="1,2,3", help="Comma-separated concurrency levels.")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    asyncio.run(main_async(args.registrations, levels))


if __name__ == "__main__":
    main()
