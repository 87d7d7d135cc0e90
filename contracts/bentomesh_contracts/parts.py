"""The parts of a registration: data references, causal names, serving preferences."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from bentomesh_contracts.fields import Sha256
from bentomesh_contracts.rollout import RolloutPrefs, Strategy

Runtime = Literal["auto", "docker", "process", "swarm"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataRef(_Part):
    """A reference to a data file the packager needs, verified by digest like the artifact."""

    uri: str = Field(
        description="Local path or file:// URI of the file (under an allowed root).",
        examples=["file:///data/models/churn/3/calibration.npz"],
    )
    sha256: Sha256


class CausalSpec(_Part):
    """Names of the treatment and outcome of a causal model (features are its effect modifiers)."""

    treatment: str = Field(min_length=1, description="Name of the treatment variable.")
    outcome: str = Field(min_length=1, description="Name of the outcome variable.")


class Resources(_Part):
    """Resource limits of one model replica."""

    cpus: float = Field(default=1.0, gt=0, le=64, description="CPU limit in cores.")
    memory_mb: int = Field(default=1024, ge=128, le=262_144, description="Memory limit in MiB.")


class DeploymentPrefs(_Part):
    """How the training job would like the model to be served."""

    runtime: Runtime = Field(
        default="auto",
        description="'docker' runs a container, 'process' a local bentoml process, 'swarm' a "
        "replicated Docker Swarm service (images through the mesh's registry), 'auto' picks "
        "docker when an engine is reachable.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Number of serving replicas (swarm runtime). The process and Docker runtimes "
        "run one server per version and refuse more (StageFailed UnsupportedPreference) rather "
        "than ignore it.",
    )
    workers: int = Field(default=1, ge=1, le=16, description="Model worker processes per replica.")
    resources: Resources = Field(default_factory=Resources, description="Limits per replica.")
    log_predictions: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of the rows served that the monitor publishes, with their "
        "predictions, to bentomesh.predictions.v1 (PredictionsSampled). 0, the default: none.",
    )

    strategy: Strategy | None = Field(
        default=None,
        description="How this version takes over: 'replace' (all traffic once ready), 'canary' "
        "(growing shares, each step analysed), 'shadow' (a mirrored copy of requests, compared, "
        "never promoted on its own). Unset: the mesh's BENTOMESH_ROLLOUT_STRATEGY.",
    )
    rollout: RolloutPrefs | None = Field(
        default=None, description="Steps, bake time and thresholds; unset: the mesh's."
    )

    @model_serializer(mode="wrap")
    def leave_out_defaults_added_later(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Fields added after v1 are written only when set: a consumer that predates them
        (they forbid unknown fields) still reads every event that does not use them."""
        data = handler(self)
        if isinstance(data, dict) and not self.log_predictions:
            data.pop("log_predictions", None)
        if isinstance(data, dict):
            for later in ("strategy", "rollout"):
                if data.get(later) is None:
                    data.pop(later, None)
        return data
