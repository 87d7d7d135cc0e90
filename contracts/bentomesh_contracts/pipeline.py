"""The pipeline, stated once: which stage consumes which event and produces which.

Every reader of the mesh's shape (the services, the status page, the CLI, the monitor, the
docs) takes it from :data:`PIPELINE`; nothing else lists the stages or the chain's topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bentomesh_contracts.events import (
    BentoBuilt,
    Deployed,
    EventData,
    HealthAlert,
    ImageReady,
    ModelRegistered,
    PredictionsSampled,
    RolloutProgressed,
    Stage,
    StageFailed,
    Undeployed,
)

TRAINING_JOB: Final = "training job"
"""Who produces ``ModelRegistered``: a training job (or a bridge from a model registry)."""


@dataclass(frozen=True)
class PipelineStage:
    """One service of the mesh: the event it consumes and the event it produces."""

    name: Stage
    consumes: type[EventData]
    produces: type[EventData]
    summary: str

    @property
    def consumes_topic(self) -> str:
        return self.consumes.TOPIC

    @property
    def produces_topic(self) -> str:
        return self.produces.TOPIC


PIPELINE: Final[tuple[PipelineStage, ...]] = (
    PipelineStage(
        "packager",
        ModelRegistered,
        BentoBuilt,
        "verifies and loads the artifact, stores the model, builds the bento",
    ),
    PipelineStage(
        "builder", BentoBuilt, ImageReady, "builds a non-root image, or hands over the bento"
    ),
    PipelineStage(
        "deployer", ImageReady, Deployed, "runs the version, waits for readiness, swaps traffic"
    ),
    PipelineStage("monitor", Deployed, HealthAlert, "checks health, latency and errors; alerts"),
)
"""The stages in pipeline order."""


def stage(name: str) -> PipelineStage:
    """The stage called ``name``; ``KeyError`` naming the known stages otherwise."""
    for entry in PIPELINE:
        if entry.name == name:
            return entry
    raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in PIPELINE)}")


PRODUCER_OF: Final[dict[str, str]] = {
    ModelRegistered.EVENT_TYPE: TRAINING_JOB,
    **{entry.produces.EVENT_TYPE: entry.name for entry in PIPELINE},
    Undeployed.EVENT_TYPE: "deployer",
    RolloutProgressed.EVENT_TYPE: "deployer",
    PredictionsSampled.EVENT_TYPE: "monitor",
}
"""Event type -> who emits it (``StageFailed`` names its stage in its data)."""

CHAIN_TOPICS: Final[tuple[str, ...]] = (
    ModelRegistered.TOPIC,
    *(entry.produces_topic for entry in PIPELINE),
    Undeployed.TOPIC,
    RolloutProgressed.TOPIC,
    StageFailed.TOPIC,
)
"""Every topic an event of a model version's chain can travel on (not the dead letters, nor
the sampled predictions: traffic, not lineage)."""

TERMINAL_EVENTS: Final[tuple[type[EventData], ...]] = (Deployed, StageFailed)
"""A registration ends with exactly one of these."""
