"""``services.builder.app:app``: run with ``faststream run`` or ``python -m services builder``."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.builder.service import builder_stage
from services.builder.settings import BuilderSettings
from services.runtime.app import create_stage_app


def create_app(settings: BuilderSettings | None = None) -> AsgiFastStream:
    return create_stage_app(builder_stage(settings))


def __getattr__(name: str) -> AsgiFastStream:
    if name == "app":
        return create_app()
    raise AttributeError(name)
