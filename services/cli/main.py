"""``bentomesh``: the Typer app. Commands live in :mod:`services.cli.commands`, one module per
area; this module only assembles them, in the order ``--help`` lists them."""

from __future__ import annotations

import typer

from services.cli.commands import deployments, docs, events, images, mesh, models

app = typer.Typer(
    help="BentoMesh: from a trained model to a monitored BentoML endpoint, through Kafka events.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for group in (mesh.app, models.app, deployments.app, images.app, docs.app):
    for command in group.registered_commands:
        app.registered_commands.append(command)

app.add_typer(events.events_app, name="events")
app.add_typer(events.dlq_app, name="dlq")
app.add_typer(docs.contracts_app, name="contracts")


if __name__ == "__main__":
    app()
