"""The deployer's HTTP API: list deployments, roll a model back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bentomesh_contracts.events import EventData, Undeployed
from services.deployer.rollout import Deployer
from services.deployer.state import Deployment
from services.errors import StageError


def deployments_api(
    deployer: Deployer, announce: Callable[[EventData, str], Awaitable[None]] | None = None
) -> Starlette:
    """``announce(data, chain_id)`` publishes what a rollback (``Deployed``) or an undeploy
    (``Undeployed``) changed, so the monitor and everyone else learn what serves now."""

    async def list_deployments(request: Request) -> JSONResponse:
        model = request.query_params.get("model")
        rows = deployer.store.history(model)
        return JSONResponse([d.to_dict() for d in rows])

    async def rollback(request: Request) -> JSONResponse:
        model = request.path_params["model"]
        to_version = request.query_params.get("to_version") or None
        try:
            deployment = await asyncio.to_thread(deployer.rollback, model, to_version)
        except StageError as exc:
            return JSONResponse(
                {"error": exc.reason, "error_type": exc.error_type}, status_code=409
            )
        if announce is not None:  # the monitor (and anyone else) learns what serves now
            event = deployer.deployed_event(deployment)
            if deployment.replaced_id:
                replaced = deployer.store.get(deployment.replaced_id)
                if replaced is not None:
                    event = event.model_copy(update={"replaced_version": replaced.version})
            await announce(event, deployment.chain_id)
        return JSONResponse(deployment.to_dict())

    async def undeploy(request: Request) -> JSONResponse:
        model = request.path_params["model"]
        try:
            stopped = await asyncio.to_thread(deployer.undeploy, model)
        except StageError as exc:
            return JSONResponse(
                {"error": exc.reason, "error_type": exc.error_type}, status_code=409
            )
        if announce is not None:
            removed = Undeployed(
                deployment_id=stopped.id,
                model_name=stopped.model,
                model_version=stopped.version,
                runtime=stopped.runtime,
                reason="undeployed on request",
            )
            await announce(removed, stopped.chain_id)
        return JSONResponse(stopped.to_dict())

    async def rollout(request: Request) -> JSONResponse:
        model = request.path_params["model"]
        candidate = deployer.store.candidate(model)
        if candidate is None:
            return JSONResponse(
                {"error": f"{model} has no rollout in progress", "error_type": "NoRollout"},
                status_code=404,
            )
        return JSONResponse(rollout_view(deployer, candidate))

    async def command(request: Request) -> JSONResponse:
        model, verb = request.path_params["model"], request.path_params["verb"]
        if verb not in ("promote", "abort"):
            return JSONResponse({"error": f"unknown rollout command {verb!r}"}, status_code=404)
        candidate = deployer.store.candidate(model)
        if candidate is None:
            return JSONResponse(
                {"error": f"{model} has no rollout in progress", "error_type": "NoRollout"},
                status_code=409,
            )
        deployer.store.update(candidate.id, command=verb)  # acted on within one interval
        return JSONResponse({**rollout_view(deployer, candidate), "command": verb}, status_code=202)

    return Starlette(
        routes=[
            Route("/deployments/{model}/rollout", rollout),
            Route(
                "/deployments/{model}/rollout/{verb:str}",
                command,
                methods=["POST"],
            ),
            Route("/deployments", list_deployments),
            Route("/deployments/{model}", undeploy, methods=["DELETE"]),
            Route("/deployments/{model}/rollback", rollback, methods=["POST"]),
        ]
    )


def rollout_view(
    deployer: Deployer, candidate: Deployment, window_s: float = 60.0
) -> dict[str, Any]:
    """A rollout as it stands: both versions, the share, and the last minute's figures."""
    serving = deployer.store.active(candidate.model)
    since = time.time() - window_s
    mine = deployer.traffic.window(candidate.id, since)
    mirrored, dropped = deployer.traffic.differences(candidate.id, since)
    view: dict[str, Any] = {
        "model": candidate.model,
        "candidate": candidate.to_dict(),
        "serving": serving.to_dict() if serving else None,
        "window_s": window_s,
        "candidate_figures": {**asdict(mine), "error_share": mine.error_share},
        "mirrored": {"compared": mirrored.pairs, "dropped": dropped, **mirrored.summary()},
    }
    if serving is not None:
        theirs = deployer.traffic.window(serving.id, since)
        view["serving_figures"] = {**asdict(theirs), "error_share": theirs.error_share}
    return view
