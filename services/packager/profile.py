"""The reference profile of a model: what its training data and its predictions looked like.

Per feature, compact and raw-row free: quantile bins with their shares for numbers, category
shares for text, the missing share and the range. The live traffic of a served model is later
counted over the same bins, so drift is a comparison of two histograms (PSI per feature).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bentomesh_contracts.features import Feature

BINS = 10
MAX_CATEGORIES = 50  # beyond these, the rarest categories count together as "other"


def numeric_profile(values: Any, bins: int = BINS) -> dict[str, Any]:
    """Interior quantile edges (at most ``bins - 1``, distinct) and the share of values in each
    of the bins they make; values equal to an edge fall in the bin above it."""
    x = np.asarray(values, dtype=float).ravel()
    missing = np.isnan(x)
    present = x[~missing]
    if present.size == 0:
        return {"kind": "numeric", "edges": [], "shares": [], "missing": 1.0, "range": None}
    quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    edges = np.unique(quantiles)
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "shares": (counts / present.size).tolist(),
        "missing": float(missing.mean()),
        "range": [float(present.min()), float(present.max())],
    }


def categorical_profile(values: Any, max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """The share of each category (the most frequent ``max_categories``; the rest as
    ``other``) among the present values, and the missing share."""
    import pandas as pd

    column = pd.Series(values, dtype=object)
    missing = column.isna()
    present = column[~missing].astype(str)
    if present.empty:
        return {"kind": "categorical", "shares": {}, "other": 0.0, "missing": 1.0}
    shares = present.value_counts(normalize=True)
    kept = shares.iloc[:max_categories]
    return {
        "kind": "categorical",
        "shares": {str(k): float(v) for k, v in kept.items()},
        "other": float(shares.iloc[max_categories:].sum()),
        "missing": float(missing.mean()),
    }


def reference_profile(
    columns: dict[str, Any], features: tuple[Feature, ...], predictions: Any, task: str
) -> dict[str, Any]:
    """The profile of every feature (``columns``: name -> its values) and of the predictions:
    the predicted labels of a classifier, the values of a regressor or an effect model."""
    profiles = {}
    for feature in features:
        values = columns[feature.name]
        textual = feature.dtype in ("string", "category", "bool")
        profiles[feature.name] = (
            categorical_profile(values) if textual else numeric_profile(_numbers(values))
        )
    predicted = np.asarray(predictions)
    prediction = (
        categorical_profile(predicted.ravel().tolist())
        if task == "classification"
        else numeric_profile(_numbers(predicted.ravel()))
    )
    rows = len(next(iter(columns.values()))) if columns else 0
    return {"rows": rows, "bins": BINS, "features": profiles, "prediction": prediction}


def _numbers(values: Any) -> Any:
    """Numbers, with anything that is not one (None, text) as NaN: a missing value."""
    import pandas as pd

    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)


def profile_reference(
    values: list[list[Any]], signature: Any, serving: Any, task: str, labels: list[str] | None
) -> dict[str, Any]:
    """Profile the reference rows and what the model predicts for them (a classifier: the label
    of its highest probability, as the served model answers)."""
    rows = signature.rows(values)
    if task == "classification":
        best = np.asarray(serving.predict_proba(rows)).reshape(len(values), -1)
        if best.shape[1] == 1:  # binary boosters give the positive class only
            best = np.column_stack([1 - best[:, 0], best[:, 0]])
        names = labels or [str(i) for i in range(best.shape[1])]
        predictions: Any = [names[i] for i in best.argmax(axis=1)]
    elif task == "regression":
        predictions = np.asarray(serving.predict(rows), dtype=float).ravel()
    else:
        predictions = np.asarray(serving.effect(rows), dtype=float).ravel()
    columns = {name: [row[i] for row in values] for i, name in enumerate(signature.names)}
    return reference_profile(columns, signature.features, predictions, task)
