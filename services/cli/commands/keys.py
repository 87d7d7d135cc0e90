"""Signing keys and the control-plane token: ``keys init``, ``keys rotate``, ``keys list``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.console import console

if TYPE_CHECKING:
    from bentomesh_contracts.keys import KeyStore

keys_app = typer.Typer(
    help="Signing keys (one per producer) and the control-plane token.", no_args_is_help=True
)

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Keys directory (default: $BENTOMESH_KEYS_DIR, else $BENTOMESH_HOME/keys)."
    ),
]


def _store(directory: Path | None) -> KeyStore:
    from bentomesh_contracts.keys import KeyStore, SigningSettings  # cryptography: when used

    return KeyStore(directory) if directory is not None else SigningSettings().keys


@keys_app.command("init")
def init(
    directory: DirOpt = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Also create the control-plane token here (default: not created)."),
    ] = None,
) -> None:
    """Create the keys that are missing (every producer's), and the token when asked: what
    `bentomesh up` does on first start, for docker-compose and other machines."""
    from services.runtime.control import ControlSettings

    store = _store(directory)
    created = store.ensure()
    for kid in created:
        console.print(f"created {kid}", markup=False)
    console.print(f"keys in {store.root} ({len(created)} new)", markup=False)
    if token_file is not None:
        ControlSettings(api_token_file=token_file).ensure_token()
        console.print(f"control-plane token in {token_file}", markup=False)


@keys_app.command("rotate")
def rotate(
    producer: Annotated[
        str, typer.Argument(help="training, cli, bridge, packager, builder, deployer or monitor.")
    ],
    directory: DirOpt = None,
) -> None:
    """A new key for PRODUCER. Its old public key stays trusted, so events in flight still
    verify; remove trusted/<old key id>.pub once they are consumed. Services take the new key
    up without a restart (a service signs with its new key after its next start)."""
    store = _store(directory)
    kid = store.generate(producer)
    console.print(f"{producer} now signs with {kid}", markup=False)


@keys_app.command("list")
def list_keys(directory: DirOpt = None) -> None:
    """The trusted public keys (key id = producer and fingerprint)."""
    store = _store(directory)
    for kid in sorted(store.trusted()):
        console.print(kid, markup=False)
