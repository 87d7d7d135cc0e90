"""One MLflow model version as ``ModelRegistered``: downloaded into the artifact root, its
digest computed there, described from its MLmodel file, its run and its tags."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from bentomesh_contracts.events import ModelRegistered, Task
from bentomesh_contracts.publish import build_model_registered
from services.errors import InvalidRegistration
from services.registry_bridge.mlflow_model import RENAMES, MlflowModel, read_model_folder
from services.registry_bridge.mlflow_registry import MlflowRegistry, VersionInfo

TASK_TAG = "bentomesh.task"
_URI = re.compile(r"^models:/(?P<model>[^/@]+)(?:/(?P<version>[0-9]+)|@(?P<alias>[\w-]+))$")


def slug(name: str) -> str:
    """An MLflow model name as a mesh model name: lower case, runs of other characters '-'."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return cleaned[:63].rstrip("-_") or "model"


def resolve(registry: MlflowRegistry, uri: str) -> tuple[str, str, str | None]:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` -> (name, version, alias)."""
    match = _URI.match(uri)
    if match is None:
        raise InvalidRegistration(
            f"{uri!r} is not a model version URI: use models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    model, alias = match["model"], match["alias"]
    if alias is None:
        return model, match["version"], None
    holder = registry.by_alias(model, alias)
    if holder is None:
        raise InvalidRegistration(f"no version of {model} holds the alias {alias!r}")
    return model, holder.version, alias


def describe_version(
    registry: MlflowRegistry,
    model: str,
    version: str,
    artifact_root: Path,
    *,
    alias: str | None = None,
) -> ModelRegistered:
    """Blocking: downloads the version (run it in a thread from async code)."""
    info = registry.version(model, version)
    folder = registry.download(model, version, artifact_root / "mlflow" / slug(model) / version)
    found = read_model_folder(folder)
    artifact = _servable_file(folder, found)
    run = registry.run(info.run_id) if info.run_id else None
    tags = {
        "mlflow.model": model,
        "mlflow.version": version,
        "mlflow.model_uri": f"models:/{model}/{version}",
        "mlflow.tracking_uri": registry.tracking_uri,
        **({"mlflow.alias": alias} if alias else {}),
        **({"mlflow.run_id": run.run_id, "mlflow.experiment": run.experiment} if run else {}),
        **({"mlflow.model_id": found.model_id} if found.model_id else {}),
        **({f"mlflow.param.{k}": v for k, v in (run.params if run else {}).items()}),
    }
    data = build_model_registered(
        artifact,
        name=slug(model),
        version=version,
        task=_task(registry, model, info, found),
        framework=found.framework,
        features=found.features,
        metrics=run.metrics if run else None,
        tags=tags,
        input_example_path=_example_file(folder, found),
    )
    # the libraries the model was logged with, not the bridge's own
    update = {"library_versions": found.library_versions}
    return ModelRegistered.model_validate({**data.model_dump(), **update})


def _task(registry: MlflowRegistry, model: str, info: VersionInfo, found: MlflowModel) -> Task:
    said = info.tags.get(TASK_TAG) or registry.model_tags(model).get(TASK_TAG)
    if said in ("classification", "regression", "causal"):
        return said  # type: ignore[return-value]
    if found.task is not None:
        return found.task
    raise InvalidRegistration(
        f"{model} version {info.version} has no signature that tells a classifier from a "
        f"regressor; log it with a signature, or set the tag {TASK_TAG} on the version or "
        "the registered model to classification, regression or causal"
    )


def _servable_file(folder: Path, found: MlflowModel) -> Path:
    """The model file under the name the packager reads it by (LightGBM's .lgb is text)."""
    path = folder / found.model_file
    if not path.is_file():
        raise InvalidRegistration(f"the model version has no file {found.model_file}")
    if path.suffix in RENAMES:
        renamed = path.with_suffix(RENAMES[path.suffix])
        shutil.copyfile(path, renamed)
        return renamed
    return path


def _example_file(folder: Path, found: MlflowModel) -> Path | None:
    """The logged input example as Parquet (types kept); None when none was logged."""
    if found.example is None:
        return None
    frame = pd.DataFrame(found.example["data"], columns=found.example["columns"])
    path = folder / "input_example.parquet"
    frame.to_parquet(path, index=False)
    return path
