"""Counting what a served model receives over its reference bins (the template side)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from bentomesh_contracts.features import Feature
from services.packager.profile import reference_profile
from services.packager.templates.live import ROUTE, LiveProfile, LiveRoute

FEATURES = (Feature(name="charges"), Feature(name="plan", dtype="string"))


def reference() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    columns = {
        "charges": rng.uniform(0, 100, 1000).tolist(),
        "plan": rng.choice(["basic", "pro"], 1000).tolist(),
    }
    return reference_profile(columns, FEATURES, rng.choice(["a", "b"], 1000), "classification")


def test_rows_are_counted_in_the_reference_bins_and_surprises_apart() -> None:
    live = LiveProfile(reference(), ["charges", "plan"])
    live.observe(
        [[5.0, "basic"], [None, "pro"], [250.0, "gold"], [50.0, None]], ["a", "a", "b", "a"]
    )
    snap = live.snapshot()
    charges, plan = snap["features"]["charges"], snap["features"]["plan"]
    assert snap["rows"] == 4
    assert sum(charges["counts"]) == 3
    assert (charges["missing"], charges["outside"]) == (1, 1)  # 250 is beyond the range seen
    assert plan["counts"] == {"basic": 1, "pro": 1}
    assert (plan["unseen"], plan["missing"]) == (1, 1)
    assert snap["prediction"]["counts"] == {"a": 3, "b": 1}


def test_a_float_matrix_batch_is_counted_by_column() -> None:
    ref = reference()
    ref["features"]["plan"] = ref["features"]["charges"]  # two numeric columns
    live = LiveProfile(ref, ["charges", "plan"])
    live.observe(np.array([[1.0, 99.0], [2.0, 98.0]]), ["a", "b"])
    assert sum(live.snapshot()["features"]["plan"]["counts"]) == 2


def test_counting_never_fails_a_prediction() -> None:
    live = LiveProfile(reference(), ["charges", "plan"])
    call = live.watching(lambda batch: "answer", lambda out: 1 / 0)
    assert call([[1.0, "basic"]]) == "answer"
    assert live.snapshot()["errors"] == 1


def test_small_batches_are_counted_together_and_a_read_counts_what_waits() -> None:
    """The request path only appends; counting happens per 512 rows, or when read."""
    rows = [[float(i % 100), "basic" if i % 2 else "pro"] for i in range(700)]
    at_once = LiveProfile(reference(), ["charges", "plan"])
    at_once.observe(rows, ["a"] * 700)
    live = LiveProfile(reference(), ["charges", "plan"])
    call = live.watching(lambda batch: np.zeros(len(batch)), lambda out: ["a"] * len(out))
    for start in range(0, 700, 7):
        call(rows[start : start + 7])
    assert live.rows == 518  # the first 74 batches of 7 (over 512 rows) counted as one
    assert live.pending_rows == 182  # the other 26 wait
    assert live.snapshot()["features"] == at_once.snapshot()["features"]
    assert live.rows == 700
    assert live.snapshot()["errors"] == 0


async def test_the_route_answers_the_counts_or_that_there_is_no_reference() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the model's routes are not asked")

    for ref, status in ((reference(), 200), (None, 404)):
        sent: list[dict[str, Any]] = []
        route = LiveRoute(app, LiveProfile(ref, ["charges", "plan"]))
        await route({"type": "http", "path": ROUTE}, None, _collect(sent))
        assert sent[0]["status"] == status
        body = json.loads(sent[1]["body"])
        assert ("features" in body) == (status == 200)


def _collect(sent: list[dict[str, Any]]) -> Any:
    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return send
