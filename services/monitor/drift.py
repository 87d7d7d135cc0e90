"""Data drift of a served model: its live counts against its reference profile, per window.

Pure logic. A served model reports cumulative counts per worker process over its reference
bins (``GET /bentomesh/live``); :class:`DriftTracker` turns successive reads into windows of
at least ``min_rows`` rows and scores each closed window: PSI per feature and of the
predictions, and the share of bad values per feature (missing beyond the reference's share,
numbers beyond the reference's range, categories never seen). A window with too few rows is
no judgement: it keeps filling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EPSILON = 1e-4  # share given to an empty bin, so that PSI stays finite


def psi(expected: list[float], observed: list[float]) -> float:
    """Population stability index of ``observed`` counts against ``expected`` shares."""
    total = sum(observed)
    if total <= 0:
        return 0.0
    score = 0.0
    for e, o in zip(expected, observed, strict=True):
        a, b = max(o / total, EPSILON), max(e, EPSILON)
        score += (a - b) * math.log(a / b)
    return score


@dataclass
class Scores:
    """One closed window of one deployment."""

    rows: int
    features: dict[str, float]  # feature -> PSI
    prediction: float | None
    quality: dict[str, float]  # feature -> share of bad values (the worst kind)

    def metrics(self) -> dict[str, float | None]:
        return {
            "feature_drift": max(self.features.values(), default=0.0),
            "prediction_drift": self.prediction,
            "data_quality": max(self.quality.values(), default=0.0),
        }

    def notes(self, threshold: Mapping[str, float]) -> dict[str, str]:
        """For each metric, the features behind it (worst first), as an alert names them."""
        return {
            "feature_drift": _worst(self.features, threshold.get("feature_drift", 0.0), "PSI"),
            "data_quality": _worst(self.quality, threshold.get("data_quality", 0.0), "bad"),
        }


def _worst(scores: dict[str, float], threshold: float, unit: str) -> str:
    above = sorted(((v, k) for k, v in scores.items() if v > threshold), reverse=True)
    return ", ".join(f"{name} ({unit} {value:.2f})" for value, name in above[:5])


def _delta(now: Any, before: Any) -> Any:
    if isinstance(now, dict):
        return {k: _delta(v, (before or {}).get(k, 0)) for k, v in now.items()}
    if isinstance(now, list):
        return [a - b for a, b in zip(now, before or [0] * len(now), strict=True)]
    return now - (before or 0)


def _add(total: Any, part: Any) -> Any:
    if total is None:
        return part
    if isinstance(part, dict):
        return {k: _add(total.get(k), v) for k, v in part.items()} | {
            k: v for k, v in total.items() if k not in part
        }
    if isinstance(part, list):
        return [a + b for a, b in zip(total, part, strict=True)]
    return total + part


@dataclass
class _Deployment:
    reference: dict[str, Any]
    last: dict[int, dict[str, Any]] = field(default_factory=dict)  # pid -> cumulative counts
    window: dict[str, Any] | None = None  # counts since the last closed window
    rows: int = 0


class DriftTracker:
    def __init__(self, min_rows: int = 300) -> None:
        self.min_rows = min_rows
        self.deployments: dict[str, _Deployment] = {}
        self.latest: dict[str, Scores] = {}

    def has_reference(self, deployment_id: str) -> bool:
        return deployment_id in self.deployments

    def update(self, deployment_id: str, snapshot: dict[str, Any]) -> Scores | None:
        """Take one read of a worker's counts; the scores when it closes a window."""
        state = self.deployments.get(deployment_id)
        if state is None:
            if not snapshot.get("reference"):
                return None
            state = self.deployments[deployment_id] = _Deployment(snapshot["reference"])
        counts = {"features": snapshot["features"], "prediction": snapshot["prediction"]}
        pid = int(snapshot["pid"])
        before = state.last.get(pid)
        if before is not None and before["rows"] > snapshot["rows"]:
            before = None  # a restarted worker under the same pid counts from zero
        state.last[pid] = {"rows": snapshot["rows"], **counts}
        step = _delta(counts, before)
        state.window = _add(state.window, step)
        state.rows += snapshot["rows"] - (before["rows"] if before else 0)
        if state.rows < self.min_rows or state.window is None:
            return None
        scores = score(state.reference, state.window, state.rows)
        state.window, state.rows = None, 0
        self.latest[deployment_id] = scores
        return scores

    def forget(self, deployment_id: str) -> None:
        self.deployments.pop(deployment_id, None)
        self.latest.pop(deployment_id, None)


def score(reference: dict[str, Any], window: dict[str, Any], rows: int) -> Scores:
    features, quality = {}, {}
    for name, profile in reference["features"].items():
        seen = window["features"].get(name)
        if seen is None:
            continue
        features[name], quality[name] = _feature(profile, seen, rows)
    prediction = None
    if reference.get("prediction") and window.get("prediction"):
        prediction, _ = _feature(reference["prediction"], window["prediction"], rows)
    return Scores(rows, features, prediction, quality)


def _feature(profile: dict[str, Any], seen: dict[str, Any], rows: int) -> tuple[float, float]:
    """PSI over the reference's bins (categories: the known ones and the rest), and the share
    of bad values: missing beyond the reference's missing share, outside its range, unseen."""
    missing = seen.get("missing", 0) / rows if rows else 0.0
    extra_missing = max(0.0, missing - profile.get("missing", 0.0))
    if profile["kind"] == "numeric":
        drift = psi(profile["shares"], seen["counts"]) if profile["shares"] else 0.0
        bad = seen.get("outside", 0) / rows if rows else 0.0
    else:
        categories = list(profile["shares"])
        expected = [profile["shares"][c] for c in categories] + [profile.get("other", 0.0)]
        observed = [seen["counts"].get(c, 0) for c in categories] + [seen.get("unseen", 0)]
        drift = psi(expected, observed)
        bad = seen.get("unseen", 0) / rows if rows and profile.get("other", 0.0) == 0 else 0.0
    return drift, max(extra_missing, bad)
