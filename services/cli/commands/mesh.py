"""Running the mesh: ``broker``, ``up``, ``demo``, ``ui``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bentomesh_contracts.kafka import KafkaSettings
from services.cli.console import (
    ExitCode,
    Output,
    OutputOpt,
    console,
    err,
    fail,
    print_json_lines,
    progress_printer,
    stop_on_sigterm,
)
from services.mesh.local import LocalMesh

app = typer.Typer()


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092,
    partitions: Annotated[int, typer.Option(help="Partitions per mesh topic.")] = 3,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) with the mesh topics, until Ctrl-C."""
    from services.errors import BrokerUnavailableError
    from services.runtime.embedded_broker import EmbeddedBroker
    from services.runtime.topics import ensure_topics

    stop_on_sigterm()
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
        fail(str(exc))
    except KeyboardInterrupt:
        console.print("broker stopped")


def _status_table(mesh: LocalMesh) -> Table:
    table = Table(title="BentoMesh", title_justify="left")
    for column in ("service", "state", "pid", "http", "uptime"):
        table.add_column(column)
    broker_state = "embedded" if mesh.broker_is_embedded else "external"
    broker_pid = str(mesh.broker.pid if mesh.broker else "-")
    table.add_row("broker", broker_state, broker_pid, mesh.kafka.bootstrap_servers, "")
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
    from services.errors import MeshError

    stop_on_sigterm()
    mesh = LocalMesh()
    try:
        with console.status("starting the mesh") as status:
            mesh.start(progress_printer(status), timeout=timeout)
        console.print(f"mesh up; logs in {mesh.log_dir}. Ctrl-C stops it.", markup=False)
        bridge = [p for p in mesh.processes if p.info.name == "registry_bridge"]
        if bridge:
            console.print(
                f"following MLflow; its webhook URL: {bridge[0].url}/webhooks/mlflow", markup=False
            )
        with Live(_status_table(mesh), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(2)
                live.update(_status_table(mesh))
    except MeshError as exc:
        mesh.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        console.print("stopping")
        mesh.stop(lambda line: console.print(f"  {line}", markup=False))


@app.command()
def demo(
    keep_running: Annotated[
        bool, typer.Option(help="Leave the mesh and the models up until Ctrl-C.")
    ] = False,
    runtime: Annotated[str, typer.Option(help="process | docker | auto")] = "process",
    mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow",
            help="Instead: start an MLflow server, register a model there, and watch the mesh "
            "serve it (needs MLflow installed).",
        ),
    ] = False,
) -> None:
    """Start the embedded mesh, deploy three example models, and call each endpoint."""
    from services.demo.run import run_demo
    from services.errors import DemoFailed

    stop_on_sigterm()
    try:
        if mlflow:
            from services.demo.mlflow_demo import run_mlflow_demo

            run_mlflow_demo(out=console, status=err.status, progress=progress_printer)
            return
        run_demo(
            runtime=runtime,
            keep_running=keep_running,
            out=console,
            status=err.status,
            progress=progress_printer,
        )
    except DemoFailed as exc:
        fail(str(exc))


@app.command()
def ui(
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open a browser.")] = True,
) -> None:
    """The status page of a running mesh (served by the monitor at BENTOMESH_MONITOR_URL)."""
    import webbrowser
    from urllib.parse import urlsplit

    import httpx

    from services.mesh.client import MeshClient

    client = MeshClient()
    base = client.monitor_url
    try:
        state = client.status()
    except httpx.HTTPError as exc:
        fail(
            f"no monitor at {base} ({exc}); start the mesh with `bentomesh up`",
            ExitCode.UNREACHABLE,
        )
    page = f"{base}/ui"
    host = urlsplit(base).hostname or ""
    token = client.headers.get("Authorization", "").removeprefix("Bearer ")
    if token and host not in ("127.0.0.1", "localhost", "::1"):
        page += f"#token={token}"  # the API wants it from beyond loopback; a fragment stays local
    console.print(
        f"{page}  ({len(state['deployments'])} deployments, {len(state['chains'])} chains)",
        markup=False,
    )
    if open_browser:
        webbrowser.open(page)


@app.command()
def doctor(output: OutputOpt = Output.table) -> None:
    """Check this machine's mesh: home, keys, token, broker, Docker engine and the deployer's
    state; exit 1 when something is wrong."""
    from services.deployer.settings import DeployerSettings
    from services.mesh.doctor import diagnose
    from services.runtime.settings import RuntimeSettings

    findings = diagnose(RuntimeSettings().home, DeployerSettings().db_path())
    if output is Output.json:
        print_json_lines(f.__dict__ for f in findings)
    else:
        table = Table(title="bentomesh doctor", title_justify="left")
        for column in ("check", "", "detail"):
            table.add_column(column, overflow="fold")
        style = {"ok": "green", "warn": "yellow", "fail": "red"}
        for f in findings:
            table.add_row(f.check, Text(f.level, style=style[f.level]), Text(f.detail))
        console.print(table)
    if any(f.level == "fail" for f in findings):
        raise typer.Exit(ExitCode.FAILED)
