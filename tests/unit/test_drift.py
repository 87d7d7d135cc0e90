"""Drift scores over windows: quiet on reference traffic, loud on a shifted feature, and the
shifted feature alone named (the template's counters feeding the monitor's tracker)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bentomesh_contracts.features import Feature
from services.monitor.drift import DriftTracker, psi
from services.packager.profile import reference_profile
from services.packager.templates.live import LiveProfile

NAMES = ["tenure", "charges", "plan"]
FEATURES = (Feature(name="tenure"), Feature(name="charges"), Feature(name="plan", dtype="string"))


def draw(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[list[Any]]:
    tenure = rng.normal(24 + shift * 10, 10, n)  # shift in standard deviations
    charges = rng.uniform(10, 120, n)
    plan = rng.choice(["basic", "pro", "max"], n, p=[0.5, 0.3, 0.2])
    return [[float(t), float(c), str(p)] for t, c, p in zip(tenure, charges, plan, strict=True)]


def reference(rng: np.random.Generator) -> dict[str, Any]:
    rows = draw(rng, 10_000)
    columns = {name: [r[i] for r in rows] for i, name in enumerate(NAMES)}
    predictions = ["churns" if r[0] < 12 else "stays" for r in rows]
    return reference_profile(columns, FEATURES, predictions, "classification")


def serve(live: LiveProfile, rows: list[list[Any]]) -> None:
    for start in range(0, len(rows), 4):  # small batches, as single requests merge
        batch = rows[start : start + 4]
        live.observe(batch, ["churns" if r[0] < 12 else "stays" for r in batch])


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift() -> None:
    assert psi([0.5, 0.5], [50, 50]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [60, 40]) < psi([0.5, 0.5], [90, 10])


def test_reference_traffic_raises_nothing_over_many_windows() -> None:
    rng = np.random.default_rng(0)
    live, tracker = LiveProfile(reference(rng), NAMES), DriftTracker(min_rows=300)
    worst = []
    for _ in range(100):
        serve(live, draw(rng, 300))
        scores = tracker.update("d1", live.snapshot())
        assert scores is not None
        worst.append(scores.metrics())
    assert max(m["feature_drift"] for m in worst) < 0.2  # the default threshold
    assert max(m["prediction_drift"] or 0 for m in worst) < 0.2
    assert max(m["data_quality"] for m in worst) < 0.05


def test_a_feature_shifted_by_two_deviations_is_named_and_only_it() -> None:
    rng = np.random.default_rng(1)
    live, tracker = LiveProfile(reference(rng), NAMES), DriftTracker(min_rows=300)
    serve(live, draw(rng, 300, shift=2.0))
    scores = tracker.update("d1", live.snapshot())
    assert scores is not None
    assert scores.features["tenure"] > 1.0
    assert scores.features["charges"] < 0.2
    assert scores.features["plan"] < 0.2
    notes = scores.notes({"feature_drift": 0.2})
    assert notes["feature_drift"].startswith("tenure (PSI ")
    assert "charges" not in notes["feature_drift"]


def test_an_unseen_category_is_a_data_quality_problem() -> None:
    rng = np.random.default_rng(2)
    live, tracker = LiveProfile(reference(rng), NAMES), DriftTracker(min_rows=300)
    rows = draw(rng, 300)
    for row in rows[:60]:
        row[2] = "enterprise"
    serve(live, rows)
    scores = tracker.update("d1", live.snapshot())
    assert scores is not None
    assert scores.quality["plan"] == pytest.approx(0.2)
    assert scores.metrics()["data_quality"] == pytest.approx(0.2)


def test_too_few_rows_is_no_judgement_and_windows_do_not_overlap() -> None:
    rng = np.random.default_rng(3)
    live, tracker = LiveProfile(reference(rng), NAMES), DriftTracker(min_rows=300)
    serve(live, draw(rng, 200))
    assert tracker.update("d1", live.snapshot()) is None  # 200 rows: keep filling
    serve(live, draw(rng, 200))
    scores = tracker.update("d1", live.snapshot())
    assert scores is not None
    assert scores.rows == 400
    assert tracker.update("d1", live.snapshot()) is None  # nothing new since


def test_a_restarted_worker_counts_from_zero() -> None:
    rng = np.random.default_rng(4)
    ref = reference(rng)
    tracker = DriftTracker(min_rows=300)
    first = LiveProfile(ref, NAMES)
    serve(first, draw(rng, 400))
    assert tracker.update("d1", first.snapshot()) is not None
    again = LiveProfile(ref, NAMES)  # same pid, counts reset
    serve(again, draw(rng, 300))
    scores = tracker.update("d1", again.snapshot())
    assert scores is not None
    assert scores.rows == 300
    assert scores.metrics()["feature_drift"] < 0.2


def test_a_model_without_reference_is_not_tracked() -> None:
    tracker = DriftTracker()
    assert tracker.update("d1", {"pid": 1, "rows": 0, "reference": None}) is None
    assert not tracker.has_reference("d1")
