"""Canary and shadow analysis without servers: comparing answers, judging windows, routing
shares, and a rollout's steps against a real store with recorded traffic."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bentomesh_contracts.events import RolloutProgressed
from bentomesh_contracts.rollout import RolloutThresholds
from services.deployer.analysis import MESH_THRESHOLDS, judge, resolved
from services.deployer.compare import Differences, compare
from services.deployer.gateway import Route
from services.deployer.state import Deployment, DeploymentStore
from services.deployer.steps import RolloutPlan, Steps
from services.deployer.traffic import TrafficLog, Window

LIMITS = resolved(RolloutThresholds())


def answer(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_classification_answers_compare_by_labels_and_probabilities() -> None:
    serving = answer(labels=["a", "b"], probabilities=[{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}])
    other = answer(labels=["a", "a"], probabilities=[{"a": 0.9, "b": 0.1}, {"a": 0.6, "b": 0.4}])
    means = compare(serving, other).summary()
    assert means["agreement"] == 0.5
    assert means["probability_shift"] == 0.2  # row 1: 0, row 2: 0.4 per class


def test_regression_answers_compare_predictions_and_interval_widths() -> None:
    serving = answer(predictions=[10.0, 20.0], lower=[9.0, 19.0], upper=[11.0, 21.0])
    other = answer(predictions=[11.0, 22.0], lower=[8.0, 18.0], upper=[12.0, 22.0])
    means = compare(serving, other).summary()
    assert means["relative_difference"] == 3.0 / 30.0
    assert means["interval_width_difference"] == 1.0  # widths 4 against 2
    assert compare(serving, b"not json").unparsed == 1


def test_too_few_requests_wait_and_errors_fail_before_latency() -> None:
    few = judge(Window(5, 0, 3.0, 5), Window(50, 0, 3.0, 50), LIMITS, window_s=1)
    assert few.outcome == "wait"
    assert "5 of 50" in few.reason
    failing = judge(Window(100, 30, 3.0, 100), Window(100, 0, 3.0, 100), LIMITS, window_s=1)
    assert failing.outcome == "fail"
    assert "5xx share 30.0%" in failing.reason
    assert failing.analysis.error_share == 0.3


def test_p99_fails_past_the_ratio_and_the_slack_only() -> None:
    slow = judge(Window(100, 0, 45.0, 100), Window(100, 0, 15.0, 100), LIMITS, window_s=1)
    assert slow.outcome == "fail"
    assert "3.0x" in slow.reason
    tiny = judge(Window(100, 0, 6.0, 100), Window(100, 0, 2.0, 100), LIMITS, window_s=1)
    assert tiny.outcome == "pass"  # 3x, but 4 ms is noise under the 25 ms slack


def test_shadow_predictions_that_disagree_fail_with_their_agreement() -> None:
    pairs = Differences()
    for i in range(60):
        labels = ["a"] if i % 2 else ["b"]
        pairs.add(compare(answer(labels=["a"]), answer(labels=labels)))
    verdict = judge(
        Window(60, 0, 3.0, 60), Window(60, 0, 3.0, 60), LIMITS, window_s=1, mirrored=pairs
    )
    assert verdict.outcome == "fail"
    assert verdict.analysis.agreement == 0.5
    assert "agree on 50.0%" in verdict.reason


def test_a_registration_overrides_only_what_it_sets() -> None:
    mine = resolved(RolloutThresholds(min_agreement=0.5))
    assert mine.min_agreement == 0.5
    assert mine.max_p99_ratio == MESH_THRESHOLDS.max_p99_ratio


def deployment(did: str, status: str, **extra: object) -> Deployment:
    now = time.time()
    fields: dict[str, object] = {
        "id": did,
        "model": "churn",
        "version": did,
        "runtime": "process",
        "ref": "churn:x",
        "status": status,
        "endpoint": f"http://127.0.0.1:1/{did}",
        "handle": None,
        "chain_id": "c",
        "cause_id": did,
        "replaced_id": None,
        "detail": None,
        "cpus": 1.0,
        "memory_mb": 512,
        "created_at": now,
        "updated_at": now,
    }
    return Deployment(**(fields | extra))  # type: ignore[arg-type]


def test_routes_split_a_canary_and_copy_to_a_shadow_by_share() -> None:
    active = deployment("1", "active")
    canary = Route(active, deployment("2", "candidate", strategy="canary", share=0.1))
    assert canary.pick(0.05)[0].id == "2"
    assert canary.pick(0.5)[0].id == "1"
    shadow = Route(active, deployment("2", "candidate", strategy="shadow", share=0.5))
    assert shadow.pick(0.2) == (active, shadow.candidate)
    assert shadow.pick(0.7) == (active, None)


def test_a_canary_that_fails_mid_step_is_aborted_with_its_figures(tmp_path: Path) -> None:
    store = DeploymentStore(tmp_path / "d.db")
    serving, candidate = deployment("1", "active"), deployment("2", "candidate", strategy="canary")
    store.insert(serving)
    store.insert(candidate)
    traffic, told = TrafficLog(), list[RolloutProgressed]()
    plan = RolloutPlan(
        "canary", (0.1, 1.0), bake_s=60, interval_s=0, max_wait_s=0, thresholds=LIMITS
    )

    def load(_: float) -> None:  # each interval: the gateway saw 10 answers of each
        for i in range(30):
            traffic.answered("1", 200, 3.0)
            traffic.answered("2", 500 if i < 9 else 200, 3.0)

    outcome = Steps(store, traffic, plan, told.append, sleep=load).run(candidate, serving)
    assert outcome.result == "aborted"
    assert outcome.step == 0
    assert outcome.analysis is not None
    assert outcome.analysis.error_share == 0.3
    assert [e.decision for e in told] == ["started"]
    assert store.get("2").share == 0.1  # type: ignore[union-attr]  # the deployer sets it to 0


def test_an_operator_promote_ends_the_steps_at_once(tmp_path: Path) -> None:
    store = DeploymentStore(tmp_path / "d.db")
    serving, candidate = deployment("1", "active"), deployment("2", "candidate", strategy="canary")
    store.insert(serving)
    store.insert(candidate)
    plan = RolloutPlan(
        "canary", (0.1, 1.0), bake_s=60, interval_s=0, max_wait_s=0, thresholds=LIMITS
    )
    store.update("2", command="promote")
    outcome = Steps(store, TrafficLog(), plan, lambda _: None, sleep=lambda _: None).run(
        candidate, serving
    )
    assert (outcome.result, outcome.reason) == ("promoted", "promoted by an operator")


def test_a_plan_ends_a_canary_at_all_traffic_and_refuses_one_too_long() -> None:
    import pytest

    from bentomesh_contracts.events import DeploymentPrefs
    from bentomesh_contracts.rollout import RolloutPrefs
    from services.deployer.progressive import plan_for
    from services.deployer.rollout import RolloutSettings
    from services.errors import UnsupportedPreference

    settings = RolloutSettings(bake_s=10, max_wait_s=60, analysis_interval_s=1, max_s=600)
    assert plan_for(DeploymentPrefs(), settings) is None  # the mesh default: replace
    plan = plan_for(
        DeploymentPrefs(strategy="canary", rollout=RolloutPrefs(steps=[0.25, 0.5])), settings
    )
    assert plan is not None
    assert plan.steps == (0.25, 0.5, 1.0)
    assert plan.bake_s == 10
    with pytest.raises(UnsupportedPreference, match="BENTOMESH_ROLLOUT_MAX_S"):
        plan_for(DeploymentPrefs(strategy="shadow", rollout=RolloutPrefs(bake_s=3600)), settings)
