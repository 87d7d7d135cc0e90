"""One table of what each task serves: its template module, service class, endpoints, and the
route a first request goes to. The packager, the CLI and the docs read it from here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from bentomesh_contracts.events import Task
from bentomesh_contracts.features import Feature


@dataclass(frozen=True)
class TaskProfile:
    task: Task
    template: str  # module of services.packager.templates
    service_class: str
    endpoints: tuple[str, ...]
    sample_route: str

    @property
    def service_ref(self) -> str:
        """``module:Class`` of the service inside a bento's build context."""
        return f"{TEMPLATES_PACKAGE}.{self.template}:{self.service_class}"


TEMPLATES_PACKAGE: Final = "bentomesh_templates"
"""The name the templates package has inside a bento (a bento runs without BentoMesh)."""

TASK_PROFILES: Final[dict[Task, TaskProfile]] = {
    "classification": TaskProfile(
        "classification",
        "classification",
        "Classifier",
        ("predict", "predict_proba"),
        "predict_proba",
    ),
    "regression": TaskProfile("regression", "regression", "Regressor", ("predict",), "predict"),
    "causal": TaskProfile(
        "causal", "causal", "CausalEffects", ("effect", "effect_interval"), "effect"
    ),
}


def sample_request(base_url: str, task: str, features: list[Feature]) -> tuple[str, str]:
    """The route and a curl line that calls it with one typical row (zeros, first categories)."""
    profile = TASK_PROFILES.get(task)  # type: ignore[call-overload]
    route = profile.sample_route if profile is not None else "effect"
    row = {
        f.name: (f.categories[0] if f.categories else "")
        if f.dtype in ("string", "category")
        else 0.0
        for f in features
    }
    body = json.dumps({"rows": [row]})
    curl = f"curl -s -X POST {base_url}/{route} -H 'content-type: application/json' -d '{body}'"
    return route, curl
