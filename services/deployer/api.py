"""The deployer's HTTP API: list deployments, roll a model back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bentomesh_contracts.events import EventData, Undeployed
from services.deployer.rollout import Deployer
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

    return Starlette(
        routes=[
            Route("/deployments", list_deployments),
            Route("/deployments/{model}", undeploy, methods=["DELETE"]),
            Route("/deployments/{model}/rollback", rollback, methods=["POST"]),
        ]
    )
