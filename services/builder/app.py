"""``services.builder.app:app``: run with ``faststream run`` or ``python -m services builder``."""

from __future__ import annotations

from collections.abc import Callable

from faststream.asgi import AsgiFastStream

from bentomesh_contracts.events import BentoBuilt, ImageReady
from bentomesh_contracts.kafka import KafkaSettings
from services.builder.backend import docker_available
from services.builder.service import builder_stage
from services.builder.settings import BuilderSettings
from services.runtime.app import create_stage_app
from services.runtime.trust import Trust


def create_app(
    settings: BuilderSettings | None = None,
    *,
    kafka: KafkaSettings | None = None,
    trust: Trust | None = None,
    engine_up: Callable[[str | None], bool] = docker_available,
    build: Callable[[BentoBuilt, BuilderSettings], ImageReady] | None = None,
) -> AsgiFastStream:
    """The builder service; ``engine_up`` and ``build`` replace the Docker engine in tests."""
    return create_stage_app(
        builder_stage(settings, engine_up=engine_up, build=build), kafka=kafka, trust=trust
    )


def __getattr__(name: str) -> AsgiFastStream:
    if name == "app":
        return create_app()
    raise AttributeError(name)
