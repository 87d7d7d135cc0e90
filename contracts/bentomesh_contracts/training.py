"""Register a fitted model object straight from a training job or a notebook.

:func:`register_model` saves the model under an artifact root the mesh reads, infers what the
model knows about itself (task, feature names, class labels), and publishes ``ModelRegistered``.
The model's library (and joblib) are imported only when called; they are the training job's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Unpack

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import ContractError
from bentomesh_contracts.events import ModelRegistered, Task
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.publish import Registration, publish_model_registered
from bentomesh_contracts.signing import Signer


class SignatureUnknown(ContractError):
    """The model does not record something the registration needs; the message says what to
    pass."""


def infer_task(model: Any) -> Task | None:
    """``causal`` for EconML estimators, else what scikit-learn's tags (or the estimator type
    that XGBoost and LightGBM wrappers declare) say; None when the model does not say."""
    if callable(getattr(model, "effect", None)) and callable(
        getattr(model, "const_marginal_effect", None)
    ):
        return "causal"
    kind = getattr(model, "_estimator_type", None)
    tags = getattr(model, "__sklearn_tags__", None)
    if kind is None and callable(tags):
        try:
            kind = tags().estimator_type
        except Exception:  # a wrapper whose tags need fitted state or newer sklearn
            kind = None
    return {"classifier": "classification", "regressor": "regression"}.get(str(kind))  # type: ignore[return-value]


def infer_features(model: Any) -> list[str] | None:
    """Feature names the model was fitted with: scikit-learn's ``feature_names_in_`` (any
    estimator or pipeline fitted on a DataFrame), XGBoost's booster names, LightGBM's."""
    names = getattr(model, "feature_names_in_", None)
    if names is None and callable(getattr(model, "get_booster", None)):
        names = model.get_booster().feature_names
    if names is None:
        names = getattr(model, "feature_name_", None)
    return [str(n) for n in names] if names is not None else None


def infer_class_labels(model: Any) -> list[str] | None:
    classes = getattr(model, "classes_", None)
    return [str(c) for c in classes] if classes is not None else None


REFERENCE_ROWS = 10_000


def save_reference(data: Any, stem: Path) -> Path:
    """A random sample of ``data`` (a pandas DataFrame: Parquet, types kept; an array: .npz
    with X) at ``stem`` plus the suffix; the path written."""
    import numpy as np

    if hasattr(data, "sample") and hasattr(data, "to_parquet"):
        sample = data.sample(min(len(data), REFERENCE_ROWS), random_state=0)
        path = stem.with_name(stem.name + ".reference.parquet")
        sample.to_parquet(path, index=False)
        return path
    x = np.asarray(data)
    if x.ndim != 2:
        raise SignatureUnknown(f"reference must be a DataFrame or a 2-D array, not {x.shape}")
    rows = np.random.default_rng(0).permutation(len(x))[:REFERENCE_ROWS]
    path = stem.with_name(stem.name + ".reference.npz")
    np.savez(path, X=x[rows])
    return path


def default_artifact_dir() -> Path:
    """The first of ``BENTOMESH_ARTIFACT_ROOTS``, else ``$BENTOMESH_HOME/artifacts``."""
    roots = [r for r in os.environ.get("BENTOMESH_ARTIFACT_ROOTS", "").split(":") if r]
    if roots:
        return Path(roots[0])
    home = os.environ.get("BENTOMESH_HOME") or str(Path.home() / ".bentomesh")
    return Path(home) / "artifacts"


def register_model(
    model: Any,
    *,
    artifact_dir: str | Path | None = None,
    bootstrap_servers: str | None = None,
    settings: KafkaSettings | None = None,
    signer: Signer | None = None,
    source: str = "bentomesh/training",
    reference: Any = None,
    **fields: Unpack[Registration],
) -> CloudEvent[ModelRegistered]:
    """Save ``model`` (joblib) as ``<artifact_dir>/<name>-<version>.joblib`` and publish its
    registration. ``task``, ``features`` and ``class_labels`` default to what the model records
    (a model fitted on a DataFrame knows its feature names); ``name`` and ``version`` are
    required. ``reference`` (the training DataFrame or array) is sampled (at most
    :data:`REFERENCE_ROWS` rows) beside the model as what live traffic is compared with.
    Works in scripts and notebooks alike."""
    import joblib

    name, version = fields.get("name"), fields.get("version")
    if not name or not version:
        raise SignatureUnknown("register_model needs name= and version=")
    task = fields.get("task") or infer_task(model)
    if task is None:
        raise SignatureUnknown(
            f"{type(model).__name__} does not say what it predicts; pass task='classification', "
            "'regression' or 'causal'"
        )
    features = fields.get("features") or infer_features(model)
    if not features:
        raise SignatureUnknown(
            f"{type(model).__name__} does not record its feature names; fit it on a pandas "
            "DataFrame, or pass features=[...] in the order it takes them"
        )
    labels = fields.get("class_labels")
    if labels is None and task == "classification":
        labels = infer_class_labels(model)
    directory = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{version}.joblib"
    joblib.dump(model, path)
    inferred: Registration = {**fields, "task": task, "features": features}
    if reference is not None:
        inferred["reference_path"] = save_reference(reference, directory / f"{name}-{version}")
    if labels is not None:
        inferred["class_labels"] = labels
    return publish_model_registered(
        path,
        bootstrap_servers=bootstrap_servers,
        settings=settings,
        signer=signer,
        source=source,
        **inferred,
    )
