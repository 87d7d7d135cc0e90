"""Sending models through the mesh: ``register``, ``deploy``, ``build``, ``serve``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import BentoBuilt, Deployed, StageFailed
from bentomesh_contracts.kafka import KafkaSettings
from services.cli.console import ExitCode, console, err, fail, progress_printer, stop_on_sigterm
from services.cli.failures import kafka_cause
from services.cli.options import Registration, RuntimeChoice, RuntimeOpt, registration_options
from services.errors import MeshAlreadyRunning, MeshError

app = typer.Typer()


WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Follow the model until it is deployed (exit 0) or a stage fails (exit 1).",
    ),
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait for the outcome.")]


def follow_to_outcome(
    event: CloudEvent[Any],
    settings: KafkaSettings,
    timeout: float,
    seen: list[Any] | None = None,
) -> Deployed:
    """Publish ``event``, print each stage as it passes, return the ``Deployed``; a failed
    stage exits 1 with its reason, a broker that refuses exits 3."""
    from aiokafka.errors import KafkaError

    from services.mesh.follow import send_and_follow
    from services.status.render import short_type, summarize

    started = time.perf_counter()

    def show(ev: Any) -> None:
        if seen is not None:
            seen.append(ev)
        elapsed = time.perf_counter() - started
        stage = "FAILED" if isinstance(ev.data, StageFailed) else short_type(ev)
        err.print(f"  {elapsed:6.1f}s  {stage:<16} {summarize(ev.data)}", markup=False)

    try:
        with err.status(f"following {event.subject}"):
            final = asyncio.run(send_and_follow(event, settings, show, timeout))
    except (KafkaError, OSError) as exc:
        fail(
            f"could not publish to {settings.bootstrap_servers}: {exc}{kafka_cause()}",
            ExitCode.UNREACHABLE,
        )
    except TimeoutError:
        fail(
            f"{event.subject}: no outcome within {timeout:.0f}s; `bentomesh events tail "
            f"--chain {event.chainid}` shows how far it got"
        )
    if isinstance(final.data, StageFailed):
        details = f"\n{final.data.details}" if final.data.details else ""
        fail(f"{final.data.stage} failed: {final.data.reason}{details}")
    deployed: Deployed = final.data
    return deployed


@app.command()
@registration_options
def register(
    registration: Registration,
    runtime: RuntimeOpt = RuntimeChoice.auto,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 900,
) -> None:
    """Publish ModelRegistered for a model file (its digest is computed here) and follow it
    until it is deployed or a stage fails."""
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.publish import send_event, signed

    data = registration.event_data(runtime)
    event = signed(new_chain(data, source="bentomesh/cli"), producer="cli")
    settings = KafkaSettings()
    subject = f"{data.model_name}:{data.model_version}"
    if not wait:
        try:
            asyncio.run(send_event(event, settings))
        except Exception as exc:
            fail(
                f"could not publish to {settings.bootstrap_servers}: {exc}{kafka_cause()}",
                ExitCode.UNREACHABLE,
            )
        console.print(
            f"registered {subject}  event={event.id}  chain={event.chainid}", markup=False
        )
        return
    deployed = follow_to_outcome(event, settings, timeout)
    console.print(
        f"{subject} deployed at {deployed.endpoint_url}  chain={event.chainid}", markup=False
    )


@app.command()
@registration_options
def deploy(
    registration: Registration,
    runtime: RuntimeOpt = RuntimeChoice.auto,
    timeout: TimeoutOpt = 900,
) -> None:
    """Send a model through the mesh (starting the embedded mesh if none runs) and serve it."""
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.publish import signed
    from services.mesh.client import ClientSettings, MeshClient
    from services.mesh.local import LocalMesh, ensure_keys
    from services.packager.tasks import sample_request

    data = registration.event_data(runtime)
    ensure_keys()
    event = signed(new_chain(data, source="bentomesh/cli"), producer="cli")
    client = MeshClient()
    running = client.deployer_running()
    stop_on_sigterm()
    started = time.perf_counter()
    mesh = None
    if not running:
        mesh = LocalMesh(
            extra_env={"BENTOMESH_ARTIFACT_ROOTS": ":".join(registration.artifact_dirs())}
        )
        try:
            with err.status("starting the embedded mesh") as status:
                mesh.start(progress_printer(status, err))
        except MeshAlreadyRunning as exc:  # `bentomesh up` is starting it: wait, use it
            mesh = None
            with err.status(f"{exc}; waiting for it"):
                deadline = time.monotonic() + 180
                while not client.deployer_running():
                    if time.monotonic() > deadline:
                        fail(f"{exc}, and its deployer did not answer within 180 s")
                    time.sleep(0.5)
        except MeshError as exc:
            mesh.stop()
            fail(str(exc))
        if mesh is not None:
            deployer = next(p.url for p in mesh.processes if p.info.name == "deployer")
            client = MeshClient(ClientSettings(deployer_url=deployer))

    name, version = data.model_name, data.model_version
    try:
        seen: list[Any] = []
        deployed = follow_to_outcome(event, KafkaSettings(), timeout, seen)
        gateway = client.gateway(name)
        served = [e.data.features for e in seen if isinstance(e.data, BentoBuilt)]
        features = data.features or (served[0] if served else ())
        _, curl = sample_request(gateway, data.task, list(features))
        console.print(
            f"{name}:{version} serving at {deployed.endpoint_url} "
            f"(stable: {gateway}) after {time.perf_counter() - started:.1f}s",
            markup=False,
        )
        console.print(f"try: {curl}", markup=False)
        if mesh is not None:
            console.print("the embedded mesh keeps serving; Ctrl-C stops it")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if mesh is not None:
            mesh.stop()


@app.command()
@registration_options
def build(registration: Registration) -> None:
    """Package a model into a bento without Kafka (for CI pipelines); prints the bento tag."""
    from services.errors import StageError
    from services.packager.pipeline import package
    from services.packager.settings import PackagerSettings

    data = registration.event_data()
    settings = PackagerSettings()
    # the person running this command chose the files: their directories are allowed roots
    roots = ":".join([settings.artifact_roots, *registration.artifact_dirs()]).strip(":")
    settings = settings.model_copy(update={"artifact_roots": roots})
    name, version = data.model_name, data.model_version
    try:
        with err.status("packaging") as status:
            result = package(
                data,
                chain_id=f"cli-{name}-{version}",
                settings=settings,
                progress=progress_printer(status, err),
            )
    except StageError as exc:
        fail(f"{exc.error_type}: {exc.reason}" + (f"\n{exc.details}" if exc.details else ""))
    built = result.built
    err.print(f"built in {built.build_seconds:.1f}s ({built.size_bytes / 1e3:.0f} kB)")
    console.print(built.bento_tag, markup=False)


@app.command()
def serve(
    bento_tag: Annotated[str, typer.Argument(help="Bento to serve, e.g. churn:3.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 3000,
) -> None:
    """Serve one bento locally until Ctrl-C."""
    from services.errors import NotReadyError
    from services.runtime.bento_server import LocalBentoServer

    stop_on_sigterm()
    server = LocalBentoServer(bento_tag, port=port)
    try:
        with err.status(f"starting {bento_tag}"):
            seconds = server.start().wait_ready(timeout=120)
        console.print(
            f"{bento_tag} ready on {server.url} in {seconds:.1f}s (docs: {server.url}/)",
            markup=False,
        )
        while server.alive():
            time.sleep(1)
        fail(f"{bento_tag} exited")
    except NotReadyError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
