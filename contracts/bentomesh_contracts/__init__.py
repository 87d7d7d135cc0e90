"""BentoMesh event contracts: CloudEvents, their data models, topics and the publish helper.

Importing this package needs pydantic only; the publish helper imports aiokafka when called.
"""

from typing import TYPE_CHECKING, Any

from bentomesh_contracts import topics
from bentomesh_contracts.codec import decode, decode_as, encode, partition_key
from bentomesh_contracts.envelope import CloudEvent, follow_up, new_chain
from bentomesh_contracts.errors import ArtifactError, ContractError, EventDecodeError
from bentomesh_contracts.events import (
    BentoBuilt,
    CausalSpec,
    DataRef,
    Deployed,
    DeploymentPrefs,
    EventData,
    HealthAlert,
    ImageReady,
    ModelRegistered,
    PredictionsSampled,
    Resources,
    RolloutProgressed,
    StageFailed,
    Undeployed,
)
from bentomesh_contracts.features import Feature
from bentomesh_contracts.pipeline import PIPELINE, PipelineStage

if TYPE_CHECKING:
    from bentomesh_contracts.kafka import KafkaSettings
    from bentomesh_contracts.publish import (
        build_model_registered,
        publish_model_registered,
        publish_model_registered_async,
    )
    from bentomesh_contracts.training import register_model

_LAZY = {
    "KafkaSettings": "bentomesh_contracts.kafka",
    "build_model_registered": "bentomesh_contracts.publish",
    "publish_model_registered": "bentomesh_contracts.publish",
    "publish_model_registered_async": "bentomesh_contracts.publish",
    "register_model": "bentomesh_contracts.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bentomesh_contracts' has no attribute {name!r}")


__all__ = [
    "PIPELINE",
    "ArtifactError",
    "BentoBuilt",
    "CausalSpec",
    "CloudEvent",
    "ContractError",
    "DataRef",
    "Deployed",
    "DeploymentPrefs",
    "EventData",
    "EventDecodeError",
    "Feature",
    "HealthAlert",
    "ImageReady",
    "KafkaSettings",
    "ModelRegistered",
    "PipelineStage",
    "PredictionsSampled",
    "Resources",
    "RolloutProgressed",
    "StageFailed",
    "Undeployed",
    "build_model_registered",
    "decode",
    "decode_as",
    "encode",
    "follow_up",
    "new_chain",
    "partition_key",
    "publish_model_registered",
    "publish_model_registered_async",
    "register_model",
    "topics",
]
