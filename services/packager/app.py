"""``services.packager.app:app``: run with ``faststream run`` or ``python -m services packager``."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from bentomesh_contracts.kafka import KafkaSettings
from services.packager.service import Package, packager_stage
from services.packager.settings import PackagerSettings
from services.runtime.app import create_stage_app
from services.runtime.trust import Trust


def create_app(
    settings: PackagerSettings | None = None,
    *,
    kafka: KafkaSettings | None = None,
    trust: Trust | None = None,
    package: Package | None = None,
) -> AsgiFastStream:
    """The packager service; ``package`` replaces the model store and builds in unit tests."""
    return create_stage_app(packager_stage(settings, package=package), kafka=kafka, trust=trust)


def __getattr__(name: str) -> AsgiFastStream:
    # `faststream run services.packager.app:app` builds the app on first access only
    if name == "app":
        return create_app()
    raise AttributeError(name)
