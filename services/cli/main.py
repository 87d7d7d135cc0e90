"""``bentomesh``: run the mesh, register models, watch events."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from bentomesh_contracts.kafka import KafkaSettings

app = typer.Typer(
    help="BentoMesh: from a trained model to a monitored BentoML endpoint, through Kafka events.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
events_app = typer.Typer(help="Watch the event stream.", no_args_is_help=True)
contracts_app = typer.Typer(help="Event contracts: JSON Schemas, AsyncAPI.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(contracts_app, name="contracts")
dlq_app = typer.Typer(help="Inspect and re-drive dead-lettered events.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

console = Console(highlight=False, soft_wrap=True, emoji=False)  # model names like "fire"
err = Console(stderr=True, highlight=False, emoji=False)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092,
    partitions: Annotated[int, typer.Option(help="Partitions per mesh topic.")] = 3,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) with the mesh topics, until Ctrl-C."""

    from services.runtime.embedded_broker import EmbeddedBroker
    from services.runtime.errors import BrokerUnavailableError
    from services.runtime.topics import ensure_topics

    _stop_on_sigterm()
    try:
        with EmbeddedBroker(port) as embedded:
            settings = KafkaSettings(bootstrap_servers=embedded.bootstrap_servers)
            created = asyncio.run(ensure_topics(settings, partitions=partitions))
            console.print(
                f"broker listening on [bold]{embedded.bootstrap_servers}[/bold] "
                f"(memory storage, {len(created)} topics created); Ctrl-C stops it"
            )
            while True:
                time.sleep(3600)
    except BrokerUnavailableError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        console.print("broker stopped")


def _progress_printer(status: Any, out: Console = console) -> Any:
    """Print each progress message and show it as the spinner's text."""

    def show(message: str) -> None:
        out.print(f"  {message}")
        status.update(message)

    return show


def _status_table(mesh: Any) -> Table:
    table = Table(title="BentoMesh", title_justify="left")
    for column in ("service", "state", "pid", "http", "uptime"):
        table.add_column(column)
    broker_state = "embedded" if mesh.broker_is_embedded else "external"
    table.add_row(
        "broker",
        broker_state,
        str(mesh.broker.pid if mesh.broker else "-"),
        mesh.kafka.bootstrap_servers,
        "",
    )
    for proc in mesh.processes:
        state = proc.state()
        color = "green" if state == "healthy" else "yellow" if state == "starting" else "red"
        uptime = f"{time.monotonic() - proc.started_at:.0f}s"
        pid = str(proc.process.pid) if proc.process else "-"
        table.add_row(proc.info.name, f"[{color}]{state}[/{color}]", pid, proc.url, uptime)
    return table


@app.command()
def up(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for services.")] = 120.0,
) -> None:
    """Start the mesh: the embedded broker (unless one answers) and every service; Ctrl-C stops."""
    from services.mesh.local import LocalMesh
    from services.runtime.errors import MeshError

    _stop_on_sigterm()
    mesh = LocalMesh()
    try:
        with console.status("starting the mesh") as status:
            mesh.start(_progress_printer(status), timeout=timeout)
        console.print(f"mesh up; logs in {mesh.log_dir}. Ctrl-C stops it.")
        with Live(_status_table(mesh), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(2)
                live.update(_status_table(mesh))
    except MeshError as exc:
        mesh.stop()
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        console.print("stopping")
        mesh.stop(lambda line: console.print(f"  {line}"))


ModelPath = Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Model file.")]
NameOpt = Annotated[str, typer.Option(help="Model name (slug).")]
VersionOpt = Annotated[str, typer.Option(help="Model version.")]
TaskOpt = Annotated[str, typer.Option(help="classification | regression | causal")]
FeaturesOpt = Annotated[
    str | None, typer.Option(help="Comma-separated feature names, in model order.")
]
FrameworkOpt = Annotated[
    str | None, typer.Option(help="sklearn | xgboost | lightgbm | econml (default: detect)")
]
LabelsOpt = Annotated[str | None, typer.Option(help="Comma-separated class names.")]
CalibrationOpt = Annotated[
    Path | None, typer.Option(exists=True, help=".npz with X and y for regression intervals.")
]
TreatmentOpt = Annotated[str | None, typer.Option(help="Treatment name (causal).")]
OutcomeOpt = Annotated[str | None, typer.Option(help="Outcome name (causal).")]
RuntimeOpt = Annotated[str, typer.Option(help="auto | docker | process")]


def _registration(
    model_path: Path,
    name: str,
    version: str,
    task: str,
    features: str | None,
    framework: str | None,
    class_labels: str | None,
    calibration: Path | None,
    treatment: str | None,
    outcome: str | None,
    runtime: str,
) -> Any:
    """The ModelRegistered data for the command line options, or a clear error."""
    from pydantic import ValidationError

    from bentomesh_contracts.events import DeploymentPrefs
    from bentomesh_contracts.publish import build_model_registered

    feature_names = _split(features)
    if not feature_names:
        raise _fail("--features is required: the feature names in the order the model expects")
    try:
        return build_model_registered(
            model_path,
            name=name,
            version=version,
            task=task,  # type: ignore[arg-type]
            features=feature_names,
            framework=framework,  # type: ignore[arg-type]
            class_labels=_split(class_labels),
            calibration_path=calibration,
            treatment=treatment,
            outcome=outcome,
            deployment=DeploymentPrefs(runtime=runtime),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise _fail(f"{field}: {first['msg']}") from exc


@app.command()
def register(
    model_path: ModelPath,
    name: NameOpt,
    version: VersionOpt,
    task: TaskOpt,
    features: FeaturesOpt = None,
    framework: FrameworkOpt = None,
    class_labels: LabelsOpt = None,
    calibration: CalibrationOpt = None,
    treatment: TreatmentOpt = None,
    outcome: OutcomeOpt = None,
    runtime: RuntimeOpt = "auto",
) -> None:
    """Publish ModelRegistered for a model file (its digest is computed here)."""

    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.publish import send_event, signed

    data = _registration(
        model_path,
        name,
        version,
        task,
        features,
        framework,
        class_labels,
        calibration,
        treatment,
        outcome,
        runtime,
    )
    event = signed(new_chain(data, source="bentomesh/cli"))
    settings = KafkaSettings()
    try:
        asyncio.run(send_event(event, settings))
    except Exception as exc:
        raise _fail(f"could not publish to {settings.bootstrap_servers}: {exc}") from exc
    console.print(f"registered {name}:{version}  event={event.id}  chain={event.chainid}")


@app.command()
def build(
    model_path: ModelPath,
    name: NameOpt,
    version: VersionOpt,
    task: TaskOpt,
    features: FeaturesOpt = None,
    framework: FrameworkOpt = None,
    class_labels: LabelsOpt = None,
    calibration: CalibrationOpt = None,
    treatment: TreatmentOpt = None,
    outcome: OutcomeOpt = None,
) -> None:
    """Package a model into a bento without Kafka (for CI pipelines); prints the bento tag."""
    from services.packager.pipeline import package
    from services.packager.settings import PackagerSettings
    from services.runtime.errors import StageError

    data = _registration(
        model_path,
        name,
        version,
        task,
        features,
        framework,
        class_labels,
        calibration,
        treatment,
        outcome,
        "auto",
    )
    settings = PackagerSettings()
    # the person running this command chose the file: its directory is an allowed root
    roots = [str(model_path.resolve().parent)]
    if calibration is not None:
        roots.append(str(calibration.resolve().parent))
    settings = settings.model_copy(
        update={"artifact_roots": ":".join([settings.artifact_roots, *roots]).strip(":")}
    )
    try:
        with err.status("packaging") as status:
            result = package(
                data,
                chain_id=f"cli-{name}-{version}",
                settings=settings,
                progress=_progress_printer(status, err),
            )
    except StageError as exc:
        raise _fail(
            f"{exc.error_type}: {exc.reason}" + (f"\n{exc.details}" if exc.details else "")
        ) from exc
    err.print(
        f"built in {result.built.build_seconds:.1f}s ({result.built.size_bytes / 1e3:.0f} kB)"
    )
    console.print(result.built.bento_tag)


@app.command()
def serve(
    bento_tag: Annotated[str, typer.Argument(help="Bento to serve, e.g. churn:3.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 3000,
) -> None:
    """Serve one bento locally until Ctrl-C."""
    from services.runtime.bento_server import LocalBentoServer, NotReadyError

    _stop_on_sigterm()
    server = LocalBentoServer(bento_tag, port=port)
    try:
        with err.status(f"starting {bento_tag}"):
            seconds = server.start().wait_ready(timeout=120)
        console.print(f"{bento_tag} ready on {server.url} in {seconds:.1f}s (docs: {server.url}/)")
        while server.alive():
            time.sleep(1)
        raise _fail(f"{bento_tag} exited")
    except NotReadyError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _deployer_url() -> str:
    return os.environ.get("BENTOMESH_DEPLOYER_URL", "http://127.0.0.1:8103").rstrip("/")


@app.command()
def ui(
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open a browser.")] = True,
) -> None:
    """The status page of a running mesh (served by the monitor at BENTOMESH_MONITOR_URL)."""
    import webbrowser

    import httpx

    base = os.environ.get("BENTOMESH_MONITOR_URL", "http://127.0.0.1:8104").rstrip("/")
    try:
        state = httpx.get(f"{base}/api/status", timeout=5).json()
    except httpx.HTTPError as exc:
        raise _fail(f"no monitor at {base} ({exc}); start the mesh with `bentomesh up`") from exc
    console.print(
        f"{base}/ui  ({len(state['deployments'])} deployments, {len(state['chains'])} chains)"
    )
    if open_browser:
        webbrowser.open(f"{base}/ui")


def sample_request(base_url: str, task: str, features: list[str]) -> tuple[str, str]:
    """The route and a curl line that calls it with one all-zero row."""
    route = {"classification": "predict_proba", "regression": "predict"}.get(task, "effect")
    body = json.dumps({"rows": [dict.fromkeys(features, 0.0)]})
    curl = f"curl -s -X POST {base_url}/{route} -H 'content-type: application/json' -d '{body}'"
    return route, curl


@app.command()
def deploy(
    model_path: ModelPath,
    name: NameOpt,
    version: VersionOpt,
    task: TaskOpt,
    features: FeaturesOpt = None,
    framework: FrameworkOpt = None,
    class_labels: LabelsOpt = None,
    calibration: CalibrationOpt = None,
    treatment: TreatmentOpt = None,
    outcome: OutcomeOpt = None,
    runtime: RuntimeOpt = "auto",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Deployed.")] = 900,
) -> None:
    """Send a model through the mesh (starting the embedded mesh if none runs) and serve it."""

    import httpx

    from bentomesh_contracts.envelope import new_chain
    from bentomesh_contracts.events import BentoBuilt, Deployed, ImageReady, StageFailed
    from bentomesh_contracts.publish import send_event, signed
    from services.mesh.follow import ChainFollower
    from services.mesh.local import LocalMesh
    from services.runtime.errors import MeshError

    data = _registration(
        model_path,
        name,
        version,
        task,
        features,
        framework,
        class_labels,
        calibration,
        treatment,
        outcome,
        runtime,
    )
    event = signed(new_chain(data, source="bentomesh/cli"))
    settings = KafkaSettings()
    mesh = None
    try:
        running = httpx.get(f"{_deployer_url()}/healthz", timeout=2).status_code < 300
    except httpx.HTTPError:
        running = False
    _stop_on_sigterm()
    started = time.perf_counter()
    if not running:
        roots = [str(model_path.resolve().parent)]
        if calibration is not None:
            roots.append(str(calibration.resolve().parent))
        mesh = LocalMesh(extra_env={"BENTOMESH_ARTIFACT_ROOTS": ":".join(roots)})
        try:
            with err.status("starting the embedded mesh") as status:
                mesh.start(_progress_printer(status, err))
        except MeshError as exc:
            mesh.stop()
            raise _fail(str(exc)) from exc

    def show(ev: Any) -> None:
        elapsed = time.perf_counter() - started
        stages: dict[type, str] = {
            BentoBuilt: "packaged",
            ImageReady: "image ready",
            Deployed: "deployed",
            StageFailed: "FAILED",
        }
        stage = stages.get(type(ev.data), "registered")
        from services.status.render import summarize

        err.print(f"  {elapsed:6.1f}s  {stage:<12} {summarize(ev.data)}")

    async def run() -> Any:
        follower = ChainFollower(settings)
        await follower.start()
        try:
            await send_event(event, settings)
            return await follower.until_done(event.chainid, show, timeout)
        finally:
            await follower.stop()

    try:
        with err.status(f"deploying {name}:{version}"):
            final = asyncio.run(run())
        if isinstance(final.data, StageFailed):
            details = f"\n{final.data.details}" if final.data.details else ""
            raise _fail(f"{final.data.stage}: {final.data.reason}{details}")
        deployed: Deployed = final.data
        gateway = (
            f"{_deployer_url()}/models/{name}"
            if mesh is None
            else (
                next(p.url for p in mesh.processes if p.info.name == "deployer") + f"/models/{name}"
            )
        )
        _, curl = sample_request(gateway, task, [f.name for f in data.features])
        console.print(
            f"{name}:{version} serving at {deployed.endpoint_url} "
            f"(stable: {gateway}) after {time.perf_counter() - started:.1f}s"
        )
        console.print(f"try: {curl}")
        if mesh is not None:
            console.print("the embedded mesh keeps serving; Ctrl-C stops it")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except TimeoutError as exc:
        raise _fail(str(exc)) from exc
    finally:
        if mesh is not None:
            mesh.stop()


@app.command()
def demo(
    keep_running: Annotated[
        bool, typer.Option(help="Leave the mesh and the models up until Ctrl-C.")
    ] = False,
    runtime: Annotated[str, typer.Option(help="process | docker | auto")] = "process",
) -> None:
    """Start the embedded mesh, deploy three example models, and call each endpoint."""
    import tempfile

    from services.cli.demo import call, outage, run, train_examples
    from services.mesh.local import LocalMesh
    from services.runtime.errors import MeshError
    from services.runtime.settings import RuntimeSettings

    _stop_on_sigterm()
    started = time.perf_counter()
    # Its own homes (model store, state, logs): a demo never collides with a mesh already here,
    # nor with an earlier demo's models.
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-demo-"))
    runtime_settings = RuntimeSettings(home=workdir / "mesh")
    console.print(f"[bold]BentoMesh demo[/bold] (files in {workdir})")
    with err.status("training example models") as status:
        examples = train_examples(workdir / "models", runtime, _progress_printer(status, err))
    mesh = LocalMesh(
        runtime=runtime_settings,
        extra_env={
            "BENTOMESH_ARTIFACT_ROOTS": str(workdir / "models"),
            "BENTOML_HOME": str(workdir / "bentoml"),
            # Short check interval so the outage below is seen within seconds.
            "BENTOMESH_MONITOR_INTERVAL_S": os.environ.get("BENTOMESH_MONITOR_INTERVAL_S", "1"),
        },
    )
    try:
        with err.status("starting the embedded mesh") as status:
            mesh.start(_progress_printer(status, err), timeout=180)
        urls = {p.info.name: p.url for p in mesh.processes}
        gateway = urls["deployer"]
        console.print(f"status page: {urls['monitor']}/ui")
        console.print("registering 3 models; each goes packager -> builder -> deployer:")
        with err.status("deploying") as status:
            results = run(mesh.kafka, examples, _progress_printer(status, console))
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
        console.print(table)
        for example in examples:
            curl, code, body = call(gateway, example)
            console.print(f"[bold]{example.name}[/bold] ({example.task}):")
            console.print(f"  $ {curl}", markup=False)
            console.print(f"  -> {code} {body[:400]}", markup=False)
            if code != 200:
                raise _fail(f"{example.name} answered {code}")
        victim = examples[0].name
        deployment = _active_deployment(gateway, victim)
        console.print(
            f"crashing {victim} ({deployment['runtime']} {deployment['handle'][:12]}, kill -9): "
            "the monitor alerts, the deployer restarts it"
        )
        with err.status("waiting for HealthAlert firing and resolved"):
            seen = asyncio.run(outage(mesh.kafka, deployment, limit_s=120))
        console.print(
            f"  HealthAlert {seen.rule} [red]firing[/red] after {seen.fired_after_s:.1f}s, "
            f"[green]resolved[/green] after {seen.resolved_after_s:.1f}s"
        )
        curl, code, body = call(gateway, examples[0])
        console.print(f"  -> {code} {body[:200]}", markup=False)
        if code != 200:
            raise _fail(f"{victim} answered {code} after its restart")
        console.print(
            f"[green]demo complete[/green] in {time.perf_counter() - started:.0f}s: "
            f"3 models registered, built, deployed and answering; {victim} crashed, alerted "
            f"({seen.fired_after_s:.1f}s), restarted and resolved ({seen.resolved_after_s:.1f}s)."
        )
        if keep_running:
            console.print("the mesh keeps running (bentomesh status, events tail); Ctrl-C stops")
            while True:
                time.sleep(3600)
    except (MeshError, RuntimeError, TimeoutError) as exc:
        raise _fail(f"demo failed: {exc}; logs in {mesh.log_dir}") from exc
    except KeyboardInterrupt:
        pass
    finally:
        with err.status("stopping the mesh"):
            mesh.stop()


def _active_deployment(deployer_url: str, model: str) -> dict[str, Any]:
    import httpx

    rows = httpx.get(f"{deployer_url}/deployments?model={model}", timeout=10).json()
    active = [r for r in rows if r["status"] == "active"]
    if not active:
        raise _fail(f"{model} has no active deployment")
    return dict(active[0])


@app.command()
def status(
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    history: Annotated[bool, typer.Option(help="Include replaced and failed ones.")] = False,
) -> None:
    """List deployments (from the deployer at BENTOMESH_DEPLOYER_URL)."""
    import datetime as dt

    import httpx

    url = f"{_deployer_url()}/deployments" + (f"?model={model}" if model else "")
    try:
        rows = httpx.get(url, timeout=10).json()
    except httpx.HTTPError as exc:
        raise _fail(f"deployer not reachable at {_deployer_url()}: {exc}") from exc
    table = Table(title="deployments", title_justify="left")
    for column in ("model", "version", "runtime", "status", "endpoint", "since", "id"):
        table.add_column(column)
    for d in rows:
        if not history and d["status"] != "active":
            continue
        since = dt.datetime.fromtimestamp(d["updated_at"]).strftime("%Y-%m-%d %H:%M:%S")
        color = {"active": "green", "failed": "red"}.get(d["status"], "dim")
        table.add_row(
            d["model"],
            d["version"],
            d["runtime"],
            f"[{color}]{d['status']}[/{color}]",
            d["endpoint"] or "-",
            since,
            d["id"],
        )
    console.print(table)


@app.command()
def rollback(model: Annotated[str, typer.Argument(help="Model to roll back.")]) -> None:
    """Serve the version the current one replaced again (blue/green, like a deploy)."""
    import httpx

    try:
        with err.status(f"rolling back {model}"):
            response = httpx.post(f"{_deployer_url()}/deployments/{model}/rollback", timeout=300)
    except httpx.HTTPError as exc:
        raise _fail(f"deployer not reachable at {_deployer_url()}: {exc}") from exc
    body = response.json()
    if response.status_code != 200:
        raise _fail(body.get("error", response.text))
    console.print(f"{model} back on version {body['version']} at {body['endpoint']}")


@app.command()
def health(
    service_url: Annotated[str, typer.Option(help="Base URL of a model service.")],
) -> None:
    """Check a model service: liveness, readiness, latency and request counters."""
    import httpx

    from services.cli.health import check_service

    try:
        report = check_service(service_url)
    except httpx.HTTPError as exc:
        raise _fail(f"{service_url} not reachable: {exc}") from exc
    for line in report.lines():
        console.print(line)
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
def compose(
    images: Annotated[list[str], typer.Argument(help="Model images, e.g. bentomesh/churn:3.")],
    out: Annotated[Path, typer.Option(help="Compose file to write.")] = Path("models-compose.yaml"),
    first_port: Annotated[int, typer.Option(help="Host port of the first model.")] = 3001,
) -> None:
    """Write a Docker Compose file serving the given model images (one service each)."""
    from services.cli.compose import ComposeService, compose_yaml

    services = [
        ComposeService(image.rsplit("/", 1)[-1].split(":")[0], image, first_port + i)
        for i, image in enumerate(images)
    ]
    try:
        out.write_text(compose_yaml(services))
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    for service in services:
        console.print(f"{service.name}: {service.image} on 127.0.0.1:{service.host_port}")
    console.print(f"wrote {out}")


@app.command("base-image")
def base_image(
    tag: Annotated[str, typer.Option(help="Image to create.")] = "bentomesh/python:3.11",
    mirror: Annotated[
        str | None, typer.Option(help="Debian mirror URL (default: the one apt uses here).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if it exists.")] = False,
) -> None:
    """Build the local Python base image of model images (debootstrap + docker import)."""
    from services.builder.base_image import BaseImageError, build_base_image
    from services.runtime.errors import StageError

    try:
        with err.status("building the base image") as status:
            image_id = build_base_image(
                tag, mirror=mirror, force=force, progress=_progress_printer(status, err)
            )
    except (BaseImageError, StageError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{tag} {image_id}")


@app.command()
def containerize(
    bento_tag: Annotated[str, typer.Argument(help="Bento to containerize, e.g. churn:3.")],
    image_name: Annotated[
        str | None, typer.Option(help="Image reference (default: bentomesh/<name>:<version>).")
    ] = None,
) -> None:
    """Build a non-root container image with a health check from a bento."""
    import time as _time

    import bentoml

    from services.builder.docker_image import containerize as build
    from services.builder.settings import BuilderSettings
    from services.runtime.errors import StageError

    try:
        bento = bentoml.bentos.get(bento_tag)
    except bentoml.exceptions.NotFound as exc:
        raise _fail(f"no bento {bento_tag!r} in the local store") from exc
    settings = BuilderSettings()
    ref = image_name or f"{settings.image_prefix}/{bento.tag.name}:{bento.tag.version}"
    started = _time.perf_counter()
    try:
        with err.status(f"building {ref} from {bento.tag}"):
            image = build(str(bento.tag), Path(bento.path), ref, settings)
    except StageError as exc:
        raise _fail(f"{exc.reason}\n{exc.details or ''}") from exc
    size = int(image.attrs.get("Size", 0)) / 1e6
    err.print(f"built in {_time.perf_counter() - started:.0f}s, {size:.0f} MB")
    console.print(ref)


@events_app.command("tail")
def events_tail(
    chain: Annotated[str | None, typer.Option(help="Only this chain id (prefix ok).")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="Topic to read (repeatable).")] = None,
    follow: Annotated[bool, typer.Option(help="Keep waiting for new events.")] = True,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event.")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="One CloudEvent JSON object per line (for jq).")
    ] = False,
) -> None:
    """Print the event stream, one line per event (time, type, model:version, summary)."""
    from bentomesh_contracts.topics import ALL_TOPICS
    from services.cli.tail import run_tail

    names = tuple(topic) if topic else ALL_TOPICS
    unknown = [t for t in names if t not in ALL_TOPICS]
    if unknown:
        raise _fail(f"unknown topic {unknown[0]!r}; mesh topics: {', '.join(ALL_TOPICS)}")
    _stop_on_sigterm()
    run_tail(
        KafkaSettings(),
        topic_names=names,
        chain=chain,
        follow=follow,
        from_beginning=from_beginning,
        as_json=as_json,
        emit=(
            (lambda line: print(line, flush=True))
            if as_json
            else (lambda line: console.print(line, markup=False, soft_wrap=True))
        ),
    )


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per letter.")] = False,
) -> None:
    """Every dead letter: where it came from, which service refused it and why."""
    import datetime as dt

    from services.cli.dlq import read_letters

    settings = KafkaSettings()
    letters = asyncio.run(read_letters(settings))
    if as_json:
        for letter in letters:
            print(
                json.dumps(
                    {
                        "ref": letter.ref,
                        **letter.headers,
                        "bytes": len(letter.value),
                        "value": letter.value.decode(errors="replace"),
                    }
                )
            )
        return
    if not letters:
        console.print("no dead letters")
        return
    table = Table(title=f"{len(letters)} dead letters", title_justify="left")
    for column in ("ref", "time", "from", "service", "reason", "bytes"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        h = letter.headers
        when = dt.datetime.fromtimestamp(letter.timestamp_ms / 1000).strftime("%m-%d %H:%M:%S")
        where = f"[{h.get('source-partition', '?')}]@{h.get('source-offset', '?')}"
        origin = h.get("source-topic", "?") + where
        table.add_row(
            letter.ref,
            when,
            origin,
            h.get("service", "?"),
            h.get("reason", "?"),
            str(len(letter.value)),
        )
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    refs: Annotated[
        list[str] | None, typer.Argument(help="Letters to replay (partition:offset); default all.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only letters whose reason contains this.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be replayed.")] = False,
) -> None:
    """Send dead letters' original bytes back to the topics they came from."""
    from services.cli.dlq import read_letters, replay, select

    settings = KafkaSettings()
    try:
        chosen = select(asyncio.run(read_letters(settings)), refs or [], reason)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from exc
    for letter in chosen:
        console.print(
            f"{'would replay' if dry_run else 'replaying'} {letter.ref} -> {letter.source_topic}"
        )
    if dry_run or not chosen:
        console.print(f"{len(chosen)} letters selected")
        return
    sent = asyncio.run(replay(settings, chosen))
    console.print(f"replayed {sent} letters")


@contracts_app.command("export")
def contracts_export(
    directory: Annotated[Path, typer.Argument(help="Output directory.")],
) -> None:
    """Write one JSON Schema per event (the full CloudEvent with its data)."""
    from bentomesh_contracts.schema import export_json_schemas

    for path in export_json_schemas(directory):
        console.print(f"wrote {path}")


@contracts_app.command("asyncapi")
def contracts_asyncapi(
    out: Annotated[Path, typer.Option(help="Output file (.json or .yaml).")] = Path(
        "asyncapi.json"
    ),
) -> None:
    """Generate the AsyncAPI document of the mesh from the services (FastStream)."""
    from services.asyncapi import mesh_asyncapi, mesh_asyncapi_yaml

    text = (
        mesh_asyncapi_yaml()
        if out.suffix in (".yaml", ".yml")
        else json.dumps(mesh_asyncapi().to_jsonable(), indent=2, sort_keys=True)
    )
    out.write_text(text)
    console.print(f"wrote {out}")


@app.command()
def docs(
    directory: Annotated[Path, typer.Argument(help="Output directory.")] = Path("docs"),
) -> None:
    """Regenerate the reference docs: configuration table, AsyncAPI document, JSON Schemas."""
    from services.docs import write_docs

    for path in write_docs(directory):
        console.print(f"wrote {path}")


if __name__ == "__main__":
    app()
