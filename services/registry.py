"""The services of the mesh, in pipeline order, with their default HTTP ports."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    summary: str

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    def create_app(self) -> Any:
        module = importlib.import_module(f"{self.module}.app")
        app = module.create_app()
        return app


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("packager", 8101, "ModelRegistered -> BentoBuilt"),
    ServiceInfo("builder", 8102, "BentoBuilt -> ImageReady"),
    ServiceInfo("deployer", 8103, "ImageReady -> Deployed; stable endpoints at /models/<name>"),
    ServiceInfo("monitor", 8104, "Deployed -> HealthAlert"),
)
