"""Reference documents: ``docs``, ``contracts export``, ``contracts asyncapi``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.cli.console import console

app = typer.Typer()
contracts_app = typer.Typer(help="Event contracts: JSON Schemas, AsyncAPI.", no_args_is_help=True)


@contracts_app.command("export")
def contracts_export(
    directory: Annotated[Path, typer.Argument(help="Output directory.")],
) -> None:
    """Write one JSON Schema per event (the full CloudEvent with its data)."""
    from bentomesh_contracts.schema import export_json_schemas

    for path in export_json_schemas(directory):
        console.print(f"wrote {path}", markup=False)


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
    console.print(f"wrote {out}", markup=False)


@app.command()
def docs(
    directory: Annotated[Path, typer.Argument(help="Output directory, e.g. docs.")],
) -> None:
    """Regenerate the reference docs: configuration table, AsyncAPI document, JSON Schemas."""
    from services.docs import write_docs

    for path in write_docs(directory):
        console.print(f"wrote {path}", markup=False)
