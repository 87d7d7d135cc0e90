"""Publish ``ModelRegistered`` from a training job: digest the artifact, build the event, send it.

Only pydantic and aiokafka are needed; the ML stack is not imported.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from bentomesh_contracts.codec import CONTENT_TYPE, encode, partition_key
from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.errors import ArtifactError
from bentomesh_contracts.events import (
    CausalSpec,
    DataRef,
    DeploymentPrefs,
    EventData,
    Feature,
    Framework,
    ModelRegistered,
    Task,
)
from bentomesh_contracts.kafka import KafkaSettings

DataT = TypeVar("DataT", bound=EventData)

_TRACKED_LIBRARIES = (
    "scikit-learn",
    "numpy",
    "scipy",
    "pandas",
    "joblib",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
    "econml",
)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def installed_library_versions() -> dict[str, str]:
    """Versions of the model libraries in this environment, to pin in the bento."""
    versions = {}
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _features(features: Iterable[str | Feature | Mapping[str, Any]]) -> tuple[Feature, ...]:
    out = []
    for f in features:
        if isinstance(f, Feature):
            out.append(f)
        elif isinstance(f, str):
            out.append(Feature(name=f))
        else:
            out.append(Feature.model_validate(f))
    return tuple(out)


def build_model_registered(
    model_path: str | Path,
    *,
    name: str,
    version: str,
    task: Task,
    features: Iterable[str | Feature | Mapping[str, Any]],
    framework: Framework | None = None,
    class_labels: Iterable[str] | None = None,
    calibration_path: str | Path | None = None,
    treatment: str | None = None,
    outcome: str | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    deployment: DeploymentPrefs | None = None,
) -> ModelRegistered:
    """The ``ModelRegistered`` data for a model file, with its digest and library versions."""
    path = Path(model_path).resolve()
    calibration = None
    if calibration_path is not None:
        cal = Path(calibration_path).resolve()
        calibration = DataRef(uri=cal.as_uri(), sha256=sha256_file(cal))
    causal = None
    if treatment is not None or outcome is not None:
        causal = CausalSpec(treatment=treatment or "treatment", outcome=outcome or "outcome")
    return ModelRegistered(
        model_name=name,
        model_version=version,
        framework=framework,
        task=task,
        artifact_uri=path.as_uri(),
        artifact_sha256=sha256_file(path),
        features=_features(features),
        class_labels=tuple(class_labels) if class_labels is not None else None,
        metrics=dict(metrics or {}),
        tags=dict(tags or {}),
        calibration=calibration,
        causal=causal,
        library_versions=installed_library_versions(),
        deployment=deployment or DeploymentPrefs(),
    )


async def send_event(event: CloudEvent[Any], settings: KafkaSettings | None = None) -> None:
    """Send one event to its topic (acks=all) with a short-lived producer."""
    from aiokafka import AIOKafkaProducer

    settings = settings or KafkaSettings()
    producer = AIOKafkaProducer(acks="all", **settings.aiokafka_kwargs())
    try:
        await producer.start()  # inside: a failed start still stops (closes) the producer
        await producer.send_and_wait(
            type(event.data).TOPIC,
            encode(event),
            key=partition_key(event),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
    finally:
        await producer.stop()


async def publish_model_registered_async(
    model_path: str | Path,
    *,
    settings: KafkaSettings | None = None,
    source: str = "bentomesh/training",
    signing_key: str | None = None,
    **fields: Any,
) -> CloudEvent[ModelRegistered]:
    """Build, sign (with ``signing_key``, default ``$BENTOMESH_SIGNING_KEY``) and send
    ``ModelRegistered``; returns the event (its ``chainid`` tracks the model)."""
    data = build_model_registered(model_path, **fields)
    event = signed(new_chain(data, source=source), signing_key)
    await send_event(event, settings)
    return event


def signed(event: CloudEvent[DataT], key: str | None = None) -> CloudEvent[DataT]:
    """``event`` signed with ``key`` or ``$BENTOMESH_SIGNING_KEY`` (unchanged when neither)."""
    from bentomesh_contracts.signing import SigningSettings, sign

    if key is None:
        secret = SigningSettings().signing_key
        key = secret.get_secret_value() if secret is not None else None
    return sign(event, key) if key else event


def publish_model_registered(
    model_path: str | Path,
    *,
    settings: KafkaSettings | None = None,
    source: str = "bentomesh/training",
    signing_key: str | None = None,
    **fields: Any,
) -> CloudEvent[ModelRegistered]:
    """Synchronous :func:`publish_model_registered_async` for scripts and notebooks."""
    return asyncio.run(
        publish_model_registered_async(
            model_path, settings=settings, source=source, signing_key=signing_key, **fields
        )
    )
