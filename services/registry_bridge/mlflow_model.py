"""What an MLflow model folder says about itself: flavor, model file, signature, example, pins.

Pure reading of the files MLflow writes (``MLmodel``, ``requirements.txt``,
``input_example.json``); nothing here unpickles the model, that is the packager's job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bentomesh_contracts.events import Framework, Task
from bentomesh_contracts.features import Feature
from services.errors import InvalidRegistration

# MLflow flavor -> our framework, and the flavor-config key naming the model file
_FLAVORS: tuple[tuple[str, Framework, str], ...] = (
    ("sklearn", "sklearn", "pickled_model"),
    ("xgboost", "xgboost", "data"),
    ("lightgbm", "lightgbm", "data"),
)
# MLflow column types -> feature types
_TYPES = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "boolean": "bool",
    "string": "string",
}
# model file suffixes MLflow writes -> the name the packager reads them by
RENAMES = {".lgb": ".txt"}
# libraries whose training versions are pinned in the bento
PINNED = ("scikit-learn", "xgboost", "lightgbm", "numpy", "pandas", "scipy", "econml")
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+!\-]+)\s*$")


@dataclass(frozen=True)
class MlflowModel:
    framework: Framework
    model_file: str
    features: tuple[Feature, ...]
    task: Task | None
    example: dict[str, Any] | None = None  # pandas "split" orient: columns and data
    library_versions: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    model_id: str | None = None


def read_model_folder(folder: Path) -> MlflowModel:
    """Read ``folder`` (a downloaded ``models:/`` URI); a sentence names what is missing."""
    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRegistration(f"no readable MLmodel file in the model version: {exc}") from exc
    flavors = mlmodel.get("flavors") or {}
    served = [
        (fw, str(flavors[f][key])) for f, fw, key in _FLAVORS if (flavors.get(f) or {}).get(key)
    ]
    if not served:
        raise InvalidRegistration(
            f"the model version has flavors {', '.join(sorted(flavors)) or 'none'}; the mesh "
            "serves sklearn, xgboost and lightgbm models (log it with mlflow.sklearn, "
            "mlflow.xgboost or mlflow.lightgbm)"
        )
    framework, model_file = served[0]
    signature = mlmodel.get("signature") or {}
    return MlflowModel(
        framework=framework,
        model_file=model_file,
        features=features_of(signature.get("inputs")),
        task=task_of(signature.get("outputs")),
        example=_example(folder, mlmodel),
        library_versions=pins(folder / "requirements.txt"),
        run_id=mlmodel.get("run_id"),
        model_id=mlmodel.get("model_id"),
    )


def features_of(inputs: str | None) -> tuple[Feature, ...]:
    """Named columns of a signature's input schema, in order; () for a tensor or no schema."""
    if not inputs:
        return ()
    columns = json.loads(inputs)
    if not all(isinstance(c, dict) and c.get("name") for c in columns):
        return ()  # unnamed columns or a tensor spec: the packager reads the model instead
    return tuple(
        Feature(name=c["name"], dtype=_TYPES.get(c.get("type", ""), "float")) for c in columns
    )


def task_of(outputs: str | None) -> Task | None:
    """A predict() that returns labels (integers, text, booleans) is a classifier's, one that
    returns real numbers a regressor's; None when the signature has no output."""
    if not outputs:
        return None
    columns = json.loads(outputs)
    if len(columns) != 1 or not isinstance(columns[0], dict):
        return None
    kind = columns[0].get("type") or (columns[0].get("tensor-spec") or {}).get("dtype", "")
    if kind in ("double", "float", "float64", "float32"):
        return "regression"
    if kind in ("long", "integer", "string", "boolean", "int64", "int32", "bool", "object"):
        return "classification"
    return None


def pins(requirements: Path) -> dict[str, str]:
    """``name==version`` lines of ``requirements.txt`` for the libraries the bento pins."""
    try:
        lines = requirements.read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        match = _PIN.match(line)
        if match and match[1].lower().replace("_", "-") in PINNED:
            found[match[1].lower().replace("_", "-")] = match[2]
    return found


def _example(folder: Path, mlmodel: dict[str, Any]) -> dict[str, Any] | None:
    info = mlmodel.get("saved_input_example_info") or {}
    if info.get("type") != "dataframe" or info.get("pandas_orient", "split") != "split":
        return None
    try:
        example = json.loads((folder / info.get("artifact_path", "input_example.json")).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(example, dict) or "columns" not in example or "data" not in example:
        return None
    return example
