"""Load a verified artifact, tell which library made it, and check it can do the declared task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bentomesh_contracts.events import Framework, Task
from services.errors import (
    FeatureCountMismatch,
    TaskMismatch,
    UnknownFramework,
    UnloadableArtifact,
)

_NATIVE_FORMATS = {
    ".json": "xgboost-json",
    ".ubj": "xgboost-ubj",
    ".txt": "lightgbm-txt",
    ".skops": "skops",
}
_MODULE_FRAMEWORKS: tuple[tuple[str, Framework], ...] = (
    ("econml", "econml"),
    ("xgboost", "xgboost"),
    ("lightgbm", "lightgbm"),
    ("sklearn", "sklearn"),
)


@dataclass(frozen=True)
class LoadedModel:
    """A model in memory with what the packager learned about it."""

    model: Any
    framework: Framework
    artifact_format: str  # joblib | skops | xgboost-json | xgboost-ubj | lightgbm-txt

    @property
    def stored_format(self) -> str:
        """How the model store keeps it: a skops file (MLflow's default for scikit-learn) is
        stored as joblib, so model servers need no skops."""
        return "joblib" if self.artifact_format == "skops" else self.artifact_format


def artifact_format_of(path: Path) -> str:
    return _NATIVE_FORMATS.get(path.suffix.lower(), "joblib")


def detect_framework(model: Any) -> Framework:
    """The library of a loaded model, from its class (a Pipeline counts as scikit-learn)."""
    module = type(model).__module__
    for prefix, framework in _MODULE_FRAMEWORKS:
        if module == prefix or module.startswith(prefix + "."):
            return framework
    raise UnknownFramework(
        f"cannot tell the framework of a {module}.{type(model).__name__}; supported: "
        "scikit-learn, XGBoost, LightGBM, EconML (set 'framework' if it wraps one of them)"
    )


def load_artifact(path: Path, task: Task, declared: Framework | None) -> LoadedModel:
    """Deserialize an artifact whose digest was already verified."""
    fmt = artifact_format_of(path)
    try:
        if fmt == "joblib":
            import joblib

            model = joblib.load(path)
        elif fmt == "skops":
            import skops.io

            # as trusting as joblib: the file is digest-checked and its producer signed
            model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
        elif fmt.startswith("xgboost"):
            import xgboost

            model = xgboost.XGBClassifier() if task == "classification" else xgboost.XGBRegressor()
            model.load_model(path)
        else:
            import lightgbm

            model = lightgbm.Booster(model_file=str(path))
    except Exception as exc:
        raise UnloadableArtifact(
            f"{path.name} could not be loaded as {fmt}: {type(exc).__name__}: {exc}"
        ) from exc
    framework = detect_framework(model)
    # a scikit-learn Pipeline around an XGBoost or LightGBM model is served the same way
    wrapped = framework == "sklearn" and declared in ("xgboost", "lightgbm")
    pickled = fmt in ("joblib", "skops")
    if declared is not None and declared != framework and pickled and not wrapped:
        raise UnknownFramework(
            f"the event declares framework {declared!r} but the artifact is a "
            f"{type(model).__module__}.{type(model).__name__} ({framework})"
        )
    return LoadedModel(model=model, framework=declared or framework, artifact_format=fmt)


def _is_classifier(model: Any) -> bool:
    booster_objective = _lightgbm_objective(model)
    if booster_objective is not None:  # a native LightGBM Booster: its objective tells
        return booster_objective.startswith(("binary", "multiclass", "cross_entropy"))
    from sklearn.base import is_classifier

    try:
        return bool(is_classifier(model))
    except AttributeError:  # not a scikit-learn estimator (scikit-learn >= 1.6 raises)
        return getattr(model, "_estimator_type", None) == "classifier"


def _lightgbm_objective(model: Any) -> str | None:
    if type(model).__module__.startswith("lightgbm") and hasattr(model, "dump_model"):
        objective = model.dump_model(num_iteration=0).get("objective", "")
        return str(objective).split(" ")[0]
    return None


def check_task(loaded: LoadedModel, task: Task) -> None:
    """Refuse a model that cannot do ``task``."""
    model = loaded.model
    what = f"{type(model).__module__}.{type(model).__name__}"
    if task == "causal":
        if not (hasattr(model, "effect") and hasattr(model, "effect_interval")):
            raise TaskMismatch(
                f"task 'causal' needs effect() and effect_interval(); {what} has not"
            )
        return
    if not hasattr(model, "predict"):
        raise TaskMismatch(f"{what} has no predict(); it cannot serve task {task!r}")
    classifier = _is_classifier(model)
    if task == "classification" and not classifier:
        raise TaskMismatch(f"task 'classification' needs a classifier; {what} is not one")
    native_booster = _lightgbm_objective(model) is not None
    if task == "classification" and not native_booster and not hasattr(model, "predict_proba"):
        raise TaskMismatch(f"{what} has no predict_proba(); it cannot serve probabilities")
    if task == "regression" and classifier:
        raise TaskMismatch(f"task 'regression' needs a regressor; {what} is a classifier")


def feature_count(model: Any) -> int | None:
    """How many input features the model takes, when it can tell."""
    for attr in ("n_features_in_",):
        value = getattr(model, attr, None)
        if isinstance(value, int):
            return value
    if hasattr(model, "num_feature"):  # lightgbm.Booster
        return int(model.num_feature())
    d_x = getattr(model, "_d_x", None)  # econml estimators after fit
    if isinstance(d_x, tuple) and d_x:
        return int(d_x[0])
    return None


def check_feature_count(loaded: LoadedModel, declared: int) -> None:
    expected = feature_count(loaded.model)
    if expected is not None and expected != declared:
        raise FeatureCountMismatch(
            f"the event declares {declared} features but the model takes {expected}"
        )


def class_labels_of(loaded: LoadedModel) -> list[str] | None:
    classes = getattr(loaded.model, "classes_", None)
    if classes is None:
        return None
    return [str(c) for c in list(classes)]
