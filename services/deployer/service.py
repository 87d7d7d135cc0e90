"""The deployer stage: ``ImageReady`` in, ``Deployed`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bentomesh_contracts.envelope import CloudEvent, chain_time, follow_up
from bentomesh_contracts.events import Deployed, DeploymentPrefs, EventData, ImageReady
from services.deployer.rollout import Deployer
from services.deployer.settings import DeployerSettings
from services.errors import RuntimeUnavailable, UnsupportedPreference
from services.runtime.engine import engine_unreachable
from services.runtime.stage import StageSpec

logger = logging.getLogger("bentomesh.deployer")


def deployer_stage(
    deployer: Deployer,
    settings: DeployerSettings | None = None,
    *,
    publish: Callable[[CloudEvent[Any]], Coroutine[Any, Any, None]] | None = None,
) -> StageSpec[ImageReady, Deployed]:
    """``publish`` sends what a rollout reports on the way (each step, an abort's alert), as
    follow-ups of the ``ImageReady`` being deployed: they are in the version's lineage."""
    settings = settings or DeployerSettings()

    async def handle(event: CloudEvent[ImageReady]) -> Deployed:
        within_limits(event.data.deployment, settings)
        loop = asyncio.get_running_loop()

        def announce(data: EventData) -> None:  # from the rollout's thread
            if publish is None:
                return
            key = "/".join(
                str(getattr(data, name, "")) for name in ("deployment_id", "step", "decision")
            )
            step = follow_up(event, data, source="bentomesh/deployer", key=key)
            try:
                asyncio.run_coroutine_threadsafe(publish(step), loop).result(timeout=30)
            except Exception as exc:  # progress is information: the rollout goes on
                logger.warning("could not publish %s: %s", data.EVENT_TYPE, exc)

        try:
            return await asyncio.to_thread(
                deployer.deploy,
                event.data,
                cause_id=event.id,
                chain_id=event.chainid,
                registered_at=chain_time(event).timestamp(),
                announce=announce,
            )
        except Exception as exc:
            if engine_unreachable(exc) and not isinstance(exc, RuntimeUnavailable):
                raise RuntimeUnavailable(f"{event.data.backend} runtime went away: {exc}") from exc
            raise

    longest = settings.ready_timeout_s + settings.rollout_max_s + 60.0  # start, steps, drains
    return StageSpec.of(
        "deployer", handle, concurrency=settings.deploy_concurrency, longest_s=longest
    )


def within_limits(prefs: DeploymentPrefs, settings: DeployerSettings) -> None:
    """Resource requests come from events: the deployer's settings cap them."""
    if prefs.replicas > settings.max_replicas:
        raise UnsupportedPreference(
            f"replicas={prefs.replicas} exceeds this deployer's limit "
            f"(BENTOMESH_MAX_REPLICAS={settings.max_replicas})"
        )
    resources = prefs.resources
    if resources.cpus > settings.max_cpus or resources.memory_mb > settings.max_memory_mb:
        raise UnsupportedPreference(
            f"resources cpus={resources.cpus}, memory_mb={resources.memory_mb} exceed this "
            f"deployer's limits (BENTOMESH_MAX_CPUS={settings.max_cpus}, "
            f"BENTOMESH_MAX_MEMORY_MB={settings.max_memory_mb})"
        )
