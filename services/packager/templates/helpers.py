"""What the templates share: request rows, micro-batching, model loading, the configs.

Copied into every bento with the templates: no BentoMesh imports.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import deadline
from .compiled import CompiledLinear, CompiledTrees

ARTIFACT_FILES = {
    "joblib": "model.joblib",
    "xgboost-json": "model.json",
    "xgboost-ubj": "model.ubj",
    "lightgbm-txt": "model.txt",
}


def limit_threads() -> None:
    """One OpenMP/BLAS thread per worker: many threads per worker thrash on small requests."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


class MicroBatcher:
    """Merges the rows of requests that are ready in the same event-loop turn into one call.

    Single-row requests at concurrency cost one model call per turn instead of one per request;
    nothing waits for a batch to fill, so no request is delayed or shed.
    """

    def __init__(self, fn: Any, max_rows: int = 4096, merge: Any = np.vstack) -> None:
        self.fn = fn
        self.merge = merge  # parts -> one input (rows stacked); len() of a part is its rows
        self.max_rows = max_rows
        self.pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self.scheduled = False

    async def __call__(self, x: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending.append((x, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self.pending, self.scheduled = self.pending, [], False
        while pending:
            batch: list[tuple[Any, asyncio.Future[Any]]] = []
            rows = 0
            while pending and (not batch or rows + len(pending[0][0]) <= self.max_rows):
                item = pending.pop(0)
                batch.append(item)
                rows += len(item[0])
            try:
                out = np.asarray(self.fn(self.merge([x for x, _ in batch])))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for x, future in batch:
                if not future.done():
                    future.set_result(out[start : start + len(x)])
                start += len(x)


def freeze_heap() -> None:
    """Move everything allocated so far (imports, the model) out of the garbage collector's reach.

    A full collection over BentoML's and the model's objects pauses a worker for 100+ ms; after
    freezing, collections only scan request garbage, which cuts tail latency.
    """
    gc.collect()
    gc.freeze()


class _LightGBMClassifier:
    """predict/predict_proba over a native LightGBM Booster."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict_proba(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        p = np.asarray(self.booster.predict(x))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.predict_proba(x).argmax(axis=1))


class _Regressor:
    """predict over a native booster."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.booster.predict(x))


def load_model(model_dir: str | Path, artifact_format: str, task: str) -> Any:
    """Load the artifact saved in the model store by the packager (already digest-verified);
    its compiled form instead (trees or coefficients), when the packager made one."""
    compiled = json.loads((Path(model_dir) / "bentomesh.json").read_text()).get("serving") or {}
    if compiled.get("compiled") and os.environ.get("BENTOMESH_SERVE_COMPILED", "1") != "0":
        path = Path(model_dir) / compiled["compiled"]
        if path.suffix == ".npz":
            return CompiledLinear(path, task)
        return CompiledTrees(path, task)
    path = Path(model_dir) / ARTIFACT_FILES[artifact_format]
    if artifact_format == "joblib":
        import joblib

        return joblib.load(path)
    if artifact_format.startswith("xgboost"):
        import xgboost

        model = xgboost.XGBClassifier() if task == "classification" else xgboost.XGBRegressor()
        model.load_model(path)
        return model
    if artifact_format == "lightgbm-txt":
        import lightgbm

        booster = lightgbm.Booster(model_file=str(path))
        return _LightGBMClassifier(booster) if task == "classification" else _Regressor(booster)
    raise ValueError(f"unknown artifact format {artifact_format!r}")


def conformal_quantile(scores: np.ndarray[Any, Any], confidence: float) -> float:
    """Split-conformal half-width: the ceil((n+1)c)/n empirical quantile of sorted scores."""
    n = len(scores)
    rank = math.ceil((n + 1) * confidence)
    if rank > n:
        return math.inf
    return float(scores[rank - 1])


def prepared(model_input: Any, rows: Any) -> Any:
    """``model_input.prepare(rows)``; rows that do not fit are a 400 naming the column."""
    import bentoml

    from .rows import RowsRefused

    try:
        return model_input.prepare(rows)
    except RowsRefused as exc:
        raise bentoml.exceptions.InvalidArgument(str(exc)) from exc


def read_config(model_dir: str | Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((Path(model_dir) / "bentomesh.json").read_text())
    return config


SERVICE_FILE = "service.json"
"""Written beside the templates in a bento's build context: the model tag and service options."""


def service_settings() -> dict[str, Any]:
    """This bento's service settings (model tag, name, description, workers, task options)."""
    path = Path(__file__).with_name(SERVICE_FILE)
    if not path.is_file():
        raise RuntimeError(
            f"{path} is missing: the templates run inside a bento built by the BentoMesh packager"
        )
    settings: dict[str, Any] = json.loads(path.read_text())
    return settings


TRAFFIC = {"timeout": 30, "max_concurrency": 512}
"""BentoML traffic settings of the templates (the causal one allows longer requests)."""

METRICS = {"duration": {"min": 0.0005, "max": 30.0, "factor": 1.25}}
"""Latency histogram buckets 25% apart from 0.5 ms to 30 s: the monitor's p99 is then within
about 12% of the true value, where BentoML's default buckets (5, 10, 25, 50 ms ...) put the p99
of every light service near one bucket edge."""


def request_records() -> dict[str, Any]:
    """BentoML's access-log line and request span, off unless asked for.

    Together they cost two thirds of a compiled model's throughput (8,200 -> 2,450 req/s on one
    core), and the span is never kept anyway unless tracing is configured (BentoML's sample rate
    is 0 by default). The monitor reads the Prometheus metrics, which stay on.
    ``BENTOMESH_ACCESS_LOG=1`` logs every request; ``BENTOMESH_TRACE_REQUESTS=1`` gives every
    request to BentoML's tracing (configure its exporter and sample rate as BentoML says).
    """
    records: dict[str, Any] = {
        "logging": {"access": {"enabled": os.environ.get("BENTOMESH_ACCESS_LOG") == "1"}}
    }
    if os.environ.get("BENTOMESH_TRACE_REQUESTS") != "1":
        records["tracing"] = {"excluded_urls": ".*"}
    return records


@dataclass(frozen=True)
class Bento:
    """What a template reads when it is imported: its settings, its model, the model's config,
    and what the model is called with."""

    service: dict[str, Any]
    model: Any
    config: dict[str, Any]
    input: Any  # rows.ModelInput

    def options(self, **traffic: Any) -> dict[str, Any]:
        """Keyword arguments of ``@bentoml.service`` for this bento."""
        return {
            "name": self.service["service_name"],
            "description": self.service["description"],
            "workers": self.service["workers"],
            "traffic": {**TRAFFIC, **traffic},
            "metrics": METRICS,
            **request_records(),
        }


def load() -> Bento:
    """One OpenMP thread, BentoML's timeout without its leak, then this bento's settings, model
    reference and model config."""
    import bentoml

    from .rows import ModelInput

    limit_threads()
    deadline.install()
    service = service_settings()
    model = bentoml.models.BentoModel(service["model_tag"])
    config = read_config(model.stored.path)
    frame = config.get("input") == "frame"
    return Bento(service, model, config, ModelInput(config["features"], frame=frame))
