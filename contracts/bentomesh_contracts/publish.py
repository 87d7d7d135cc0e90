"""Publish ``ModelRegistered`` from a training job: digest the artifact, build the event, send it.

Only pydantic, pydantic-settings and aiokafka are needed; the ML stack is not imported.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Required, TypedDict, TypeVar, Unpack

from bentomesh_contracts.codec import CONTENT_TYPE, encode, partition_key
from bentomesh_contracts.envelope import CloudEvent, new_chain
from bentomesh_contracts.errors import ArtifactError
from bentomesh_contracts.events import (
    CausalSpec,
    DataRef,
    DeploymentPrefs,
    EventData,
    Framework,
    ModelRegistered,
    Task,
)
from bentomesh_contracts.features import Feature
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.signing import Signer

DataT = TypeVar("DataT", bound=EventData)
T = TypeVar("T")

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


class Registration(TypedDict, total=False):
    """What a training job says about its model, as keyword arguments of the publish helpers.

    ``name``, ``version`` and ``task`` are required.
    """

    name: Required[str]
    """Model name (lowercase letters, digits, '-')."""
    version: Required[str]
    """Model version; immutable once registered."""
    task: Required[Task]
    """``classification``, ``regression`` or ``causal``."""
    features: Iterable[str | Feature | Mapping[str, Any]]
    """Feature names (or ``Feature``s) in the order the model takes them; leave them out when
    the model knows them (fitted on a DataFrame): the packager reads them from the model."""
    framework: Framework | None
    """``sklearn``, ``xgboost``, ``lightgbm`` or ``econml``; detected when absent."""
    class_labels: Iterable[str] | None
    """Class names of a classifier, in the model's order."""
    calibration_path: str | Path | None
    """``.npz`` with ``X`` and ``y`` held out, for regression prediction intervals."""
    treatment: str | None
    """Treatment name (causal)."""
    outcome: str | None
    """Outcome name (causal)."""
    metrics: Mapping[str, float] | None
    """Evaluation metrics to carry in the event."""
    tags: Mapping[str, str] | None
    """Free-form tags (run id, data set, ...)."""
    deployment: DeploymentPrefs | None
    """How the model should be served (runtime, workers, resources)."""
    artifact_uri: str | None
    """Where the mesh reads the artifact, when that differs from the path here (a mesh in
    containers sees ``/artifacts/...``); the digest is always computed from the local file."""
    calibration_uri: str | None
    """Likewise for the calibration data."""
    input_example_path: str | Path | None
    """A few rows as the model takes them (CSV or Parquet): names and types come from it when
    the model does not record them."""
    input_example_uri: str | None
    """Where the mesh reads the input example, when that differs from the path here."""
    reference_path: str | Path | None
    """A sample of the training data (CSV, Parquet, or .npz with X): the reference the live
    traffic's distribution is compared with."""
    reference_uri: str | None
    """Where the mesh reads the reference sample, when that differs from the path here."""


_FIELDS = frozenset(Registration.__annotations__)


def build_model_registered(
    model_path: str | Path, **fields: Unpack[Registration]
) -> ModelRegistered:
    """The ``ModelRegistered`` data for a model file, with its digest and library versions."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise TypeError(
            f"unknown registration field(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    path = Path(model_path).resolve()
    calibration = None
    if (calibration_path := fields.get("calibration_path")) is not None:
        cal = Path(calibration_path).resolve()
        calibration = DataRef(
            uri=fields.get("calibration_uri") or cal.as_uri(), sha256=sha256_file(cal)
        )
    example = None
    if (example_path := fields.get("input_example_path")) is not None:
        local = Path(example_path).resolve()
        example = DataRef(
            uri=fields.get("input_example_uri") or local.as_uri(), sha256=sha256_file(local)
        )
    reference = None
    if (reference_path := fields.get("reference_path")) is not None:
        local = Path(reference_path).resolve()
        reference = DataRef(
            uri=fields.get("reference_uri") or local.as_uri(), sha256=sha256_file(local)
        )
    causal = None
    treatment, outcome = fields.get("treatment"), fields.get("outcome")
    if treatment is not None or outcome is not None:
        causal = CausalSpec(treatment=treatment or "treatment", outcome=outcome or "outcome")
    class_labels = fields.get("class_labels")
    return ModelRegistered(
        model_name=fields["name"],
        model_version=fields["version"],
        framework=fields.get("framework"),
        task=fields["task"],
        artifact_uri=fields.get("artifact_uri") or path.as_uri(),
        artifact_sha256=sha256_file(path),
        features=_features(fields.get("features") or ()),
        class_labels=tuple(class_labels) if class_labels is not None else None,
        metrics=dict(fields.get("metrics") or {}),
        tags=dict(fields.get("tags") or {}),
        calibration=calibration,
        input_example=example,
        causal=causal,
        reference=reference,
        library_versions=installed_library_versions(),
        deployment=fields.get("deployment") or DeploymentPrefs(),
    )


async def send_event(event: CloudEvent[Any], settings: KafkaSettings | None = None) -> None:
    """Send one event to its topic (acks=all) with a short-lived producer."""
    async with started_producer(settings or KafkaSettings()) as producer:
        await send_with(producer, event)


@asynccontextmanager
async def started_producer(settings: KafkaSettings) -> AsyncIterator[Any]:
    """An aiokafka producer (acks=all), started; a failed start still closes it, and its error
    says what is wrong (unreachable, TLS, SASL)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(acks="all", **settings.aiokafka_kwargs())
    try:
        await producer.start()
        yield producer
    finally:
        await producer.stop()


async def send_with(producer: Any, event: CloudEvent[Any]) -> None:
    """Send ``event`` to its topic, keyed by model, with a started producer."""
    await producer.send_and_wait(
        type(event.data).TOPIC,
        encode(event),
        key=partition_key(event),
        headers=[("content-type", CONTENT_TYPE.encode())],
    )


async def publish_model_registered_async(
    model_path: str | Path,
    *,
    bootstrap_servers: str | None = None,
    settings: KafkaSettings | None = None,
    source: str = "bentomesh/training",
    signer: Signer | None = None,
    **fields: Unpack[Registration],
) -> CloudEvent[ModelRegistered]:
    """Build, sign and send ``ModelRegistered`` for the model file at ``model_path``.

    ``fields`` are those of :class:`Registration` (``name``, ``version``, ``task``,
    ``features``, ...). The broker is ``bootstrap_servers``, else ``settings``, else the
    ``BENTOMESH_KAFKA_*`` environment. The event is signed by ``signer``, default the
    training key in ``$BENTOMESH_KEYS_DIR`` (``$BENTOMESH_HOME/keys``). Returns the event: its
    ``chainid`` follows the model version through every later event.
    """
    data = build_model_registered(model_path, **fields)
    kafka = settings or KafkaSettings()
    if bootstrap_servers is not None:
        kafka = kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
    event = signed(new_chain(data, source=source), signer)
    await send_event(event, kafka)
    return event


def signed(
    event: CloudEvent[DataT], signer: Signer | None = None, *, producer: str = "training"
) -> CloudEvent[DataT]:
    """``event`` signed by ``signer``, default ``producer``'s key from the keys directory;
    unchanged (with a warning) only under ``BENTOMESH_INSECURE_UNSIGNED=true``."""
    from bentomesh_contracts.keys import SigningSettings, warn_insecure

    if signer is None:
        settings = SigningSettings()
        if settings.insecure_unsigned:
            warn_insecure(producer)
            return event
        signer = settings.keys.signer(producer)
    return signer.sign(event)


def publish_model_registered(
    model_path: str | Path,
    *,
    bootstrap_servers: str | None = None,
    settings: KafkaSettings | None = None,
    source: str = "bentomesh/training",
    signer: Signer | None = None,
    **fields: Unpack[Registration],
) -> CloudEvent[ModelRegistered]:
    """:func:`publish_model_registered_async` for scripts and notebooks: it works with or
    without an event loop running in this thread (Jupyter runs one)."""
    return run_blocking(
        lambda: publish_model_registered_async(
            model_path,
            bootstrap_servers=bootstrap_servers,
            settings=settings,
            source=source,
            signer=signer,
            **fields,
        )
    )


def run_blocking(start: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``start()`` to completion from synchronous code. Inside a running
    event loop (a notebook cell), it runs on a loop of its own in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(start())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bentomesh-publish") as pool:
        return pool.submit(lambda: asyncio.run(start())).result()
