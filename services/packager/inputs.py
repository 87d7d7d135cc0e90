"""The data the packager computes with besides the model: calibration rows, class labels.

Both are read through the model's signature, so a DataFrame model is called with a DataFrame
built exactly as the bento builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bentomesh_contracts.events import ModelRegistered
from bentomesh_contracts.features import Feature
from services.errors import InvalidRegistration
from services.packager import intake
from services.packager.signature import Signature

TARGET_COLUMN = "y"
"""The target column of a calibration table (CSV or Parquet)."""


def read_calibration(
    event: ModelRegistered, roots: tuple[Path, ...], signature: Signature
) -> tuple[Any, np.ndarray[Any, Any]] | None:
    """The calibration rows as the model takes them, and their targets; None without any."""
    if event.calibration is None:
        return None
    path = intake.resolve_artifact(event.calibration.uri, roots)
    intake.verify_digest(path, event.calibration.sha256, what="calibration data")
    if path.suffix.lower() in (".csv", ".parquet"):
        values, y = _table(path, signature)
    else:
        values, y = _npz(path, len(signature.features))
    if len(y) < 20:
        raise InvalidRegistration(f"calibration data has {len(y)} rows; at least 20 are needed")
    return signature.rows(values), y


def read_reference(
    event: ModelRegistered, roots: tuple[Path, ...], signature: Signature
) -> list[list[Any]] | None:
    """The reference rows (values in the model's column order): the registration's reference
    sample, else a regressor's calibration data; None without either."""
    ref = event.reference or (event.calibration if event.task == "regression" else None)
    if ref is None:
        return None
    what = "reference sample" if event.reference is not None else "calibration data"
    path = intake.resolve_artifact(ref.uri, roots)
    intake.verify_digest(path, ref.sha256, what=what)
    if path.suffix.lower() not in (".csv", ".parquet"):
        try:
            with np.load(path, allow_pickle=False) as data:
                x = np.asarray(data["X"], dtype=float)
        except (KeyError, ValueError, OSError) as exc:
            raise InvalidRegistration(
                f"{what} {path.name}: an .npz needs an array X ({exc})"
            ) from exc
        if x.ndim != 2 or x.shape[1] != len(signature.features):
            raise InvalidRegistration(
                f"{what} X has shape {x.shape}; expected (n, {len(signature.features)})"
            )
        return x.tolist()  # type: ignore[no-any-return]
    table = _read_table(path, what)
    missing = [c for c in signature.names if c not in table.columns]
    if missing:
        raise InvalidRegistration(f"{what} {path.name} lacks the model's columns {missing}")
    columns = table[signature.names].astype(object)
    return columns.where(columns.notna(), None).to_numpy().tolist()  # type: ignore[no-any-return]


def _npz(path: Path, width: int) -> tuple[list[list[Any]], np.ndarray[Any, Any]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = np.asarray(data["X"], dtype=float), np.asarray(data["y"], dtype=float).ravel()
    except (KeyError, ValueError, OSError) as exc:
        raise InvalidRegistration(
            f"calibration data {path.name} must be an .npz with numeric arrays 'X' and 'y', or a "
            f"CSV/Parquet table with the feature columns and '{TARGET_COLUMN}': {exc}"
        ) from exc
    if x.ndim != 2 or x.shape[1] != width or len(x) != len(y):
        raise InvalidRegistration(
            f"calibration X has shape {x.shape} and y {y.shape}; expected (n, {width}) and (n,)"
        )
    return x.tolist(), y


def _table(path: Path, signature: Signature) -> tuple[list[list[Any]], np.ndarray[Any, Any]]:
    table = _read_table(path, "calibration table")
    missing = [c for c in [*signature.names, TARGET_COLUMN] if c not in table.columns]
    if missing:
        raise InvalidRegistration(
            f"calibration table {path.name} lacks columns {missing}; it needs the model's "
            f"columns and the target as '{TARGET_COLUMN}'"
        )
    columns = table[signature.names].astype(object)
    values = columns.where(columns.notna(), None).to_numpy().tolist()
    return values, table[TARGET_COLUMN].to_numpy(dtype=float)


def class_labels(
    event: ModelRegistered,
    signature: Signature,
    predict_proba: Callable[[Any], Any],
    known: list[str] | None,
) -> list[str]:
    """The class names, in the order of the model's probability columns."""
    columns = np.asarray(predict_proba(signature.rows([signature.typical_row()]))).shape[-1]
    columns = 2 if columns == 1 else columns  # binary boosters return one column
    labels = list(event.class_labels) if event.class_labels else known
    labels = labels or [str(i) for i in range(columns)]
    if len(labels) != columns:
        raise InvalidRegistration(
            f"class_labels has {len(labels)} names but the model predicts {columns} classes"
        )
    return labels


def example_features(event: ModelRegistered, roots: tuple[Path, ...]) -> tuple[Feature, ...]:
    """Column names, order and types from the registration's input example; () without one.
    Types only: whether a column takes gaps or unseen categories is the model's to say."""
    if event.input_example is None:
        return ()
    path = intake.resolve_artifact(event.input_example.uri, roots)
    intake.verify_digest(path, event.input_example.sha256, what="input example")
    frame = _read_table(path, "input example")
    features = []
    for name in frame.columns:
        column = frame[name]
        kind = str(column.dtype)
        if kind == "category":
            categories = tuple(str(c) for c in column.cat.categories)
            features.append(Feature(name=str(name), dtype="category", categories=categories))
        elif kind in ("bool", "boolean"):
            features.append(Feature(name=str(name), dtype="bool"))
        elif column.dtype.kind in "iuf":
            features.append(Feature(name=str(name), dtype="float"))
        else:
            features.append(Feature(name=str(name), dtype="string"))
    return tuple(features)


def _read_table(path: Path, what: str) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as exc:
        raise InvalidRegistration(f"{what} {path.name} unreadable: {exc}") from exc
