"""The sample of served rows a model keeps for the monitor (the template side)."""

from __future__ import annotations

import json
import os

import numpy as np

from services.packager.templates.live import LiveProfile, published_up_to
from services.packager.templates.sampled import PredictionLog


def test_every_row_is_kept_at_share_one_with_its_prediction_by_column_name() -> None:
    log = PredictionLog({"share": 1.0}, ["tenure months", "plan"])
    log.add([[3.0, "basic"], [float("nan"), "pro"]], np.array(["stay", "churn"]))
    [sample] = log.read(0)["samples"]
    assert sample["rows"] == [
        {"tenure months": 3.0, "plan": "basic"},
        {"tenure months": None, "plan": "pro"},  # NaN is JSON null
    ]
    assert sample["predictions"] == ["stay", "churn"]
    assert (sample["seq"], sample["sampled_rows"], sample["truncated"]) == (1, 2, False)
    json.dumps(sample, allow_nan=False)  # plain JSON: numpy scalars became Python ones


def test_the_share_samples_rows_not_batches() -> None:
    log = PredictionLog({"share": 0.2}, ["x"])
    for _ in range(100):
        log.add(np.ones((50, 1)), np.zeros(50))
    kept = sum(s["sampled_rows"] for s in log.read(0)["samples"])
    assert 850 <= kept <= 1150  # 5,000 rows at 20%: 1,000 ± 4.7 standard deviations


def test_a_sample_over_its_size_cap_is_truncated_and_says_so() -> None:
    log = PredictionLog({"share": 1.0, "max_bytes": 2_000}, ["a", "b"])
    log.add(np.arange(2_000.0).reshape(1_000, 2), np.zeros(1_000))
    [sample] = log.read(0)["samples"]
    assert sample["truncated"] is True
    assert sample["sampled_rows"] == 1_000
    assert 0 < len(sample["rows"]) == len(sample["predictions"]) < 1_000
    assert len(json.dumps([sample["rows"], sample["predictions"]])) <= 2_200


def test_samples_wait_up_to_keep_then_the_oldest_are_dropped_and_counted() -> None:
    log = PredictionLog({"share": 1.0, "keep": 3}, ["x"])
    for value in range(5):
        log.add([[float(value)]], [value])
    read = log.read(0)
    assert [s["seq"] for s in read["samples"]] == [3, 4, 5]
    assert read["dropped"] == 2
    assert read["pid"] == os.getpid()
    assert [s["seq"] for s in log.read(4)["samples"]] == [5]  # published up to 4: forgotten
    assert log.read(0)["samples"][0]["seq"] == 5


def test_each_worker_reads_its_own_entry_of_what_was_published() -> None:
    me = os.getpid()
    assert published_up_to(f"after=1:9,{me}:7") == 7
    assert published_up_to("after=1:9") == 0
    assert published_up_to("") == 0
    assert published_up_to(f"after={me}:x") == 0


def test_a_model_that_logs_nothing_pays_nothing() -> None:
    def fn(batch: object) -> object:
        return batch

    live = LiveProfile(None, ["x"])
    assert live.log is None
    assert live.watching(fn, lambda out: out) is fn  # not even a wrapper
