"""The packager stage: ``ModelRegistered`` in, ``BentoBuilt`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import BentoBuilt, ModelRegistered
from services.packager.isolation import IsolatedPackager
from services.packager.pipeline import PackagedBento
from services.packager.settings import PackagerSettings
from services.runtime.stage import StageSpec

logger = logging.getLogger("bentomesh.packager")


Package = Callable[..., PackagedBento]
"""``package(registration, *, chain_id, settings, progress)``: the packaging pipeline's shape."""


def packager_stage(
    settings: PackagerSettings | None = None, *, package: Package | None = None
) -> StageSpec[ModelRegistered, BentoBuilt]:
    """``package`` is the seam to the model store and ``bentoml build``; by default it runs in
    worker processes that hold none of the packager's secrets (artifacts are code)."""
    settings = settings or PackagerSettings()
    package = package or IsolatedPackager()

    async def handle(event: CloudEvent[ModelRegistered]) -> BentoBuilt:
        subject = event.subject or event.id

        def progress(message: str) -> None:
            logger.info("%s [chain %s]: %s", subject, event.chainid[:8], message)

        result = await asyncio.to_thread(
            package, event.data, chain_id=event.chainid, settings=settings, progress=progress
        )
        return result.built

    return StageSpec.of(
        "packager",
        handle,
        concurrency=settings.build_concurrency,
        longest_s=settings.build_timeout_s + 120.0,  # the build, and loading and probing
    )
