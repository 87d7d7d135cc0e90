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
}


@dataclass(frozen=True)
class ServiceInfo:
    stage: PipelineStage
    port: int

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def summary(self) -> str:
        return (
            f"{self.stage.consumes.__name__} -> {self.stage.produces.__name__}: "
            f"{self.stage.summary}"
        )

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    def create_app(self, **options: Any) -> Any:
        module = importlib.import_module(f"{self.module}.app")
        return module.create_app(**options)


SERVICES: Final[tuple[ServiceInfo, ...]] = tuple(
    ServiceInfo(entry, DEFAULT_PORTS[entry.name]) for entry in PIPELINE
)


def service(name: str) -> ServiceInfo:
    return next(s for s in SERVICES if s.name == name)
