"""BentoMesh event contracts: CloudEvents, their data models, topics and the publish helper.

Importing this package needs pydantic only; the publish helper imports aiokafka when called.
"""

from typing import TYPE_CHECKING, Any

from contracts import topics
from contracts.codec import decode, decode_as, encode, partition_key
from contracts.envelope import CloudEvent, follow_up, new_chain
from contracts.errors import ArtifactError, ContractError, EventDecodeError
from contracts.events import (
    BentoBuilt,
    CausalSpec,
    DataRef,
    Deployed,
    DeploymentPrefs,
    EventData,
    Feature,
    HealthAlert,
    ImageReady,
    ModelRegistered,
    Resources,
    StageFailed,
)

if TYPE_CHECKING:
    from contracts.kafka import KafkaSettings
    from contracts.publish import (
        build_model_registered,
        publish_model_registered,
        publish_model_registered_async,
    )

_LAZY = {
    "KafkaSettings": "contracts.kafka",
    "build_model_registered": "contracts.publish",
    "publish_model_registered": "contracts.publish",
    "publish_model_registered_async": "contracts.publish",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'contracts' has no attribute {name!r}")


__all__ = [
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
    "Resources",
    "StageFailed",
    "build_model_registered",
    "decode",
    "decode_as",
    "encode",
    "follow_up",
    "new_chain",
    "partition_key",
    "publish_model_registered",
    "publish_model_registered_async",
    "topics",
]
