"""The builder stage: ``BentoBuilt`` in, ``ImageReady`` out (or ``StageFailed``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import BentoBuilt, ImageReady
from services.builder.backend import choose_backend, docker_available
from services.builder.settings import BuilderSettings
from services.errors import EngineUnavailable, UnsupportedPreference
from services.runtime.bento_store import own_bento, stored_bento
from services.runtime.engine import engine_unreachable
from services.runtime.stage import StageSpec

logger = logging.getLogger("bentomesh.builder")


def process_image(built: BentoBuilt) -> ImageReady:
    """The process runtime serves the bento itself: nothing to build."""
    return ImageReady(
        model_name=built.model_name,
        model_version=built.model_version,
        bento_tag=built.bento_tag,
        backend="process",
        size_bytes=built.size_bytes,
        build_seconds=0.0,
        deployment=built.deployment,
    )


def _docker_build(built: BentoBuilt, settings: BuilderSettings) -> ImageReady:
    from services.builder.docker_image import build_image  # imports the Docker SDK

    return build_image(built, settings)


def builder_stage(
    settings: BuilderSettings | None = None,
    *,
    engine_up: Callable[[str | None], bool] = docker_available,
    build: Callable[[BentoBuilt, BuilderSettings], ImageReady] | None = None,
) -> StageSpec[BentoBuilt, ImageReady]:
    """``engine_up`` and ``build`` are the seams to the Docker engine."""
    settings = settings or BuilderSettings()

    async def handle(event: CloudEvent[BentoBuilt]) -> ImageReady:
        built = event.data
        engine = await asyncio.to_thread(engine_up, settings.docker_host)
        backend = choose_backend(built.deployment.runtime, settings.runtime, engine)
        logger.info(
            "%s: backend %s (engine %s)", event.subject, backend, "up" if engine else "unreachable"
        )
        own_bento(built.model_name, built.model_version, built.bento_tag)
        if backend == "process":
            await asyncio.to_thread(stored_bento, built.bento_tag)  # the packager's, by tag
            return process_image(built)
        if backend == "swarm" and not settings.registry:
            raise UnsupportedPreference(
                "runtime 'swarm' needs BENTOMESH_REGISTRY: every node of the cluster pulls the "
                "image from the mesh's registry"
            )
        run_build = build or _docker_build
        try:
            image = await asyncio.to_thread(run_build, built, settings)
            return image.model_copy(update={"backend": backend})
        except Exception as exc:
            if engine_unreachable(exc) and not isinstance(exc, EngineUnavailable):
                raise EngineUnavailable(f"Docker engine went away during the build: {exc}") from exc
            raise

    return StageSpec.of(
        "builder",
        handle,
        concurrency=settings.build_concurrency,
        longest_s=settings.build_timeout_s,
    )
