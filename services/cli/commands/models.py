"""Sending models through the mesh: ``register``, ``deploy``, ``build``, ``serve``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer

from bentomesh_contracts.kafka import KafkaSettings
from services.cli.console import console, err, fail, progress_printer, stop_on_sigterm
from services.cli.options import Registration, RuntimeOpt, registration_options

app = typer.Typer()


@app.command()
@registration_options
def register(registration: Registration, runtime: RuntimeOpt = "auto") -> None:
    """Publish ModelRegistered for a model file (its digest is computed here)."""
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.publish import send_event, signed

    event = signed(new_chain(registration.event_data(runtime), source="bentomesh/cli"))
    settings = KafkaSettings()
    try:
        asyncio.run(send_event(event, settings))
    except Exception as exc:
        fail(f"could not publish to {settings.bootstrap_servers}: {exc}")
    console.print(
        f"registered {registration.name}:{registration.version}  "
        f"event={event.id}  chain={event.chainid}",
        markup=False,
    )


@app.command()
@registration_options
def deploy(
    registration: Registration,
    runtime: RuntimeOpt = "auto",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Deployed.")] = 900,
) -> None:
    """Send a model through the mesh (starting the embedded mesh if none runs) and serve it."""
    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.events import Deployed, StageFailed
    from bentomesh_contracts.publish import signed
    from services.errors import MeshError
    from services.mesh.client import ClientSettings, MeshClient
    from services.mesh.follow import send_and_follow
    from services.mesh.local import LocalMesh
    from services.packager.tasks import sample_request
    from services.status.render import short_type, summarize

    data = registration.event_data(runtime)
    event = signed(new_chain(data, source="bentomesh/cli"))
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
        except MeshError as exc:
            mesh.stop()
            fail(str(exc))
        deployer = next(p.url for p in mesh.processes if p.info.name == "deployer")
        client = MeshClient(ClientSettings(deployer_url=deployer))

    def show(ev: Any) -> None:
        elapsed = time.perf_counter() - started
        stage = "FAILED" if isinstance(ev.data, StageFailed) else short_type(ev)
        err.print(f"  {elapsed:6.1f}s  {stage:<16} {summarize(ev.data)}", markup=False)

    name, version = registration.name, registration.version
    try:
        with err.status(f"deploying {name}:{version}"):
            final = asyncio.run(send_and_follow(event, KafkaSettings(), show, timeout))
        if isinstance(final.data, StageFailed):
            details = f"\n{final.data.details}" if final.data.details else ""
            fail(f"{final.data.stage}: {final.data.reason}{details}")
        deployed: Deployed = final.data
        gateway = client.gateway(name)
        _, curl = sample_request(gateway, data.task, [f.name for f in data.features])
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
    except TimeoutError as exc:
        fail(str(exc))
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
    name, version = registration.name, registration.version
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
