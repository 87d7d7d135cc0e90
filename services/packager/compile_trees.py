"""Tree ensembles compiled to native code (treelite + tl2cgen), linear models reduced to their
coefficients; either is served only when equal to the original.

A scikit-learn forest, gradient boosting or histogram gradient boosting model, an XGBoost or a
LightGBM model is turned into a shared library beside the model in the store; a scikit-learn
logistic or least-squares model into its coefficients (numpy: its server imports neither
scikit-learn nor SciPy, seconds off every start). Before either is used, its predictions on a
sample are compared with the original's: probabilities and values within 1e-6 (relative, for
values beyond 1), labels exactly. Anything else (a pipeline, another model, a frame with
categories, a failed compiler, a difference) is served as trained, and the reason is kept
(``BentoBuilt.serving``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.packager.frameworks import LoadedModel
from services.packager.signature import Signature
from services.packager.templates.compiled import CompiledLinear, CompiledTrees

logger = logging.getLogger("bentomesh.packager")

COMPILED_FILE = "trees.so"
LINEAR_FILE = "linear.npz"
TOLERANCE = 1e-6
MAX_NODES = 300_000  # fully grown forests compile for minutes: served as trained instead
_SKLEARN_ENSEMBLES = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
)
_SKLEARN_LINEAR = (
    "LogisticRegression",
    "LogisticRegressionCV",
    "LinearRegression",
    "Ridge",
    "RidgeCV",
    "Lasso",
    "LassoCV",
    "ElasticNet",
    "ElasticNetCV",
)


@dataclass(frozen=True)
class Compiled:
    file: str | None  # in the model's directory; None: served as trained
    note: str  # what was done, or why not


def _nodes(model: Any) -> int:
    if hasattr(model, "estimators_"):
        return int(sum(e.tree_.node_count for e in np.ravel(model.estimators_)))
    predictors = getattr(model, "_predictors", None)
    if predictors is not None:
        return sum(len(p.nodes) for step in predictors for p in step)
    return 0


def _treelite(loaded: LoadedModel) -> Any:
    """The treelite model, or a string saying why there is none."""
    import treelite

    model = loaded.model
    kind = type(model).__name__
    if loaded.artifact_format == "lightgbm-txt":
        return treelite.frontend.from_lightgbm(model)
    if loaded.framework == "lightgbm":
        return treelite.frontend.from_lightgbm(model.booster_)
    if loaded.framework == "xgboost":
        return treelite.frontend.from_xgboost(model.get_booster())
    if kind not in _SKLEARN_ENSEMBLES:
        return f"{kind} is neither a tree ensemble nor a linear model"
    if (nodes := _nodes(model)) > MAX_NODES:
        return f"{nodes:,} tree nodes: more than {MAX_NODES:,} would take minutes to compile"
    return treelite.sklearn.import_model(model)


def sample_rows(signature: Signature, data: Any) -> np.ndarray[Any, Any]:
    """Rows to compare on: the data at hand (reference, calibration, example) and 512 more
    spread over several scales, so that splits at any threshold are crossed."""
    rng = np.random.default_rng(0)
    n = len(signature.features)
    scales = rng.choice([0.1, 1.0, 10.0, 1000.0], size=(512, 1))
    drawn: np.ndarray[Any, Any] = rng.normal(0.0, 1.0, (512, n)) * scales
    if data is None:
        return drawn
    try:
        known = np.asarray(data, dtype=np.float64).reshape(-1, n)[:2048]
    except (TypeError, ValueError):  # none, or not all numbers
        return drawn
    rows: np.ndarray[Any, Any] = np.vstack([known, drawn])
    return rows


def _save_linear(loaded: LoadedModel, path: Path) -> bool:
    """Save a scikit-learn linear model's coefficients to ``path``, if it is one."""
    model = loaded.model
    if loaded.framework != "sklearn" or type(model).__name__ not in _SKLEARN_LINEAR:
        return False
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    np.savez(path, coef=coef, intercept=np.broadcast_to(intercept, coef.shape[:1]).copy())
    return True


def _served_as(loaded: LoadedModel, task: str, directory: Path) -> tuple[Any, str, str] | str:
    """The compiled model (exactly what the template will call), its file and how it was made;
    or why there is none."""
    linear = directory / LINEAR_FILE
    if _save_linear(loaded, linear):
        return CompiledLinear(linear, task), LINEAR_FILE, "reduced to coefficients (numpy)"
    import tl2cgen

    model = _treelite(loaded)
    if isinstance(model, str):
        return model
    started = time.perf_counter()
    library = directory / COMPILED_FILE
    tl2cgen.export_lib(
        model, toolchain="gcc", libpath=str(library), params={"parallel_comp": 4}, nthread=1
    )
    seconds = time.perf_counter() - started
    return CompiledTrees(library, task), COMPILED_FILE, f"compiled with tl2cgen in {seconds:.1f}s"


def compile_trees(
    loaded: LoadedModel,
    serving: Any,
    task: str,
    signature: Signature,
    data: Any,
    directory: Path,
) -> Compiled:
    """Compile into ``directory`` when the model is a tree ensemble or a linear model and the
    result is equal to the original on a sample."""
    if task == "causal":
        return Compiled(None, "causal models are served as trained")
    if signature.frame and any(f.dtype not in ("float", "int", "bool") for f in signature.features):
        return Compiled(None, "categorical columns: the pipeline is served as trained")
    try:
        made = _served_as(loaded, task, directory)
        if isinstance(made, str):
            return Compiled(None, made)
        served, file, how = made
        rows = sample_rows(signature, data)
        mine = served.predict_proba(rows) if task == "classification" else served.predict(rows)
        frame: Any = rows
        if signature.frame:
            import pandas as pd

            frame = pd.DataFrame(rows, columns=[f.name for f in signature.features])
        theirs = np.asarray(
            serving.predict_proba(frame) if task == "classification" else serving.predict(frame),
            dtype=np.float64,
        ).reshape(mine.shape)
    except Exception as exc:  # a compiler or frontend that refuses: serve as trained
        logger.warning("compilation failed: %s", exc)
        for name in (COMPILED_FILE, LINEAR_FILE):
            (directory / name).unlink(missing_ok=True)
        return Compiled(None, f"compilation failed ({type(exc).__name__}: {exc})"[:300])
    # within 1e-6, relative to the value beyond 1 (XGBoost sums in float32 in either case)
    difference = float((np.abs(mine - theirs) / np.maximum(1.0, np.abs(theirs))).max())
    same_labels = task != "classification" or bool(
        (mine.argmax(axis=1) == theirs.argmax(axis=1)).all()
    )
    if difference > TOLERANCE or not same_labels:
        (directory / file).unlink(missing_ok=True)
        return Compiled(
            None, f"compiled predictions differ by {difference:.2g} on {len(rows)} rows: not used"
        )
    return Compiled(file, f"{how}; equal within {difference:.1g} on {len(rows)} rows")
