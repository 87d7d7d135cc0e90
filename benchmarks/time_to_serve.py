"""Seconds from publishing ``ModelRegistered`` to the first successful prediction.

Run: ``uv run python -m benchmarks.time_to_serve [--skip-docker] [--swarm] [--registrations N]``.

Side by side in one run, on the same scikit-learn model: the mesh with the process runtime, the
mesh with the Docker runtime (cold: first image of a new dependency set; warm: a second version
reusing the dependency layer), and the manual BentoML steps a person would run (save the model,
build the bento, serve it). With ``--swarm``: images go through a registry the benchmark starts
(Debian's ``docker-registry``), and the Docker runtime is compared with the swarm runtime (one
and two replicas) on a one-node swarm (initialised for the run when the engine is in none).
Each row shows when each stage's event arrived and where the packager's and deployer's time went
(``BentoBuilt.stage_seconds``, ``Deployed.ready_seconds``). With ``--registrations N``, N more
versions go through the process runtime one after another, and their p50 and p90 are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

N_FEATURES = 8
FEATURES = [f"f{i}" for i in range(N_FEATURES)]


def train(directory: Path) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, N_FEATURES))
    y = (x[:, 0] - x[:, 1] > 0).astype(int)
    path = directory / "artifacts" / "model.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, y), path)
    return path


def first_prediction(url: str, route: str, deadline_s: float = 600) -> None:
    body = {"rows": [[0.0] * N_FEATURES]}
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"{url}/{route}", json=body, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


@dataclass
class Timeline:
    """One registration: seconds to first prediction, when each event arrived, stage figures."""

    seconds: float = 0.0
    arrived: dict[str, float] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)

    def note(self, event: Any, started: float) -> None:
        data = event.data
        self.arrived[type(data).__name__] = time.perf_counter() - started
        for stage, seconds in (getattr(data, "stage_seconds", None) or {}).items():
            self.stages[f"package.{stage}"] = seconds
        if getattr(data, "ready_seconds", None) is not None:
            self.stages["deploy.start_to_ready"] = data.ready_seconds

    def describe(self) -> str:
        hops = ", ".join(f"{name} {at:.1f}" for name, at in self.arrived.items())
        stages = ", ".join(f"{name} {sec:.2f}" for name, sec in self.stages.items())
        return f"events at [{hops}]; stages [{stages}]"


async def through_mesh(
    kafka: object, model: Path, name: str, version: str, runtime: str, replicas: int = 1
) -> Timeline:
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.events import DeploymentPrefs, StageFailed
    from bentomesh_contracts.publish import build_model_registered, send_event, signed
    from services.mesh.follow import ChainFollower

    data = build_model_registered(
        model,
        name=name,
        version=version,
        task="classification",
        features=FEATURES,
        deployment=DeploymentPrefs(runtime=runtime, replicas=replicas),
    )  # type: ignore[arg-type]
    event = signed(new_chain(data, source="bench"))  # by the training job's key
    follower = ChainFollower(kafka)  # type: ignore[arg-type]
    await follower.start()
    timeline = Timeline()
    started = time.perf_counter()
    try:
        await send_event(event, kafka)  # type: ignore[arg-type]
        final = await follower.until_done(event.chainid, lambda e: timeline.note(e, started), 900)
    finally:
        await follower.stop()
    if isinstance(final.data, StageFailed):
        raise RuntimeError(final.data.reason)
    first_prediction(final.data.endpoint_url, "predict")
    timeline.seconds = time.perf_counter() - started
    timeline.arrived["first prediction"] = timeline.seconds
    return timeline


def manual_steps(model: Path, workdir: Path) -> float:
    """What a person does by hand with BentoML: save the model, build the bento, serve it."""
    import bentoml
    import joblib

    started = time.perf_counter()
    tag = bentoml.sklearn.save_model("manual-model", joblib.load(model))
    ctx = workdir / "manual"
    ctx.mkdir()
    (ctx / "service.py").write_text(
        "import bentoml, numpy as np\n"
        "@bentoml.service\n"
        "class Manual:\n"
        f"    ref = bentoml.models.BentoModel('{tag.tag}')\n"
        "    def __init__(self):\n"
        "        self.model = bentoml.sklearn.load_model(self.ref)\n"
        "    @bentoml.api\n"
        "    def predict(self, rows: np.ndarray) -> np.ndarray:\n"
        "        return self.model.predict(rows)\n"
    )
    bento = bentoml.bentos.build(
        "service:Manual",
        name="manual",
        build_ctx=str(ctx),
        python={"packages": ["scikit-learn", "numpy"], "lock_packages": False},
        models=[str(tag.tag)],
    )
    port = 3191
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", str(bento.tag), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first_prediction(f"http://127.0.0.1:{port}", "predict")
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(30)


def clear_model_images() -> None:
    """Remove model images and their dangling layers, so the next build starts cold."""
    from services.builder.docker_image import docker_client

    client = docker_client()
    try:
        for image in client.images.list(filters={"label": "bentomesh.bento"}):
            client.images.remove(image.id, force=True)
        client.images.prune(filters={"dangling": True})
    finally:
        client.close()


def start_registry(home: Path) -> tuple[str, subprocess.Popen[bytes]]:
    from services.runtime.ports import free_port

    port = free_port()
    home.mkdir(parents=True)
    (home / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {home / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (home / "registry.log").open("wb")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(home / "config.yml")], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                return f"127.0.0.1:{port}", process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError((home / "registry.log").read_text())
        time.sleep(0.2)


def swarm_runs() -> list[tuple[str, str, str, str, int]]:
    return [
        ("mesh, docker via registry (warm)", "bench-swarm", "s1", "docker", 1),
        ("mesh, docker via registry (warm, again)", "bench-swarm", "s2", "docker", 1),
        ("mesh, swarm 1 replica (warm)", "bench-swarm", "s3", "swarm", 1),
        ("mesh, swarm 2 replicas (warm)", "bench-swarm", "s4", "swarm", 2),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-docker", action="store_true")
    parser.add_argument("--swarm", action="store_true", help="docker vs swarm, via a registry")
    parser.add_argument(
        "--registrations", type=int, default=0, help="N more versions on the process runtime"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-tts-"))
    os.environ["BENTOML_HOME"] = str(workdir / "bentoml")
    os.environ["BENTOMESH_HOME"] = str(workdir / "mesh")
    os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(workdir / "artifacts")
    model = train(workdir)

    from bentomesh_contracts.kafka import KafkaSettings
    from services.builder.backend import docker_available
    from services.mesh.local import LocalMesh
    from services.runtime.ports import free_port
    from services.runtime.settings import RuntimeSettings

    docker = docker_available() and not args.skip_docker
    joined_swarm = False
    registry = None
    if args.swarm:
        state = subprocess.run(
            ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if state != "active":
            subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True)
            joined_swarm = True
        address, registry = start_registry(workdir / "registry")
        os.environ["BENTOMESH_REGISTRY"] = address
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    mesh = LocalMesh(kafka, RuntimeSettings(home=workdir / "mesh"), free_ports=True)
    print(f"workdir {workdir}; starting the embedded mesh ...", flush=True)
    mesh.start(timeout=120)
    results: list[tuple[str, float]] = []
    try:
        runs = [
            ("mesh, process runtime (first model)", "bench-process", "p1", "process", 1),
            ("mesh, process runtime (next version)", "bench-process", "p2", "process", 1),
        ]
        if docker and not args.swarm:
            runs += [
                ("mesh, docker cold (new dependency layer)", "bench-docker", "d1", "docker", 1),
                ("mesh, docker warm (layer cached)", "bench-docker", "d2", "docker", 1),
            ]
        if docker and args.swarm:
            runs += swarm_runs()
        for label, name, version, runtime, replicas in runs:
            if version == "d1":
                clear_model_images()
            print(f"  {label} ...", flush=True)
            timeline = asyncio.run(through_mesh(kafka, model, name, version, runtime, replicas))
            print(f"    {timeline.seconds:.1f}s: {timeline.describe()}", flush=True)
            results.append((label, timeline.seconds))
        repeated = []
        for index in range(args.registrations):
            version = f"r{index + 1}"
            print(f"  process runtime, version {index + 1}/{args.registrations} ...", flush=True)
            timeline = asyncio.run(through_mesh(kafka, model, "bench-process", version, "process"))
            print(f"    {timeline.seconds:.1f}s: {timeline.describe()}", flush=True)
            repeated.append(timeline.seconds)
        if repeated:
            cuts = statistics.quantiles(repeated, n=10) if len(repeated) > 1 else repeated * 9
            results.append((f"mesh, process runtime, p50 of {len(repeated)}", cuts[4]))
            results.append((f"mesh, process runtime, p90 of {len(repeated)}", cuts[8]))
    finally:
        mesh.stop()
        if registry is not None:
            registry.terminate()
        if joined_swarm:
            subprocess.run(["docker", "swarm", "leave", "--force"], check=False)
    print("  manual BentoML: save, build, serve ...", flush=True)
    results.append(("manual bentoml: save, build, serve", manual_steps(model, workdir)))
    base = results[-1][1]
    print(f"\n{'path':<45} {'seconds to first prediction':>28} {'vs manual BentoML':>18}")
    for label, seconds in results:
        print(f"{label:<45} {seconds:>28.1f} {seconds / base:>17.2f}x")


if __name__ == "__main__":
    main()
