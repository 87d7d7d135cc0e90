"""Ten models registered at once: seconds until each serves, by stage, one rollout at a time
against several (``BENTOMESH_DEPLOY_CONCURRENCY``), side by side in one run.

Run: ``uv run python -m benchmarks.concurrent_deploys [--models 10] [--levels 1,2,3]
[--stage-replicas 1,2]``.
Each level gets a fresh embedded mesh (process runtime) and BentoML store; every model is a
different one (so the deployer may roll them out together) and registered in the same instant.
Per model: registered -> Deployed, and each stage's share of it (packager, builder, deployer,
from the events' times). Prints the median and the slowest, and when the last one served.
With ``--stage-replicas 1,2`` each level also runs with that many replicas of the packager and
of the builder (each replica one more process in the stage's consumer group).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

STAGES = ("bento.built", "image.ready", "deployment.ready")


def artifact(directory: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    path = directory / "artifacts" / "model.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
    return path


async def register_together(kafka: Any, model: Path, n: int, level: int) -> list[dict[str, float]]:
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.events import DeploymentPrefs, StageFailed
    from bentomesh_contracts.publish import build_model_registered, send_event, signed
    from services.mesh.follow import ChainFollower

    events = [
        signed(
            new_chain(
                build_model_registered(
                    model,
                    name=f"bench-c{level}-m{i}",
                    version="1",
                    task="classification",
                    features=[f"f{j}" for j in range(8)],
                    deployment=DeploymentPrefs(runtime="process"),
                ),
                source="bench",
            )
        )
        for i in range(n)
    ]
    seen: dict[str, dict[str, float]] = {e.chainid: {} for e in events}

    def on_event(event: Any) -> None:
        short = event.type.removeprefix("bentomesh.").removesuffix(".v1")
        seen[event.chainid][short] = time.time()

    follower = ChainFollower(kafka)
    await follower.start()
    try:
        sent_at = time.time()
        await asyncio.gather(*(send_event(e, kafka) for e in events))
        finals = await follower.until_all_done(set(seen), on_event, 900)
    finally:
        await follower.stop()
    failed = [f.data.reason for f in finals.values() if isinstance(f.data, StageFailed)]
    if failed:
        raise RuntimeError(f"{len(failed)} failed: {failed[0]}")
    rows = []
    for times in seen.values():
        marks = [sent_at, *(times[s] for s in STAGES)]
        rows.append(
            {
                "served": marks[-1] - sent_at,
                **{s: b - a for s, a, b in zip(STAGES, marks, marks[1:], strict=False)},
            }
        )
    return rows


def run_level(
    workdir: Path, model: Path, n: int, level: int, stage_replicas: int = 1
) -> list[dict[str, float]]:
    from bentomesh_contracts.kafka import KafkaSettings
    from services.mesh.local import LocalMesh
    from services.registry import SERVICES
    from services.runtime.ports import free_port
    from services.runtime.settings import RuntimeSettings

    home = workdir / f"level-{level}-x{stage_replicas}"
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ["BENTOMESH_HOME"] = str(home / "mesh")  # its keys sign the registrations
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    mesh = LocalMesh(
        kafka,
        RuntimeSettings(home=home / "mesh"),
        free_ports=True,
        extra_env={
            "BENTOMESH_DEPLOY_CONCURRENCY": str(level),
            "BENTOML_HOME": str(home / "bentoml"),
        },
    )
    label = f"deploy concurrency {level}, {stage_replicas} packager/builder replica(s)"
    print(f"  {label}: starting a fresh mesh ...", flush=True)
    mesh.start(timeout=180)
    extra = [
        LocalMesh(
            kafka,
            mesh.runtime,
            services=(info,),
            free_ports=True,
            extra_env=mesh.extra_env,
        )
        for info in SERVICES
        if info.name in ("packager", "builder")
        for _ in range(stage_replicas - 1)
    ]
    try:
        for replica in extra:
            replica.start(timeout=180)
        print(f"  {label}: {n} models registered at once ...", flush=True)
        return asyncio.run(register_together(mesh.kafka, model, n, level))
    finally:
        for replica in extra:
            replica.stop()
        mesh.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--levels", default="1,2,3", help="deploy concurrencies to compare")
    parser.add_argument(
        "--stage-replicas", default="1", help="packager and builder replicas to compare"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-concurrent-"))
    os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(workdir / "artifacts")
    model = artifact(workdir)
    levels = [
        (int(level), int(replicas))
        for level in args.levels.split(",")
        for replicas in args.stage_replicas.split(",")
    ]
    results = {
        (level, replicas): run_level(workdir, model, args.models, level, replicas)
        for level, replicas in levels
    }
    print(
        f"\n{args.models} models registered at once, process runtime, {os.cpu_count()} cores; "
        "seconds (median / slowest)"
    )
    header = f"{'deploy conc. x stages':<22}{'served':>16}" + "".join(f"{s:>20}" for s in STAGES)
    print(header)
    base = None
    for level, rows in results.items():
        cells = []
        for key in ("served", *STAGES):
            values = [r[key] for r in rows]
            cells.append(f"{statistics.median(values):.1f} / {max(values):.1f}")
        last = max(r["served"] for r in rows)
        base = base or last
        name = f"{level[0]} x {level[1]}"
        print(
            f"{name:<22}{cells[0]:>16}" + "".join(f"{c:>20}" for c in cells[1:])
            + f"   all served at {last:.1f}s ({base / last:.2f}x)"
        )  # fmt: skip


if __name__ == "__main__":
    main()
