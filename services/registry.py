"""The services of the mesh, in pipeline order, with their default HTTP ports.

Which service consumes and produces what is :data:`bentomesh_contracts.pipeline.PIPELINE`; this
adds only where each one listens and how it is started.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Final

from bentomesh_contracts.pipeline import PIPELINE, PipelineStage

DEFAULT_PORTS: Final[dict[str, int]] = {
    "packager": 8101,
    "builder": 8102,
    "deployer": 8103,
    "monitor": 8104,
    "registry_bridge": 8105,
}


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    summary: str

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    def create_app(self, **options: Any) -> Any:
        module = importlib.import_module(f"{self.module}.app")
        return module.create_app(**options)


def _stage_info(stage: PipelineStage) -> ServiceInfo:
    summary = f"{stage.consumes.__name__} -> {stage.produces.__name__}: {stage.summary}"
    return ServiceInfo(stage.name, DEFAULT_PORTS[stage.name], summary)


SERVICES: Final[tuple[ServiceInfo, ...]] = tuple(_stage_info(entry) for entry in PIPELINE)
"""The pipeline's services, in order."""

REGISTRY_BRIDGE: Final = ServiceInfo(
    "registry_bridge",
    DEFAULT_PORTS["registry_bridge"],
    "MLflow registrations and aliases -> ModelRegistered; outcomes back to MLflow as tags",
)
"""Started with the mesh when ``BENTOMESH_MLFLOW_TRACKING_URI`` is set."""

ALL_SERVICES: Final[tuple[ServiceInfo, ...]] = (*SERVICES, REGISTRY_BRIDGE)


def service(name: str) -> ServiceInfo:
    return next(s for s in ALL_SERVICES if s.name == name)
