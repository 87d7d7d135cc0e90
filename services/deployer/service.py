"""The deployer stage: ``ImageReady`` in, ``Deployed`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio

from bentomesh_contracts.envelope import CloudEvent, chain_time
from bentomesh_contracts.events import Deployed, ImageReady
from services.deployer.rollout import Deployer
from services.errors import RuntimeUnavailable
from services.runtime.engine import engine_unreachable
from services.runtime.stage import StageSpec


def deployer_stage(deployer: Deployer) -> StageSpec[ImageReady, Deployed]:
    async def handle(event: CloudEvent[ImageReady]) -> Deployed:
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

    return StageSpec.of("deployer", handle)
