"""``services.builder.app:app``: run with ``faststream run`` or ``python -m services builder``."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.builder.service import builder_stage
from services.builder.settings import BuilderSettings
from services.runtime.app import create_service_app
from services.runtime.stage import stage_router


def create_app(settings: BuilderSettings | None = None) -> AsgiFastStream:
    spec = builder_stage(settings)
    return create_service_app(
        "builder",
        lambda broker_ref, metrics: stage_router(spec, broker_ref=broker_ref, metrics=metrics),
    )


def __getattr__(name: str) -> AsgiFastStream:
    if name == "app":
        return create_app()
    raise AttributeError(name)
