"""Kafka topic names: one per event type, the schema's major version in the name."""

from typing import Final

MODEL_REGISTERED: Final = "bentomesh.model-registered.v1"
BENTO_BUILT: Final = "bentomesh.bento-built.v1"
IMAGE_READY: Final = "bentomesh.image-ready.v1"
DEPLOYED: Final = "bentomesh.deployed.v1"
UNDEPLOYED: Final = "bentomesh.undeployed.v1"
HEALTH_ALERT: Final = "bentomesh.health-alert.v1"
STAGE_FAILED: Final = "bentomesh.stage-failed.v1"
PREDICTIONS: Final = "bentomesh.predictions.v1"
ROLLOUTS: Final = "bentomesh.rollouts.v1"
DEAD_LETTER: Final = "bentomesh.dead-letter.v1"

ALL_TOPICS: Final = (
    MODEL_REGISTERED,
    BENTO_BUILT,
    IMAGE_READY,
    DEPLOYED,
    UNDEPLOYED,
    HEALTH_ALERT,
    STAGE_FAILED,
    PREDICTIONS,
    ROLLOUTS,
    DEAD_LETTER,
)
