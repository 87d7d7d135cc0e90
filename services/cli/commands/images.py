"""Container images: ``base-image``, ``containerize``, ``compose``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from services.cli.console import ExitCode, console, err, fail, progress_printer

app = typer.Typer()


@app.command("base-image")
def base_image(
    tag: Annotated[str, typer.Option(help="Image to create.")] = "bentomesh/python:3.11",
    mirror: Annotated[
        str | None, typer.Option(help="Debian mirror URL (default: the one apt uses here).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if it exists.")] = False,
) -> None:
    """Build the local Python base image of model images (debootstrap + docker import)."""
    from services.builder.base_image import build_base_image
    from services.errors import BaseImageError, StageError

    try:
        with err.status("building the base image") as status:
            image_id = build_base_image(
                tag, mirror=mirror, force=force, progress=progress_printer(status, err)
            )
    except (BaseImageError, StageError) as exc:
        fail(str(exc))
    console.print(f"{tag} {image_id}", markup=False)


@app.command()
def containerize(
    bento_tag: Annotated[str, typer.Argument(help="Bento to containerize, e.g. churn:3.")],
    image_name: Annotated[
        str | None, typer.Option(help="Image reference (default: bentomesh/<name>:<version>).")
    ] = None,
) -> None:
    """Build a non-root container image with a health check from a bento."""
    import bentoml

    from services.builder.docker_image import containerize as build
    from services.builder.settings import BuilderSettings
    from services.errors import StageError

    try:
        bento = bentoml.bentos.get(bento_tag)
    except bentoml.exceptions.NotFound:
        fail(f"no bento {bento_tag!r} in the local store")
    settings = BuilderSettings()
    ref = image_name or f"{settings.image_prefix}/{bento.tag.name}:{bento.tag.version}"
    started = time.perf_counter()
    try:
        with err.status(f"building {ref} from {bento.tag}"):
            image, ref = build(str(bento.tag), Path(bento.path), ref, settings)
    except StageError as exc:
        fail(f"{exc.reason}\n{exc.details or ''}")
    size = int(image.attrs.get("Size", 0)) / 1e6
    err.print(f"built in {time.perf_counter() - started:.0f}s, {size:.0f} MB")
    console.print(ref, markup=False)


@app.command()
def compose(
    images: Annotated[list[str], typer.Argument(help="Model images, e.g. bentomesh/churn:3.")],
    out: Annotated[Path, typer.Option(help="Compose file to write.")] = Path("models-compose.yaml"),
    first_port: Annotated[int, typer.Option(help="Host port of the first model.")] = 3001,
) -> None:
    """Write a Docker Compose file serving the given model images (one service each)."""
    from services.cli.compose import ComposeService, check_image_reference, compose_yaml

    for image in images:
        try:
            check_image_reference(image)
        except ValueError as exc:
            fail(str(exc), ExitCode.USAGE)
    services = [
        ComposeService(image.rsplit("/", 1)[-1].split(":")[0], image, first_port + i)
        for i, image in enumerate(images)
    ]
    try:
        out.write_text(compose_yaml(services))
    except ValueError as exc:
        fail(str(exc))
    for service in services:
        console.print(
            f"{service.name}: {service.image} on 127.0.0.1:{service.host_port}", markup=False
        )
    console.print(f"wrote {out}", markup=False)
