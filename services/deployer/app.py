"""``services.deployer.app:app``: the deployer stage, its gateway and its HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.events import EventData
from bentomesh_contracts.kafka import KafkaSettings
from services.deployer.api import deployments_api
from services.deployer.gateway import Gateway
from services.deployer.replicas import Membership, ReplicaLock
from services.deployer.rollout import Deployer, RolloutSettings
from services.deployer.runtimes import ProcessRuntime, Runtime, owner_id
from services.deployer.service import deployer_stage
from services.deployer.settings import DeployerSettings
from services.deployer.state import DeploymentStore
from services.runtime.app import PrefixDispatch, create_stage_app
from services.runtime.control import guarded
from services.runtime.stage import publish_event
from services.runtime.trust import Trust

logger = logging.getLogger("bentomesh.deployer")


def create_deployer(settings: DeployerSettings) -> Deployer:
    runtimes: dict[str, Runtime] = {
        "process": ProcessRuntime(
            settings.home / "deployments",
            host=settings.public_host,
            owner=owner_id(settings.db_path()),
        )
    }
    late: dict[str, Callable[[], Runtime]] = {}
    from services.deployer.docker_runtime import DockerRuntime

    try:
        runtimes["docker"] = DockerRuntime(settings)
    except Exception as exc:
        logger.info("docker runtime unavailable for now (tried again when needed): %s", exc)
        late["docker"] = lambda: DockerRuntime(settings)
    from services.deployer.swarm_runtime import SwarmRuntime

    try:
        runtimes["swarm"] = SwarmRuntime(settings)
    except Exception as exc:
        logger.debug("swarm runtime unavailable for now (tried again when needed): %s", exc)
        late["swarm"] = lambda: SwarmRuntime(settings)
    return Deployer(
        DeploymentStore(settings.db_path()),
        runtimes,
        RolloutSettings(
            ready_timeout_s=settings.ready_timeout_s,
            drain_s=settings.drain_s,
            strategy=settings.rollout_strategy,
            canary_steps=tuple(settings.rollout_canary_steps),
            shadow_share=settings.rollout_shadow_share,
            bake_s=settings.rollout_bake_s,
            analysis_interval_s=settings.rollout_interval_s,
            max_wait_s=settings.rollout_max_wait_s,
            max_s=settings.rollout_max_s,
            thresholds=settings.rollout_thresholds,
        ),
        late_runtimes=late,
        lock=ReplicaLock(settings.db_path().with_suffix(".lock")),
    )


def create_app(
    settings: DeployerSettings | None = None,
    *,
    kafka: KafkaSettings | None = None,
    deployer: Deployer | None = None,
    trust: Trust | None = None,
) -> Any:
    """The deployer service; ``deployer`` (its store and runtimes) is the seam for tests."""
    settings = settings or DeployerSettings()
    deployer = deployer or create_deployer(settings)
    emit: list[
        Callable[[CloudEvent[Any]], Coroutine[Any, Any, None]]
    ] = []  # set once the app exists
    spec = deployer_stage(deployer, settings, publish=lambda event: emit[0](event))
    gateway = Gateway(deployer.store, deployer.traffic, max_body_bytes=settings.max_body_bytes)
    members: list[Membership] = []
    supervision: list[asyncio.Task[None]] = []

    async def supervise_forever() -> None:
        while True:
            await asyncio.sleep(settings.supervise_interval_s)
            try:
                await asyncio.to_thread(deployer.supervise)
            except Exception:
                logger.exception("supervision failed")

    async def on_startup() -> None:
        members.append(Membership(settings.db_path().with_suffix(".replicas")))
        await asyncio.to_thread(deployer.reconcile)
        supervision.append(asyncio.create_task(supervise_forever()))

    async def on_shutdown() -> None:
        for task in supervision:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await gateway.aclose()
        # the models outlive this replica while another one serves (and supervises) them
        if settings.stop_deployments_on_exit and all(m.last_one() for m in members):
            await asyncio.to_thread(deployer.stop_all)
        for member in members:
            member.leave()

    trust = trust or Trust.load("deployer")
    app = create_stage_app(spec, kafka=kafka, trust=trust)
    app.on_startup(on_startup)
    app.on_shutdown(on_shutdown)

    async def publish(event: CloudEvent[Any]) -> None:
        await publish_event(app.broker, event, trust)  # type: ignore[arg-type]

    emit.append(publish)

    async def announce(data: EventData, chain_id: str) -> None:
        event = new_chain(data, source="bentomesh/deployer", chainid=chain_id)
        await publish_event(app.broker, event, trust)  # type: ignore[arg-type]

    api = guarded(deployments_api(deployer, announce))  # token, Host and Origin checks
    return PrefixDispatch(app, {"/models": gateway, "/deployments": api})


def __getattr__(name: str) -> Any:
    if name == "app":
        return create_app()
    raise AttributeError(name)
