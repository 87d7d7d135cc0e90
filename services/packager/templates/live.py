"""What a served model receives and predicts, counted over the bins of its reference profile.

Counts are cumulative per worker process; the monitor reads them (``GET /bentomesh/live``),
takes the differences between reads as its windows, and compares them with the reference.
Counting is per batch and vectorised for numbers; nothing is kept of the rows themselves.
This module imports nothing of BentoMesh: it runs inside bentos.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any

import numpy as np

from .sampled import PredictionLog

ROUTE = "/bentomesh/live"
ROWS_ROUTE = f"{ROUTE}/rows"
# batches wait until this many rows are in, then are counted together: numpy's cost per call,
# not per row, is what counting costs, and a request path that only appends pays almost none
COUNT_EVERY_ROWS = 512


class _Numbers:
    def __init__(self, profile: dict[str, Any]) -> None:
        self.edges = np.asarray(profile["edges"], dtype=float)
        self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        bounds = profile["range"] or (-np.inf, np.inf)
        self.low, self.high = float(bounds[0]), float(bounds[1])
        self.missing = 0
        self.outside = 0

    def add(self, values: Any) -> None:
        x = np.asarray(values, dtype=float).ravel()
        gaps = np.isnan(x)
        present = x[~gaps]
        self.missing += int(gaps.sum())
        self.outside += int(((present < self.low) | (present > self.high)).sum())
        self.counts += np.bincount(
            np.searchsorted(self.edges, present, side="right"), minlength=self.counts.size
        )

    def snapshot(self) -> dict[str, Any]:
        return {"counts": self.counts.tolist(), "missing": self.missing, "outside": self.outside}


class _Categories:
    def __init__(self, profile: dict[str, Any]) -> None:
        self.known = set(profile["shares"])
        self.counts: Counter[str] = Counter()
        self.missing = 0
        self.unseen = 0

    def add(self, values: Any) -> None:
        for value, n in Counter(values).items():  # hashing in C; a key per distinct value
            if value is None or value == "":
                self.missing += n
                continue
            key = value if isinstance(value, str) else str(value)
            if key in self.known:
                self.counts[key] += n
            else:
                self.unseen += n

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "missing": self.missing, "unseen": self.unseen}


def _counter(profile: dict[str, Any]) -> _Numbers | _Categories:
    return _Numbers(profile) if profile["kind"] == "numeric" else _Categories(profile)


class LiveProfile:
    """Off (counts nothing) for a model packaged without a reference."""

    def __init__(
        self,
        reference: dict[str, Any] | None,
        names: list[str],
        prediction_log: dict[str, Any] | None = None,
    ) -> None:
        self.reference = reference
        self.names = names
        self.log = PredictionLog(prediction_log, names) if prediction_log else None
        self.rows = 0
        self.errors = 0  # batches that could not be counted (never a failed prediction)
        self.last_error: str | None = None
        self.lock = threading.Lock()
        self.pending: list[tuple[Any, Any, Any]] = []  # (batch, output, predicted), uncounted
        self.pending_rows = 0
        if reference is not None:
            self.features = {n: _counter(reference["features"][n]) for n in names}
            self.prediction = _counter(reference["prediction"])

    def observe(self, batch: Any, predictions: Any) -> None:
        """``batch``: a float matrix, or one value list per row (the frame's rows)."""
        if self.reference is None:
            return
        matrix = isinstance(batch, np.ndarray)
        columns = batch.T if matrix else list(zip(*batch, strict=True))
        with self.lock:
            self.rows += len(batch)
            for name, values in zip(self.names, columns, strict=True):
                self.features[name].add(values)
            self.prediction.add(predictions)

    def watching(self, fn: Any, predicted: Any) -> Any:
        """``fn`` that also observes its input and ``predicted(output)``."""

        if self.reference is None and self.log is None:
            return fn

        def call(batch: Any) -> Any:
            out = fn(batch)
            try:
                if self.log is not None:
                    self.log.add(batch, predicted(out))
                if self.reference is not None:
                    self._defer(batch, out, predicted)
            except Exception as exc:  # counting must never fail a prediction
                self._failed(exc)
            return out

        return call

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _defer(self, batch: Any, out: Any, predicted: Any) -> None:
        with self.lock:
            self.pending.append((batch, out, predicted))
            self.pending_rows += len(batch)
            if self.pending_rows < COUNT_EVERY_ROWS:
                return
        self.count_pending()

    def count_pending(self) -> None:
        """Count the batches waiting, as one."""
        with self.lock:
            work, self.pending, self.pending_rows = self.pending, [], 0
        if not work:
            return
        try:
            batches = [batch for batch, _, _ in work]
            if isinstance(batches[0], np.ndarray):
                merged: Any = np.concatenate(batches)
            else:
                merged = [row for batch in batches for row in batch]
            outputs = np.concatenate([np.asarray(out) for _, out, _ in work])
            self.observe(merged, work[0][2](outputs))
        except Exception as exc:
            self._failed(exc)

    def snapshot(self) -> dict[str, Any]:
        self.count_pending()
        with self.lock:
            return {
                "pid": os.getpid(),
                "rows": self.rows,
                "errors": self.errors,
                "last_error": self.last_error,
                "reference": self.reference,
                "features": {n: c.snapshot() for n, c in self.features.items()},
                "prediction": self.prediction.snapshot(),
            }


class LiveRoute:
    """ASGI middleware answering ``GET /bentomesh/live`` with the counts; 404 without a
    reference (the model serves as before, and says it has none)."""

    def __init__(self, app: Any, live: LiveProfile) -> None:
        self.app = app
        self.live = live

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in (ROUTE, ROWS_ROUTE):
            await self.app(scope, receive, send)
            return
        body: dict[str, Any]
        query = scope.get("query_string", b"").decode("latin-1")
        if scope["path"] == ROWS_ROUTE:
            if self.live.log is None:
                status, body = 404, {"error": "this model was registered without log_predictions"}
            else:
                status, body = 200, self.live.log.read(published_up_to(query))
        elif self.live.reference is None:
            status, body = 404, {"error": "this model was registered without a reference sample"}
        else:
            status, body = 200, self.live.snapshot()
            if "reference=0" in query:  # known to the reader already
                body["reference"] = None
        payload = json.dumps(body, default=str).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def published_up_to(query: str) -> int:
    """This worker's entry of ``after=PID:SEQ,PID:SEQ`` (what the monitor has published)."""
    params = dict(part.partition("=")[::2] for part in query.split("&"))
    for entry in params.get("after", "").split(","):
        pid, _, seq = entry.partition(":")
        if pid == str(os.getpid()) and seq.isdigit():
            return int(seq)
    return 0


def expose(service: Any, live: LiveProfile) -> None:
    """Put :class:`LiveRoute` in front of a ``@bentoml.service`` (a Service object at runtime)."""
    service.add_asgi_middleware(LiveRoute, live=live)
