"""A sample of the rows a served model predicts, kept for the monitor to publish.

Off unless the model was registered with ``deployment.log_predictions`` above 0. Rows are drawn
per batch (vectorised), a sample is capped in size, and at most ``keep`` samples wait in memory
for the monitor: beyond that the oldest is dropped and counted, so a monitor that stops reading
costs the model nothing but the memory of ``keep`` samples. The monitor reads
``GET /bentomesh/live/rows?after=SEQ``; samples up to SEQ, which it has published, are forgotten
then (at-least-once: ``(worker, seq)`` names a sample). This module imports nothing of BentoMesh.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, NaN as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class PredictionLog:
    def __init__(self, config: dict[str, Any], names: list[str]) -> None:
        self.share = float(config["share"])
        self.max_bytes = int(config.get("max_bytes", 16_384))
        self.names = names
        self.samples: deque[dict[str, Any]] = deque()
        self.keep = int(config.get("keep", 256))
        self.seq = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.rng = np.random.default_rng()

    def add(self, batch: Any, predictions: Any) -> None:
        """Draw each row of ``batch`` with probability ``share``; keep the drawn ones."""
        picked = np.flatnonzero(self.rng.random(len(batch)) < self.share)
        if picked.size == 0:
            return
        rows: list[dict[str, Any]] = []
        predicted: list[Any] = []
        size = 0
        for i in picked.tolist():
            row = {n: _plain(v) for n, v in zip(self.names, batch[i], strict=True)}
            prediction = _plain(predictions[i])
            size += len(json.dumps([row, prediction], default=str))
            if rows and size > self.max_bytes:
                break
            rows.append(row)
            predicted.append(prediction)
        with self.lock:
            self.seq += 1
            if len(self.samples) >= self.keep:
                self.samples.popleft()
                self.dropped += 1
            self.samples.append(
                {
                    "seq": self.seq,
                    "served_at": time.time(),
                    "rows": rows,
                    "predictions": predicted,
                    "sampled_rows": int(picked.size),
                    "truncated": len(rows) < picked.size,
                }
            )

    def read(self, after: int) -> dict[str, Any]:
        """Forget the samples up to ``after`` (published); the rest, oldest first."""
        with self.lock:
            while self.samples and self.samples[0]["seq"] <= after:
                self.samples.popleft()
            return {"pid": os.getpid(), "dropped": self.dropped, "samples": list(self.samples)}
