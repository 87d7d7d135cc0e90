"""The deployer stage: ``ImageReady`` in, ``Deployed`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio

from contracts.envelope import CloudEvent
from contracts.events import Deployed, ImageReady
from services.deployer.rollout import Deployer
from services.runtime.stage import StageSpec


def deployer_stage(deployer: Deployer) -> StageSpec[ImageReady, Deployed]:
    async def handle(event: CloudEvent[ImageReady]) -> Deployed:
        return await asyncio.to_thread(
            deployer.deploy, event.data, cause_id=event.id, chain_id=event.chainid
        )

    return StageSpec("deployer", ImageReady, Deployed, handle)
