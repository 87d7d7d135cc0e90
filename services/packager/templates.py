"""Service templates: the source of a BentoML service for one model, by task.

``ClassificationServiceTemplate.create(model_tag=..., service_name=..., description=...)`` returns
the service source; :func:`write_build_context` lays it out with its helper module for a build.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

from bentomesh_contracts.events import Task

_SERVING_PACKAGE = "services.packager.serving"


def _template_text(name: str) -> str:
    return (resources.files(_SERVING_PACKAGE) / "templates" / f"{name}.py.tmpl").read_text()


def _safe_text(text: str) -> str:
    """Text for a double-quoted Python literal in generated code."""
    return json.dumps(text)[1:-1]


def service_class_name(service_name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", service_name)


@dataclass(frozen=True)
class ServiceTemplate:
    """Base of the three templates; ``TEMPLATE`` names the ``.py.tmpl`` file and the class."""

    TEMPLATE: ClassVar[str]
    CLASS_NAME: ClassVar[str]

    @classmethod
    def create(
        cls,
        *,
        model_tag: str,
        service_name: str,
        description: str = "",
        workers: int = 1,
        **options: object,
    ) -> str:
        """Python source of the service for the model ``model_tag`` in the BentoML store."""
        values = {
            "model_tag": _safe_text(model_tag),
            "service_name": _safe_text(service_name),
            "description": _safe_text(description or f"BentoMesh service for {model_tag}"),
            "workers": int(workers),
            **{k: _safe_text(str(v)) if isinstance(v, str) else v for k, v in options.items()},
        }
        return _template_text(cls.TEMPLATE).format(**values)

    @classmethod
    def service_ref(cls) -> str:
        return f"service:{cls.CLASS_NAME}"


class ClassificationServiceTemplate(ServiceTemplate):
    TEMPLATE = "classification"
    CLASS_NAME = "Classifier"


class RegressionServiceTemplate(ServiceTemplate):
    TEMPLATE = "regression"
    CLASS_NAME = "Regressor"

    @classmethod
    def create(  # type: ignore[override]
        cls,
        *,
        model_tag: str,
        service_name: str,
        description: str = "",
        workers: int = 1,
        return_intervals: bool = True,
    ) -> str:
        return super().create(
            model_tag=model_tag,
            service_name=service_name,
            description=description,
            workers=workers,
            return_intervals=bool(return_intervals),
        )


class CausalInferenceServiceTemplate(ServiceTemplate):
    TEMPLATE = "causal"
    CLASS_NAME = "CausalEffects"

    @classmethod
    def create(  # type: ignore[override]
        cls,
        *,
        model_tag: str,
        service_name: str,
        description: str = "",
        workers: int = 1,
        treatment: str = "treatment",
        outcome: str = "outcome",
    ) -> str:
        return super().create(
            model_tag=model_tag,
            service_name=service_name,
            description=description,
            workers=workers,
            treatment=treatment,
            outcome=outcome,
        )


TEMPLATES: dict[Task, type[ServiceTemplate]] = {
    "classification": ClassificationServiceTemplate,
    "regression": RegressionServiceTemplate,
    "causal": CausalInferenceServiceTemplate,
}


def write_build_context(directory: Path, service_source: str, bentofile_yaml: str) -> Path:
    """A build directory: ``service.py``, the serving helpers and ``bentofile.yaml``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "service.py").write_text(service_source)
    helper = resources.files(_SERVING_PACKAGE) / "bentomesh_serving.py"
    with resources.as_file(helper) as helper_path:
        shutil.copyfile(helper_path, directory / "bentomesh_serving.py")
    (directory / "bentofile.yaml").write_text(bentofile_yaml)
    return directory
