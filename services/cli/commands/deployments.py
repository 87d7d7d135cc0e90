"""What serves: ``status``, ``rollback``, ``health``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import httpx
import typer
from rich.table import Table

from services.cli.console import ExitCode, Output, OutputOpt, console, err, fail, print_json_lines
from services.cli.options import ModelOpt
from services.errors import MeshApiError
from services.mesh.client import MeshClient

app = typer.Typer()


@app.command()
def status(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    history: Annotated[bool, typer.Option(help="Include replaced and failed ones.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """List deployments (from the deployer at BENTOMESH_DEPLOYER_URL)."""
    client = MeshClient()
    try:
        rows = client.deployments(model)
    except (httpx.HTTPError, MeshApiError) as exc:
        fail(f"deployer not reachable at {client.deployer_url}: {exc}", ExitCode.UNREACHABLE)
    rows = [d for d in rows if history or d.status == "active"]
    if output is Output.json:
        print_json_lines(d.model_dump() for d in rows)
        return
    table = Table(title="deployments", title_justify="left")
    for column in ("model", "version", "runtime", "status", "endpoint", "since", "id"):
        table.add_column(column, overflow="fold")
    for d in rows:
        since = dt.datetime.fromtimestamp(d.updated_at).strftime("%Y-%m-%d %H:%M:%S")
        color = {"active": "green", "failed": "red"}.get(d.status, "dim")
        table.add_row(
            d.model,
            d.version,
            d.runtime,
            f"[{color}]{d.status}[/{color}]",
            d.endpoint or "-",
            since,
            d.id,
        )
    console.print(table)


@app.command()
def rollback(
    model: ModelOpt,
    to_version: Annotated[
        str | None,
        typer.Option(help="A version the model served before.", show_default="the replaced one"),
    ] = None,
) -> None:
    """Serve the version the current one replaced again, or --to-version (blue/green)."""
    client = MeshClient()
    try:
        with err.status(f"rolling back {model}"):
            back = client.rollback(model, to_version)
    except httpx.HTTPError as exc:
        fail(f"deployer not reachable at {client.deployer_url}: {exc}", ExitCode.UNREACHABLE)
    except MeshApiError as exc:
        fail(str(exc))
    console.print(f"{model} back on version {back.version} at {back.endpoint}", markup=False)


@app.command()
def undeploy(model: ModelOpt) -> None:
    """Stop serving a model (its history stays; registering a version serves it again)."""
    client = MeshClient()
    try:
        with err.status(f"undeploying {model}"):
            stopped = client.undeploy(model)
    except httpx.HTTPError as exc:
        fail(f"deployer not reachable at {client.deployer_url}: {exc}", ExitCode.UNREACHABLE)
    except MeshApiError as exc:
        fail(str(exc))
    console.print(
        f"{model} version {stopped.version} stopped; nothing serves {model}", markup=False
    )


@app.command()
def health(
    service_url: Annotated[str, typer.Option(help="Base URL of a model service.")],
    output: OutputOpt = Output.table,
) -> None:
    """Check a model service: liveness, readiness, latency and request counters."""
    from dataclasses import asdict

    from services.cli.health import check_service

    try:
        report = check_service(service_url)
    except httpx.HTTPError as exc:
        fail(f"{service_url} not reachable: {exc}", ExitCode.UNREACHABLE)
    if output is Output.json:
        print_json_lines([{**asdict(report), "healthy": report.healthy}])
    else:
        for line in report.lines():
            console.print(line, markup=False)
    if not report.healthy:
        raise typer.Exit(1)
