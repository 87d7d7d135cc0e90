"""Request rows: their types (validated by pydantic-core), and what the model is called with.

A row is an object keyed by the training column names (the main form), an array in feature
order, or, for the whole request, the column-oriented form ``{"columns": [...], "data": [...]}``
(pandas' ``split`` orientation). A model fitted on a float matrix gets a float matrix; a model
fitted on a DataFrame gets a DataFrame with the training names and types, categorical columns
with the training categories. Copied into every bento: no BentoMesh imports.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, NotRequired

import numpy as np
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

_NUMBER = {
    False: Annotated[float, Field(allow_inf_nan=False)],
    True: Annotated[float | None, Field(allow_inf_nan=True)],
}


def _value_type(feature: dict[str, Any]) -> Any:
    """The JSON type of one column's values; a closed set of categories is a Literal."""
    kind = feature.get("dtype", "float")
    missing = bool(feature.get("allow_nan"))
    if kind in ("string", "category"):
        categories: list[str] = list(feature.get("categories") or ())
        closed = bool(categories) and not feature.get("accept_unknown", True)
        base: Any = Literal[tuple(categories)] if closed else str
    elif kind == "bool":
        base = Annotated[bool, Field(strict=True)]
    elif kind == "int":
        base = int
    else:
        return _NUMBER[missing]
    return base | None if missing else base


def is_numeric(features: list[dict[str, Any]]) -> bool:
    return all(f.get("dtype", "float") in ("float", "int", "bool") for f in features)


def row_type(features: list[dict[str, Any]]) -> Any:
    """The type of one request row: an object by column name, or an array in column order.

    Both forms are validated by pydantic-core (no Python per value); the error of a bad row names
    the offending column, or lists the expected order when an array has the wrong length.
    """
    names = [f["name"] for f in features]
    fields: dict[str, Any] = {}
    for f in features:
        value = _value_type(f)
        fields[f["name"]] = NotRequired[value] if f.get("allow_nan") else value
    row_object = TypedDict("RowObject", fields)  # type: ignore[misc]
    row_object.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]

    def check_length(row: Any) -> Any:
        if len(row) != len(names):
            raise ValueError(
                f"row has {len(row)} values but the model takes {len(names)} features "
                f"in this order: {', '.join(names)}"
            )
        return row

    if is_numeric(features):  # the fast path: one float list per row
        cell = _NUMBER[any(f.get("allow_nan") for f in features)]
        row_array: Any = Annotated[list[cell], AfterValidator(check_length)]  # type: ignore[valid-type]
    else:  # mixed types: each position typed like its column
        positional = tuple(_value_type(f) for f in features)
        row_array = Annotated[tuple[positional], AfterValidator(check_length)]  # type: ignore[valid-type]
    return row_object | row_array


class Split(TypedDict):
    """The column-oriented form: ``{"columns": [...], "data": [[...], ...]}``."""

    columns: list[str]
    data: list[list[Any]]
    index: NotRequired[list[Any]]


def request_type(features: list[dict[str, Any]]) -> Any:
    """What ``rows`` of a request may be: a list of rows, or the column-oriented form."""
    return Annotated[list[row_type(features)], Field(min_length=1, max_length=10_000)] | Split  # type: ignore[misc]


class RowsRefused(ValueError):
    """A request's rows do not fit the model; the message names the column and the value."""


def rows_of(rows: Any, features: list[dict[str, Any]]) -> list[Any]:
    """The rows as a list (objects or arrays); the column-oriented form is checked against the
    column names and types and turned into objects."""
    if not isinstance(rows, dict):
        return list(rows)
    names = [f["name"] for f in features]
    missing = [n for n in names if n not in rows["columns"]]
    unknown = [c for c in rows["columns"] if c not in names]
    if missing or unknown:
        raise RowsRefused(
            f"columns do not match the model's: missing {missing or 'none'}, "
            f"unknown {unknown or 'none'}; expected {names}"
        )
    objects = [dict(zip(rows["columns"], values, strict=False)) for values in rows["data"]]
    if not 1 <= len(objects) <= 10_000:
        raise RowsRefused(f"data has {len(objects)} rows; 1 to 10000 are accepted")
    adapter: TypeAdapter[list[Any]] = TypeAdapter(list[row_type(features)])  # type: ignore[misc, arg-type]
    try:
        checked: list[Any] = adapter.validate_python(objects)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:3])
        raise RowsRefused(f"data row {where}: {first['msg']} (got {first.get('input')!r})") from exc
    return checked


def to_matrix(rows: list[Any], names: list[str]) -> np.ndarray[Any, Any]:
    """Rows as a float matrix in feature order (missing values become NaN)."""
    if all(type(r) is list for r in rows):
        return np.asarray(rows, dtype=np.float64)
    return np.asarray(
        [r if type(r) is list else [r.get(n, math.nan) for n in names] for r in rows],
        dtype=np.float64,
    )


def values_of(rows: list[Any], names: list[str]) -> list[list[Any]]:
    """Rows as value lists in column order (absent keys are missing values)."""
    return [list(r) if not isinstance(r, dict) else [r.get(n) for n in names] for r in rows]


def to_frame(values: list[list[Any]], features: list[dict[str, Any]]) -> Any:
    """A DataFrame with the training column names and types: numbers as float64 (missing:
    NaN), strings as objects, categorical columns with the training categories (a value
    outside them becomes missing, as pandas does)."""
    import pandas as pd

    columns = list(zip(*values, strict=True)) if values else [() for _ in features]
    data: dict[str, Any] = {}
    for feature, column in zip(features, columns, strict=True):
        kind = feature.get("dtype", "float")
        if kind == "category":
            data[feature["name"]] = pd.Categorical(column, categories=feature.get("categories"))
        elif kind == "string":
            data[feature["name"]] = np.asarray(column, dtype=object)
        elif kind == "bool" and None not in column:
            data[feature["name"]] = np.asarray(column, dtype=bool)
        else:
            data[feature["name"]] = np.asarray(
                [math.nan if v is None else v for v in column], dtype=np.float64
            )
    return pd.DataFrame(data, columns=[f["name"] for f in features])


class ModelInput:
    """What one model is called with: a float matrix, or (fitted on a DataFrame) a frame built
    once per batch of requests."""

    def __init__(self, features: list[dict[str, Any]], *, frame: bool) -> None:
        self.features = features
        self.names = [f["name"] for f in features]
        self.frame = frame

    def prepare(self, rows: Any) -> Any:
        """One request's validated rows -> a matrix, or value lists for the batch's frame."""
        listed = rows_of(rows, self.features)
        return values_of(listed, self.names) if self.frame else to_matrix(listed, self.names)

    def merge(self, parts: list[Any]) -> Any:
        if self.frame:
            return [values for part in parts for values in part]
        return np.vstack(parts)

    def calling(self, fn: Any) -> Any:
        """``fn`` taking what :meth:`merge` makes."""
        if not self.frame:
            return fn
        features = self.features
        return lambda values: fn(to_frame(values, features))
