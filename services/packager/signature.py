"""What a model says about its inputs: column names, types, categories and missing values.

A model fitted on a pandas DataFrame knows its columns (scikit-learn's ``feature_names_in_``,
XGBoost's booster names, LightGBM's); its encoders know the categories of its string and
categorical columns. What the internals do not say is found out by calling the model on one-row
frames built exactly as the bento builds them: whether it takes a missing value in a column, and
whether it takes a category it never saw. The result is the signature the bento serves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bentomesh_contracts.features import Feature
from services.errors import FeatureCountMismatch, InvalidRegistration
from services.packager.templates.rows import to_frame, to_matrix

UNSEEN = "__bentomesh_unseen_category__"


@dataclass(frozen=True)
class Categorical:
    """A string or categorical column the model knows the categories of."""

    dtype: str  # "string" (encoded by a pipeline) or "category" (pandas categorical)
    categories: list[str]
    accept_unknown: bool | None = None  # None: found out by probing the model


@dataclass(frozen=True)
class Signature:
    features: tuple[Feature, ...]
    frame: bool  # the model is called with a DataFrame (it was fitted on one)

    def as_config(self) -> list[dict[str, Any]]:
        return [f.model_dump() for f in self.features]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def typical_row(self) -> list[Any]:
        """A row every column of which holds a value the model knows."""
        return [_typical(f) for f in self.features]

    def rows(self, values: list[list[Any]]) -> Any:
        """What the model is called with for these rows (as the bento builds it)."""
        configs = self.as_config()
        if self.frame:
            return to_frame(values, configs)
        return to_matrix(values, [f["name"] for f in configs])


def model_columns(model: Any) -> list[str] | None:
    """The column names the model was fitted with, when it recorded them."""
    names = getattr(model, "feature_names_in_", None)
    if names is None and callable(getattr(model, "get_booster", None)):
        names = model.get_booster().feature_names
    if names is None and hasattr(model, "booster_"):
        names = model.booster_.feature_name()
    if names is None and callable(getattr(model, "feature_name", None)):  # a native Booster
        names = model.feature_name()
    if names is None:
        return None
    listed = [str(n) for n in names]
    if all(re.fullmatch(r"Column_\d+", n) for n in listed):
        return None  # LightGBM's own names for a model fitted on an array: it knows none
    return listed


def _estimators(est: Any) -> Iterator[Any]:
    """``est`` and everything inside it: pipeline steps, column transformers, preprocessors."""
    yield est
    for _, step in getattr(est, "steps", None) or ():
        yield from _estimators(step)
    for _, inner, _ in getattr(est, "transformers_", None) or ():
        if not isinstance(inner, str):
            yield from _estimators(inner)
    preprocessor = getattr(est, "_preprocessor", None)  # HistGradientBoosting, from_dtype
    if preprocessor is not None:
        yield from _estimators(preprocessor)


def _encoder_of(transformer: Any) -> Any:
    for est in _estimators(transformer):
        if hasattr(est, "categories_") and type(est).__name__ in (
            "OneHotEncoder",
            "OrdinalEncoder",
        ):
            return est
    return None


def _string_categories(values: Any) -> list[str] | None:
    listed = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if listed and all(isinstance(v, str) for v in listed):
        return [str(v) for v in listed]
    return None


def categorical_columns(model: Any) -> dict[str, Categorical]:
    """Column -> (dtype, training categories) for every string or categorical column the
    model's encoders (or its booster) know."""
    found: dict[str, Categorical] = {}
    for est in _estimators(model):
        transformers = getattr(est, "transformers_", None)
        if transformers is None:
            continue
        names_in = [str(n) for n in getattr(est, "feature_names_in_", ())]
        kind = "category" if est is getattr(model, "_preprocessor", None) else "string"
        for _, transformer, columns in transformers:
            encoder = _encoder_of(transformer) if not isinstance(transformer, str) else None
            if encoder is None:
                continue
            selected = _column_names(columns, names_in)
            for name, categories in zip(selected, encoder.categories_, strict=False):
                if (strings := _string_categories(categories)) is not None:
                    found[name] = Categorical(kind, strings)
    found.update(_booster_categories(model))
    return found


def _column_names(columns: Any, names_in: list[str]) -> list[str]:
    listed = list(columns) if not isinstance(columns, str) else [columns]
    if listed and all(isinstance(c, str) for c in listed):
        return [str(c) for c in listed]
    if listed and all(isinstance(c, bool | np.bool_) for c in listed):
        return [n for n, keep in zip(names_in, listed, strict=False) if keep]
    return [names_in[int(i)] for i in listed if names_in]


def _booster_categories(model: Any) -> dict[str, Categorical]:
    """Categorical columns of LightGBM and XGBoost models fitted on pandas categories."""
    found: dict[str, Categorical] = {}
    booster = getattr(model, "booster_", None)
    if booster is not None and getattr(booster, "pandas_categorical", None):
        infos = booster.dump_model(num_iteration=0).get("feature_infos", {})
        names = booster.feature_name()
        categorical = [n for n in names if infos.get(n, {}).get("values")]
        for name, categories in zip(categorical, booster.pandas_categorical, strict=False):
            found[name] = Categorical("category", [str(c) for c in categories])
    if callable(getattr(model, "get_booster", None)):
        xgb = model.get_booster()
        if "c" in (xgb.feature_types or ()):
            for name, values in xgb.get_categories(export_to_arrow=True).to_arrow():
                if values is not None:  # XGBoost >= 3.1 fails on a category it never saw,
                    # but only where a tree splits on it: a probe row may miss it, so say it
                    names = [str(v) for v in values.to_pylist()]
                    found[name] = Categorical("category", names, accept_unknown=False)
    return found


def infer_signature(
    model: Any, declared: tuple[Feature, ...], call: Callable[[Any], Any]
) -> Signature:
    """The signature to serve: ``declared`` features when given (checked against what the model
    recorded), else the model's own; then probed with ``call`` (the model's predict function)."""
    columns = model_columns(model)
    frame = columns is not None and hasattr(model, "feature_names_in_")
    categorical = categorical_columns(model)
    frame = frame or bool(categorical)
    if declared:
        names = [f.name for f in declared]
        if columns is not None and len(names) != len(columns):
            raise FeatureCountMismatch(
                f"the event declares {len(names)} features but the model takes {len(columns)}"
            )
        recorded = [_as_recorded(n) for n in names]
        if columns is not None and frame and columns not in (names, recorded):
            raise InvalidRegistration(
                f"the model needs a DataFrame with columns {columns}; the registration "
                f"declares {names}: register without features to use the model's, or fix them"
            )
        known = columns or names
        features = [_typed(f, categorical.get(c)) for f, c in zip(declared, known, strict=True)]
    elif columns is not None:
        features = [_feature(name, categorical.get(name)) for name in columns]
    else:
        raise InvalidRegistration(
            f"{type(model).__name__} does not record its feature names (it was not fitted on a "
            "DataFrame): give them with --features (features=[...]) in the order it takes them"
        )
    stated = {f.name: f.accept_unknown for f in features if f.name in _stated(categorical)}
    return probe(Signature(tuple(features), frame), call, stated)


def _stated(categorical: dict[str, Categorical]) -> set[str]:
    return {name for name, c in categorical.items() if c.accept_unknown is not None}


def _as_recorded(name: str) -> str:
    """A column name as the model may have recorded it: LightGBM writes spaces as '_'."""
    return re.sub(r"\s", "_", name)


def _typed(declared: Feature, categorical: Categorical | None) -> Feature:
    """A declared feature that says only its name (or, from a CSV example, that it holds text)
    takes the type and categories the model knows."""
    plain = declared.dtype in ("float", "string") and declared.categories is None
    if categorical is None or not plain:
        return declared
    update: dict[str, Any] = {
        "dtype": categorical.dtype,
        "categories": tuple(categorical.categories),
    }
    if categorical.accept_unknown is not None:
        update["accept_unknown"] = categorical.accept_unknown
    return declared.model_copy(update=update)


def _feature(name: str, categorical: Categorical | None) -> Feature:
    return _typed(Feature(name=name), categorical)


def probe(
    signature: Signature,
    call: Callable[[Any], Any],
    stated_unknown: dict[str, bool] | None = None,
) -> Signature:
    """Call the model on one row built as the bento builds it; then learn, per column, whether
    it takes a missing value (where the registration left that open) and, for string columns,
    a category it never saw."""
    stated_unknown = stated_unknown or {}
    base = signature.typical_row()
    names = signature.names
    try:
        call(signature.rows([base]))
    except Exception as exc:
        raise InvalidRegistration(
            f"the model could not score a row with columns {names} built from the signature: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    probed = []
    for i, feature in enumerate(signature.features):
        allow_nan = feature.allow_nan
        if allow_nan is None:
            allow_nan = _takes(signature, call, base, i, None)
        update: dict[str, Any] = {"allow_nan": allow_nan}
        stated = stated_unknown.get(feature.name)
        if feature.dtype in ("string", "category") and feature.categories and stated is None:
            update["accept_unknown"] = _takes(signature, call, base, i, UNSEEN, unseen=True)
        probed.append(feature.model_copy(update=update))
    return Signature(tuple(probed), signature.frame)


def _typical(feature: Feature) -> Any:
    if feature.dtype in ("string", "category"):
        return feature.categories[0] if feature.categories else ""
    if feature.dtype == "bool":
        return False
    return 0.0


def _takes(
    signature: Signature,
    call: Callable[[Any], Any],
    base: list[Any],
    i: int,
    value: Any,
    *,
    unseen: bool = False,
) -> bool:
    """Whether the model scores the base row with column ``i`` set to ``value``. An unseen
    category is offered the way a user's own frame would carry it: as one more category."""
    row = list(base)
    row[i] = value
    x = signature.rows([row])
    if unseen and signature.frame and signature.features[i].dtype == "category":
        import pandas as pd

        feature = signature.features[i]
        known = list(feature.categories or ())
        x[feature.name] = pd.Categorical([value], categories=[*known, value])
    try:
        call(x)
    except Exception:
        return False
    return True
