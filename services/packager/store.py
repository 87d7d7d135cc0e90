"""Save a verified model into the BentoML model store, once per name and version."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import joblib
import numpy as np

from bentomesh_contracts.events import ModelRegistered
from services.errors import VersionConflict
from services.packager.frameworks import LoadedModel
from services.packager.signature import Signature
from services.packager.templates.helpers import ARTIFACT_FILES


@dataclass(frozen=True)
class StoredModel:
    tag: str
    path: Path
    config: dict[str, Any]
    reused: bool


def model_tag(event: ModelRegistered) -> str:
    return f"{event.model_name}:{event.model_version}"


def find_model(tag: str) -> bentoml.Model | None:
    try:
        return bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        return None


def serving_config(
    event: ModelRegistered,
    loaded: LoadedModel,
    signature: Signature,
    *,
    class_labels: list[str] | None,
    conformal_scores: np.ndarray[Any, Any] | None,
) -> dict[str, Any]:
    """What the generated service reads at start-up (``bentomesh.json`` beside the model)."""
    return {
        "model_name": event.model_name,
        "model_version": event.model_version,
        "task": event.task,
        "framework": loaded.framework,
        "artifact_format": loaded.stored_format,
        "artifact_sha256": event.artifact_sha256,
        "features": signature.as_config(),
        "input": "frame" if signature.frame else "array",
        "class_labels": class_labels,
        "conformal_scores": (
            np.sort(conformal_scores).tolist() if conformal_scores is not None else None
        ),
        "causal": event.causal.model_dump() if event.causal else None,
        # a sample of what it serves, for the monitor to publish (templates/sampled.py)
        "prediction_log": (
            {"share": event.deployment.log_predictions, "max_bytes": 16_384, "keep": 256}
            if event.deployment.log_predictions > 0
            else None
        ),
    }


def save_model(
    event: ModelRegistered,
    loaded: LoadedModel,
    artifact: Path,
    config: dict[str, Any],
    *,
    chain_id: str,
    files: Sequence[Path] = (),
) -> StoredModel:
    """Copy the verified artifact into the store; reuse an identical earlier save."""
    tag = model_tag(event)
    existing = find_model(tag)
    if existing is not None:
        previous = existing.info.metadata.get("artifact_sha256")
        if previous != event.artifact_sha256:
            raise VersionConflict(
                f"{tag} is already in the model store from an artifact with SHA-256 {previous!s}; "
                "a version is immutable, register the new artifact as a new version"
            )
        stored_config = json.loads((Path(existing.path) / "bentomesh.json").read_text())
        return StoredModel(
            tag=str(existing.tag), path=Path(existing.path), config=stored_config, reused=True
        )
    labels = {
        "framework": loaded.framework,
        "task": event.task,
        "bentomesh.chain": chain_id[:63],
        **{k: v for k, v in event.tags.items() if len(k) < 64 and len(v) < 64},
    }
    metadata = {
        "artifact_sha256": event.artifact_sha256,
        "features": [f["name"] for f in config["features"]],
        "class_labels": config.get("class_labels"),
        "metrics": dict(event.metrics),
        "chain_id": chain_id,
        "library_versions": dict(event.library_versions),
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    try:
        with bentoml.models.create(tag, labels=labels, metadata=metadata) as model:
            target = Path(model.path) / ARTIFACT_FILES[loaded.stored_format]
            if loaded.stored_format != loaded.artifact_format:
                joblib.dump(loaded.model, target)
            else:
                shutil.copyfile(artifact, target)
            for extra in files:  # made with the model (its compiled trees)
                shutil.copyfile(extra, Path(model.path) / extra.name)
            (Path(model.path) / "bentomesh.json").write_text(json.dumps(config))
    except bentoml.exceptions.BentoMLException:
        if find_model(tag) is None:
            raise
        # saved meanwhile by a replica packaging the same registration: reused (or a conflict)
        return save_model(event, loaded, artifact, config, chain_id=chain_id, files=files)
    saved = bentoml.models.get(tag)
    return StoredModel(tag=str(saved.tag), path=Path(saved.path), config=config, reused=False)


def stored_config(tag: Any) -> dict[str, Any]:
    """The ``bentomesh.json`` of a model in the store; empty when it cannot be read."""
    try:
        config: dict[str, Any] = json.loads(
            (Path(bentoml.models.get(tag).path) / "bentomesh.json").read_text()
        )
    except (bentoml.exceptions.NotFound, OSError, ValueError):
        return {}
    return config
