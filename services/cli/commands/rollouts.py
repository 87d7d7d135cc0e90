"""``bentomesh rollout status|promote|abort MODEL``: a canary or shadow rollout in progress."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

from services.cli.console import ExitCode, console, err, fail
from services.errors import MeshApiError
from services.mesh.client import MeshClient

rollout_app = typer.Typer(help="A canary or shadow rollout in progress: see it, decide it.")

ModelArg = Annotated[str, typer.Argument(help="Model name.")]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _call(model: str, command: str | None) -> dict[str, Any]:
    client = MeshClient()
    try:
        return client.rollout(model, command)
    except httpx.HTTPError as exc:
        fail(f"deployer not reachable at {client.deployer_url}: {exc}", ExitCode.UNREACHABLE)
    except MeshApiError as exc:
        fail(str(exc))


def show(view: dict[str, Any]) -> None:
    candidate, serving = view["candidate"], view.get("serving") or {}
    mine, theirs = view["candidate_figures"], view.get("serving_figures") or {}
    console.print(
        f"{view['model']}: {candidate['strategy']} of {candidate['version']} beside "
        f"{serving.get('version', '?')}, share {candidate['share']:.0%}",
        markup=False,
    )
    console.print(
        f"  last {view['window_s']:g} s  candidate: {mine['requests']} requests, "
        f"5xx {_share(mine['error_share'])}, p99 {_ms(mine['p99_ms'])}  |  serving: "
        f"{theirs.get('requests', 0)} requests, 5xx {_share(theirs.get('error_share'))}, "
        f"p99 {_ms(theirs.get('p99_ms'))}",
        markup=False,
    )
    mirrored = view["mirrored"]
    if mirrored["compared"]:
        figures = {k: v for k, v in mirrored.items() if v is not None}
        console.print(f"  mirrored: {json.dumps(figures)}", markup=False)
    if candidate.get("detail"):
        console.print(f"  last decision: {candidate['detail']}", markup=False)


@rollout_app.command()
def status(model: ModelArg) -> None:
    """Shares and figures of the model's rollout in progress."""
    show(_call(model, None))


@rollout_app.command()
def promote(model: ModelArg) -> None:
    """Give the candidate all the traffic now, without waiting for its analysis."""
    with err.status(f"promoting the candidate of {model}"):
        view = _call(model, "promote")
    console.print(f"{model}: promotion of {view['candidate']['version']} asked", markup=False)


@rollout_app.command()
def abort(model: ModelArg) -> None:
    """Send all the traffic back to the serving version and stop the candidate."""
    with err.status(f"aborting the rollout of {model}"):
        view = _call(model, "abort")
    console.print(f"{model}: abort of {view['candidate']['version']} asked", markup=False)
