"""The packager stage: ``ModelRegistered`` in, ``BentoBuilt`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio
import logging

from contracts.envelope import CloudEvent
from contracts.events import BentoBuilt, ModelRegistered
from services.packager.pipeline import PackagerSettings, package
from services.runtime.stage import StageSpec

logger = logging.getLogger("bentomesh.packager")


def packager_stage(
    settings: PackagerSettings | None = None,
) -> StageSpec[ModelRegistered, BentoBuilt]:
    settings = settings or PackagerSettings()

    async def handle(event: CloudEvent[ModelRegistered]) -> BentoBuilt:
        subject = event.subject or event.id

        def progress(message: str) -> None:
            logger.info("%s [chain %s]: %s", subject, event.chainid[:8], message)

        result = await asyncio.to_thread(
            package, event.data, chain_id=event.chainid, settings=settings, progress=progress
        )
        return result.built

    return StageSpec("packager", ModelRegistered, BentoBuilt, handle)
