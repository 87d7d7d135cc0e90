"""The data carried by each BentoMesh event (the ``data`` of its CloudEvent).

Every model is frozen and forbids unknown fields, so a typo in a producer is an error, not a silent
default. ``EVENT_TYPE`` and ``TOPIC`` tie each data model to its CloudEvent type and Kafka topic.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from bentomesh_contracts import topics
from bentomesh_contracts.event_base import AlertState as AlertState
from bentomesh_contracts.event_base import EventData as EventData
from bentomesh_contracts.event_base import Framework as Framework
from bentomesh_contracts.event_base import Severity as Severity
from bentomesh_contracts.event_base import Stage as Stage
from bentomesh_contracts.event_base import Task as Task
from bentomesh_contracts.features import Feature
from bentomesh_contracts.fields import ModelName, ModelVersion, PackageName, PackageVersion, Sha256

# the parts of a registration, importable from here as before
from bentomesh_contracts.parts import CausalSpec as CausalSpec
from bentomesh_contracts.parts import DataRef as DataRef
from bentomesh_contracts.parts import DeploymentPrefs as DeploymentPrefs
from bentomesh_contracts.parts import Resources as Resources
from bentomesh_contracts.parts import Runtime as Runtime
from bentomesh_contracts.rollout import Decision, RolloutAnalysis, RolloutThresholds, Strategy


class ModelRegistered(EventData):
    """A training job registered a model version and asks the mesh to serve it."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.model.registered.v1"
    TOPIC: ClassVar[str] = topics.MODEL_REGISTERED

    model_name: ModelName
    model_version: ModelVersion
    framework: Framework | None = Field(
        default=None, description="Library of the model; detected from the artifact when absent."
    )
    task: Task = Field(description="What the model does, which selects the serving template.")
    artifact_uri: str = Field(
        min_length=1,
        description="Local path or file:// URI of the serialized model, under an allowed root.",
        examples=["file:///data/models/churn/3/model.joblib"],
    )
    artifact_sha256: Sha256
    features: tuple[Feature, ...] = Field(
        default=(),
        description="Input features in the order the model expects them. Empty: the packager "
        "reads them from the model (a model fitted on a DataFrame knows its columns); given, "
        "they override what the model says.",
    )
    class_labels: tuple[str, ...] | None = Field(
        default=None,
        description="Names of the classes in the order of the model's predict_proba columns "
        "(classification only); defaults to the model's own classes.",
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Evaluation metrics from training, e.g. {'auc': 0.91}."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")
    calibration: DataRef | None = Field(
        default=None,
        description="Held-out calibration data for conformal prediction intervals (regression): "
        "an .npz with X and y, or a CSV/Parquet table with the model's columns and 'y'.",
    )
    input_example: DataRef | None = Field(
        default=None,
        description="A few rows as the model takes them (CSV or Parquet), digest-checked like "
        "the artifact: column names, order and types come from it when the model does not "
        "record them (fitted on an array; LightGBM rewrites spaces in names).",
    )
    causal: CausalSpec | None = Field(
        default=None, description="Treatment and outcome names (causal only)."
    )
    reference: DataRef | None = Field(
        default=None,
        description="A sample of the training data (CSV or Parquet with the model's columns, "
        "or an .npz with X), digest-checked like the artifact: the packager profiles it (and "
        "the model's predictions on it) as the reference live traffic is compared with. "
        "Without it the calibration data of a regressor serves.",
    )
    library_versions: dict[PackageName, PackageVersion] = Field(
        default_factory=dict,
        description="Versions of the libraries the model was trained with, pinned in the bento.",
        examples=[{"scikit-learn": "1.9.1", "numpy": "2.4.6"}],
    )
    deployment: DeploymentPrefs = Field(
        default_factory=DeploymentPrefs, description="Serving preferences."
    )


class BentoBuilt(EventData):
    """The packager verified the artifact, saved the model and built a bento."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.bento.built.v1"
    TOPIC: ClassVar[str] = topics.BENTO_BUILT
    ADDED_LATER: ClassVar[tuple[str, ...]] = ("reference_rows", "serving", "stage_seconds")

    model_name: ModelName
    model_version: ModelVersion
    framework: Framework = Field(description="Library of the model, as detected or declared.")
    task: Task = Field(description="Task of the model.")
    bento_tag: str = Field(description="BentoML tag of the built bento.", examples=["churn:3"])
    features: tuple[Feature, ...] = Field(
        default=(),
        description="The signature the bento serves: names, types and categories, as "
        "registered or read from the model (empty from producers before this field).",
    )
    model_tag: str = Field(description="BentoML model-store tag.", examples=["churn-model:3"])
    template: Literal["classification", "regression", "causal"] = Field(
        description="Serving template the bento was generated from."
    )
    bento_path: str = Field(description="Directory of the built bento in the BentoML store.")
    size_bytes: int = Field(ge=0, description="Size of the bento directory.")
    build_seconds: float = Field(ge=0, description="Wall time of packaging and building.")
    deployment: DeploymentPrefs = Field(description="Serving preferences, carried forward.")
    reference_rows: int | None = Field(
        default=None,
        ge=0,
        description="Rows of the reference sample profiled with the model (per-feature bins "
        "and category shares, the predictions' distribution); None: no reference was given.",
    )
    serving: str | None = Field(
        default=None,
        description="How the model is served: compiled trees (and the check that they are "
        "equal to the original), or why it is served as trained.",
        examples=["compiled with tl2cgen in 1.4s; equal within 2e-16 on 1024 rows"],
    )
    stage_seconds: dict[str, float] | None = Field(
        default=None,
        description="Where ``build_seconds`` went: verify, load, compile, store, build.",
        examples=[{"verify": 0.01, "load": 0.05, "compile": 1.4, "store": 0.04, "build": 1.6}],
    )


class ImageReady(EventData):
    """The builder produced something runnable: a container image, or the bento itself."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.image.ready.v1"
    TOPIC: ClassVar[str] = topics.IMAGE_READY

    model_name: ModelName
    model_version: ModelVersion
    bento_tag: str = Field(description="BentoML tag of the bento the image was built from.")
    backend: Literal["docker", "process", "swarm"] = Field(
        description="'docker' for a container image, 'swarm' for one pushed for a Swarm "
        "service, 'process' when the bento is served directly."
    )
    image_ref: str | None = Field(
        default=None,
        description="Image reference (docker backend).",
        examples=["bentomesh/churn:3"],
    )
    image_digest: str | None = Field(default=None, description="Image id (sha256:...).")
    size_bytes: int = Field(ge=0, description="Image size, or bento size for 'process'.")
    build_seconds: float = Field(ge=0, description="Wall time of the image build.")
    deployment: DeploymentPrefs = Field(description="Serving preferences, carried forward.")


class Deployed(EventData):
    """A model version is serving and ready; it replaced the previous version, if any."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.deployment.ready.v1"
    TOPIC: ClassVar[str] = topics.DEPLOYED
    ADDED_LATER: ClassVar[tuple[str, ...]] = ("ready_seconds",)

    deployment_id: str = Field(description="Unique id of this deployment.")
    model_name: ModelName
    model_version: ModelVersion
    runtime: Literal["docker", "process", "swarm"] = Field(description="Where it runs.")
    endpoint_url: str = Field(
        description="Base URL of this version's service.", examples=["http://127.0.0.1:41231"]
    )
    replaced_deployment_id: str | None = Field(
        default=None, description="Deployment this one replaced; it stops after a drain."
    )
    replaced_version: str | None = Field(default=None, description="Version it replaced.")
    ready_seconds: float | None = Field(
        default=None, ge=0, description="From starting the server to its first ready answer."
    )


class Undeployed(EventData):
    """A serving version was stopped on request (``bentomesh undeploy``); no longer watched."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.deployment.removed.v1"
    TOPIC: ClassVar[str] = topics.UNDEPLOYED

    deployment_id: str = Field(description="The deployment that was stopped.")
    model_name: ModelName
    model_version: ModelVersion
    runtime: Literal["docker", "process", "swarm"] = Field(description="Where it ran.")
    reason: str = Field(description="Why it was removed.", examples=["undeployed on request"])


class HealthAlert(EventData):
    """A health rule changed state for a deployment."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.health.alert.v1"
    TOPIC: ClassVar[str] = topics.HEALTH_ALERT

    deployment_id: str = Field(description="Deployment the alert is about.")
    model_name: ModelName
    model_version: ModelVersion
    endpoint_url: str = Field(description="Endpoint that was checked.")
    rule: str = Field(description="Alert rule name.", examples=["endpoint_down", "p99_latency"])
    severity: Severity = Field(description="How urgent it is.")
    state: AlertState = Field(description="'firing' when the condition starts, 'resolved' after.")
    observed: float | None = Field(default=None, description="Observed value of the metric.")
    threshold: float | None = Field(default=None, description="Threshold of the rule.")
    message: str = Field(description="Human-readable explanation.")


class PredictionsSampled(EventData):
    """Rows a deployment served, with its predictions: a sample of its traffic, published by the
    monitor for models registered with ``deployment.log_predictions`` above 0. ``worker`` and
    ``seq`` identify a sample: a redelivery carries the same pair."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.predictions.sampled.v1"
    TOPIC: ClassVar[str] = topics.PREDICTIONS

    deployment_id: str = Field(description="Deployment that served the rows.")
    model_name: ModelName
    model_version: ModelVersion
    worker: int = Field(description="Process id of the model worker that served them.")
    seq: int = Field(ge=1, description="Number of this sample within that worker.")
    served_at: float = Field(description="Unix time the batch was predicted.")
    rows: list[dict[str, Any]] = Field(description="Sampled input rows, by column name.")
    predictions: list[Any] = Field(
        description="The prediction of each row: a label, a value or an effect."
    )
    sampled_rows: int = Field(
        ge=0, description="Rows sampled from the batch; more than ``rows`` when truncated."
    )
    truncated: bool = Field(description="Rows were left out to keep the sample under its size cap.")


class RolloutProgressed(EventData):
    """A step of a canary or shadow rollout, the figures that decided it (see docs/rollouts.md)."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.rollout.progressed.v1"
    TOPIC: ClassVar[str] = topics.ROLLOUTS

    deployment_id: str = Field(description="The candidate deployment.")
    model_name: ModelName
    model_version: ModelVersion
    serving_deployment_id: str = Field(description="The version serving users meanwhile.")
    serving_version: str = Field(description="Its version.")
    strategy: Strategy = Field(description="'canary' or 'shadow'.")
    step: int = Field(ge=0, description="Index of the step in ``steps``.")
    steps: list[float] = Field(description="Traffic (canary) or mirrored (shadow) shares.")
    share: float = Field(ge=0, le=1, description="Share the candidate receives now.")
    decision: Decision = Field(description="What happened at this step.")
    reason: str = Field(description="Why, in a sentence.")
    analysis: RolloutAnalysis | None = Field(default=None, description="Figures of the window.")
    thresholds: RolloutThresholds = Field(description="Limits the figures were held to.")


class StageFailed(EventData):
    """A stage could not process an event; the chain of that model version stops here."""

    EVENT_TYPE: ClassVar[str] = "bentomesh.stage.failed.v1"
    TOPIC: ClassVar[str] = topics.STAGE_FAILED

    stage: Stage = Field(description="Service that failed.")
    model_name: str | None = Field(default=None, description="Model of the failed event, if known.")
    model_version: str | None = Field(default=None, description="Version, if known.")
    reason: str = Field(description="What went wrong and what to do about it.")
    error_type: str = Field(
        description="Machine-readable error kind.", examples=["DigestMismatch", "BuildFailed"]
    )
    failed_event_id: str = Field(description="id of the event that could not be processed.")
    failed_event_type: str = Field(description="type of that event.")
    retryable: bool = Field(description="Whether sending the same event again may succeed.")
    details: str | None = Field(
        default=None, description="Extra diagnostics, e.g. the tail of a build log."
    )


EVENT_DATA_TYPES: tuple[type[EventData], ...] = (
    ModelRegistered,
    BentoBuilt,
    ImageReady,
    Deployed,
    Undeployed,
    HealthAlert,
    PredictionsSampled,
    RolloutProgressed,
    StageFailed,
)
DATA_BY_EVENT_TYPE: dict[str, type[EventData]] = {cls.EVENT_TYPE: cls for cls in EVENT_DATA_TYPES}
