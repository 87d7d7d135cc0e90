"""The deployer stage: ``ImageReady`` in, ``Deployed`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio

from bentomesh_contracts.envelope import CloudEvent, chain_time
from bentomesh_contracts.events import Deployed, ImageReady, Resources
from services.deployer.rollout import Deployer
from services.deployer.settings import DeployerSettings
from services.errors import RuntimeUnavailable, UnsupportedPreference
from services.runtime.engine import engine_unreachable
from services.runtime.stage import StageSpec


def deployer_stage(
    deployer: Deployer, settings: DeployerSettings | None = None
) -> StageSpec[ImageReady, Deployed]:
    settings = settings or DeployerSettings()

    async def handle(event: CloudEvent[ImageReady]) -> Deployed:
        within_limits(event.data.deployment.resources, settings)
        try:
            return await asyncio.to_thread(
                deployer.deploy,
                event.data,
                cause_id=event.id,
                chain_id=event.chainid,
                registered_at=chain_time(event).timestamp(),
            )
        except Exception as exc:
            if engine_unreachable(exc) and not isinstance(exc, RuntimeUnavailable):
                raise RuntimeUnavailable(f"{event.data.backend} runtime went away: {exc}") from exc
            raise

    return StageSpec.of("deployer", handle, concurrency=settings.deploy_concurrency)


def within_limits(resources: Resources, settings: DeployerSettings) -> None:
    """Resource requests come from events: the deployer's settings cap them."""
    if resources.cpus > settings.max_cpus or resources.memory_mb > settings.max_memory_mb:
        raise UnsupportedPreference(
            f"resources cpus={resources.cpus}, memory_mb={resources.memory_mb} exceed this "
            f"deployer's limits (BENTOMESH_MAX_CPUS={settings.max_cpus}, "
            f"BENTOMESH_MAX_MEMORY_MB={settings.max_memory_mb})"
        )
