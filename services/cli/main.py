"""``bentomesh``: the Typer app. Commands live in :mod:`services.cli.commands`, one module per
area; this module assembles them (in the order ``--help`` lists them) and is the one place where
a failure nobody foresaw is still said in a sentence."""

from __future__ import annotations

import os
from importlib import metadata
from typing import Annotated

import typer

from services.cli.commands import (
    deployments,
    docs,
    events,
    images,
    k8s,
    keys,
    mesh,
    models,
    rollouts,
)
from services.cli.console import ExitCode, err
from services.cli.failures import explain, quiet_kafka_log

app = typer.Typer(
    help="BentoMesh: from a trained model to a monitored BentoML endpoint, through Kafka events.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for group in (mesh.app, models.app, deployments.app, images.app, docs.app):
    for command in group.registered_commands:
        app.registered_commands.append(command)

app.add_typer(events.events_app, name="events")
app.add_typer(events.dlq_app, name="dlq")
app.add_typer(docs.contracts_app, name="contracts")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(rollouts.rollout_app, name="rollout")
app.add_typer(k8s.k8s_app, name="k8s")


def _version(show: bool) -> None:
    if show:
        print(f"bentomesh {metadata.version('bentomesh')}")
        raise typer.Exit()


@app.callback()
def connection(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            envvar="BENTOMESH_KAFKA_BOOTSTRAP_SERVERS",
            help="Kafka bootstrap servers (host:port,...).",
            show_default="127.0.0.1:9092",
        ),
    ] = None,
    deployer_url: Annotated[
        str | None,
        typer.Option(
            envvar="BENTOMESH_DEPLOYER_URL",
            help="The deployer's API and gateway.",
            show_default="http://127.0.0.1:8103",
        ),
    ] = None,
    monitor_url: Annotated[
        str | None,
        typer.Option(
            envvar="BENTOMESH_MONITOR_URL",
            help="The monitor's status API and page.",
            show_default="http://127.0.0.1:8104",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Connection flags apply to every command; each has its environment variable."""
    for variable, value in (
        ("BENTOMESH_KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers),
        ("BENTOMESH_DEPLOYER_URL", deployer_url),
        ("BENTOMESH_MONITOR_URL", monitor_url),
    ):
        if value:
            os.environ[variable] = value  # read by the settings classes of every command


def main() -> None:
    """The ``bentomesh`` entry point: exit 0 ok, 1 failed, 2 usage, 3 dependency unreachable."""
    if not os.environ.get("BENTOMESH_DEBUG"):
        quiet_kafka_log()
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("BENTOMESH_DEBUG"):
            raise
        code, message = explain(exc) or (
            ExitCode.FAILED,
            f"unexpected {type(exc).__name__}: {exc} (BENTOMESH_DEBUG=1 shows the traceback)",
        )
        err.print(f"error: {message}", markup=False, style="red")
        raise SystemExit(code) from None


if __name__ == "__main__":
    main()
