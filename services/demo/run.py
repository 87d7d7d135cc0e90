"""``bentomesh demo``: the whole mesh on this machine, three kinds of model, end to end.

Trains the examples; registers all three; follows each chain stage by stage; calls each stable
endpoint with a real request and shows the response; then crashes one deployment and shows the
monitor's ``HealthAlert`` firing and, once the deployer has restarted it, resolving.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bentomesh_contracts import topics
from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.events import HealthAlert, StageFailed
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import send_event, signed
from services.demo.examples import Example, Say, call, train_examples
from services.errors import DemoFailed, MeshError
from services.mesh.client import ClientSettings, MeshClient
from services.mesh.follow import ChainFollower
from services.mesh.local import LocalMesh
from services.runtime.settings import RuntimeSettings
from services.status.render import summarize


async def deploy_all(
    kafka: KafkaSettings, examples: list[Example], on_event: Callable[[Any], None]
) -> dict[str, CloudEvent[Any]]:
    """Register every example and wait for each chain's final event, keyed by model name."""
    follower = ChainFollower(kafka)
    await follower.start()
    try:
        events = {
            ex.name: signed(new_chain(ex.registration, source="bentomesh/demo"), producer="cli")
            for ex in examples
        }
        for event in events.values():
            await send_event(event, kafka)
        done = await follower.until_all_done({e.chainid for e in events.values()}, on_event, 900)
    finally:
        await follower.stop()
    return {name: done[event.chainid] for name, event in events.items()}


def deploy_examples(
    kafka: KafkaSettings, examples: list[Example], say: Say
) -> dict[str, CloudEvent[Any]]:
    started = time.perf_counter()

    def show(event: CloudEvent[Any]) -> None:
        kind = event.type.removeprefix("bentomesh.").removesuffix(".v1")
        say(
            f"{time.perf_counter() - started:6.1f}s  {event.subject or '?':<10} {kind:<18} "
            f"{summarize(event.data)}"
        )

    results = asyncio.run(deploy_all(kafka, examples, show))
    failed = [e for e in results.values() if isinstance(e.data, StageFailed)]
    if failed:
        raise RuntimeError("; ".join(f"{e.subject}: {e.data.reason}" for e in failed))
    return results


@dataclass(frozen=True)
class Outage:
    model: str
    rule: str
    fired_after_s: float
    resolved_after_s: float


def crash(deployment: dict[str, Any]) -> None:
    """Kill a deployment the hard way: the deployer and the monitor must notice on their own."""
    if deployment["runtime"] == "process":
        os.killpg(int(deployment["handle"]), signal.SIGKILL)  # bentoml serve and its workers
    else:
        from docker.client import DockerClient

        DockerClient.from_env().containers.get(deployment["handle"]).kill()


async def outage(kafka: KafkaSettings, deployment: dict[str, Any], limit_s: float) -> Outage:
    """Crash one deployment and time its ``HealthAlert`` firing, then resolving (after the
    deployer restarts it)."""
    follower = ChainFollower(kafka, (topics.HEALTH_ALERT,))
    await follower.start()
    try:
        started = time.perf_counter()
        crash(deployment)

        def alert(state: str) -> Callable[[Any], bool]:
            return lambda e: (
                isinstance(e.data, HealthAlert)
                and e.data.deployment_id == deployment["id"]
                and e.data.state == state
            )

        fired = await follower.until(alert("firing"), limit_s, "HealthAlert firing")
        fired_after = time.perf_counter() - started
        resolved = await follower.until(
            lambda e: alert("resolved")(e) and e.data.rule == fired.data.rule,
            limit_s,
            "HealthAlert resolved",
        )
        return Outage(
            deployment["model"],
            resolved.data.rule,
            fired_after,
            time.perf_counter() - started,
        )
    finally:
        await follower.stop()


def run_demo(
    *,
    runtime: str,
    keep_running: bool,
    out: Console,
    status: Callable[[str], Any],
    progress: Callable[[Any, Console], Say],
) -> None:
    """The whole demo. ``status(text)`` opens a spinner; ``progress(spinner, console)`` prints
    progress lines under it. Raises :class:`DemoFailed` with the reason."""
    started = time.perf_counter()
    # Its own homes (model store, state, logs): a demo never collides with a mesh already here,
    # nor with an earlier demo's models.
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-demo-"))
    out.print(f"[bold]BentoMesh demo[/bold] (files in {workdir})")
    with status("training example models") as spinner:
        examples = train_examples(workdir / "models", runtime, progress(spinner, out))
    mesh = LocalMesh(
        runtime=RuntimeSettings(home=workdir / "mesh"),
        extra_env={
            "BENTOMESH_ARTIFACT_ROOTS": str(workdir / "models"),
            "BENTOML_HOME": str(workdir / "bentoml"),
            # Short check interval so the outage below is seen within seconds: a crashed model
            # server is back in 2-7 s (supervision every 5 s, then about 2 s to ready).
            "BENTOMESH_MONITOR_INTERVAL_S": os.environ.get("BENTOMESH_MONITOR_INTERVAL_S", "0.5"),
            "BENTOMESH_MONITOR_DOWN_AFTER": os.environ.get("BENTOMESH_MONITOR_DOWN_AFTER", "2"),
        },
    )
    try:
        with status("starting the embedded mesh") as spinner:
            mesh.start(progress(spinner, out), timeout=180)
        urls = {p.info.name: p.url for p in mesh.processes}
        client = MeshClient(ClientSettings(deployer_url=urls["deployer"]))
        gateway = client.deployer_url
        out.print(f"status page: {urls['monitor']}/ui")
        out.print("registering 3 models; each goes packager -> builder -> deployer:")
        with status("deploying") as spinner:
            results = deploy_examples(mesh.kafka, examples, progress(spinner, out))
        _served_table(out, examples, gateway, results)
        for example in examples:
            curl, code, body = call(gateway, example)
            out.print(f"[bold]{example.name}[/bold] ({example.task}):")
            out.print(f"  $ {curl}", markup=False)
            out.print(f"  -> {code} {body[:400]}", markup=False)
            if code != 200:
                raise DemoFailed(f"{example.name} answered {code}")
        victim = examples[0].name
        active = client.active(victim)
        if active is None:
            raise DemoFailed(f"{victim} has no active deployment")
        deployment = active.model_dump()
        out.print(
            f"crashing {victim} ({deployment['runtime']} {deployment['handle'][:12]}, kill -9): "
            "the monitor alerts, the deployer restarts it"
        )
        with status("waiting for HealthAlert firing and resolved"):
            seen = asyncio.run(outage(mesh.kafka, deployment, limit_s=120))
        out.print(
            f"  HealthAlert {seen.rule} [red]firing[/red] after {seen.fired_after_s:.1f}s, "
            f"[green]resolved[/green] after {seen.resolved_after_s:.1f}s"
        )
        curl, code, body = call(gateway, examples[0])
        out.print(f"  -> {code} {body[:200]}", markup=False)
        if code != 200:
            raise DemoFailed(f"{victim} answered {code} after its restart")
        out.print(
            f"[green]demo complete[/green] in {time.perf_counter() - started:.0f}s: "
            f"3 models registered, built, deployed and answering; {victim} crashed, alerted "
            f"({seen.fired_after_s:.1f}s), restarted and resolved ({seen.resolved_after_s:.1f}s)."
        )
        if keep_running:
            out.print("the mesh keeps running (bentomesh status, events tail); Ctrl-C stops")
            while True:
                time.sleep(3600)
    except (MeshError, RuntimeError, TimeoutError) as exc:
        raise DemoFailed(f"demo failed: {exc}; logs in {mesh.log_dir}") from exc
    except KeyboardInterrupt:
        pass
    finally:
        with status("stopping the mesh"):
            mesh.stop()


def _served_table(
    out: Console, examples: list[Example], gateway: str, results: dict[str, CloudEvent[Any]]
) -> None:
    table = Table(title="served models", title_justify="left")
    for column in ("model", "task", "endpoint (stable)", "version endpoint"):
        table.add_column(column)
    for example in examples:
        table.add_row(
            example.name,
            example.task,
            f"{gateway}/models/{example.name}",
            results[example.name].data.endpoint_url,
        )
    out.print(table)
