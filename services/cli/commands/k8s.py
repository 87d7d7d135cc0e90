"""``bentomesh k8s manifests MODEL:VERSION``: the Kubernetes objects of a model version, as YAML.

Written for review or ``kubectl apply -f -``; BentoMesh does not deploy to a cluster itself
(see docs/scaling.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from services.cli.console import fail
from services.deployer.kubernetes import manifests

k8s_app = typer.Typer(help="Kubernetes: the manifests a model version would run with.")


@k8s_app.command("manifests")
def write_manifests(
    target: Annotated[str, typer.Argument(help="MODEL:VERSION", metavar="MODEL:VERSION")],
    image: Annotated[
        str | None,
        typer.Option(
            help="Image reference, best by digest (REGISTRY/bentomesh/MODEL@sha256:...).",
            show_default="bentomesh/MODEL:VERSION, the builder's tag",
        ),
    ] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of every object.")] = "bentomesh",
    replicas: Annotated[int, typer.Option(min=1, max=16, help="Replicas (HPA minimum).")] = 1,
    cpus: Annotated[float, typer.Option(help="CPU limit per replica, in cores.")] = 1.0,
    memory_mb: Annotated[int, typer.Option(help="Memory limit per replica, in MiB.")] = 1024,
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy."""
    model, _, version = target.partition(":")
    if not model or not version:
        fail(f"expected MODEL:VERSION, got {target!r}")
    docs = manifests(
        model,
        version,
        image or f"bentomesh/{model}:{version}",
        namespace=namespace,
        replicas=replicas,
        cpus=cpus,
        memory_mb=memory_mb,
    )
    text = yaml.safe_dump_all(docs, sort_keys=False)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {len(docs)} objects to {out}", err=True)
