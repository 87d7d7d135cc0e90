"""Alert rules: hysteresis, deduplication, no storms from flapping."""

from __future__ import annotations

from services.monitor.rules import AlertBook, Rule

DOWN = {"live_failed": 1.0}
UP = {"live_failed": 0.0}


def book() -> AlertBook:
    return AlertBook(
        rules=(
            Rule("endpoint_down", "live_failed", "critical", 0.5, fire_after=3, resolve_after=2),
        )
    )


def test_fires_once_after_consecutive_breaches_and_not_again_while_it_persists() -> None:
    alerts = book()
    seen = [t for _ in range(10) for t in alerts.observe("d1", DOWN)]
    assert [(t.rule.name, t.state) for t in seen] == [("endpoint_down", "firing")]
    assert alerts.firing("d1") == ["endpoint_down"]


def test_resolves_once_after_consecutive_healthy_checks() -> None:
    alerts = book()
    for _ in range(3):
        alerts.observe("d1", DOWN)
    assert alerts.observe("d1", UP) == []
    [resolved] = alerts.observe("d1", UP)
    assert resolved.state == "resolved"
    assert alerts.firing("d1") == []


def test_a_single_failed_check_does_not_fire() -> None:
    alerts = book()
    assert alerts.observe("d1", DOWN) + alerts.observe("d1", DOWN) == []
    assert alerts.observe("d1", UP) == []
    assert alerts.observe("d1", DOWN) == []


def test_flapping_endpoint_does_not_storm() -> None:
    alerts = book()
    transitions = [t for i in range(100) for t in alerts.observe("d1", DOWN if i % 2 else UP)]
    assert transitions == []


def test_deployments_are_tracked_apart_and_forgotten() -> None:
    alerts = book()
    for _ in range(3):
        alerts.observe("d1", DOWN)
        alerts.observe("d2", UP)
    assert alerts.firing("d1") == ["endpoint_down"]
    assert alerts.firing("d2") == []
    alerts.forget(["d1"])
    assert alerts.firing("d1") == []


def test_missing_metric_is_not_judged() -> None:
    alerts = AlertBook(rules=(Rule("p99", "p99_latency_ms", "warning", 100, fire_after=1),))
    assert alerts.observe("d1", {"p99_latency_ms": None}) == []
    [fired] = alerts.observe("d1", {"p99_latency_ms": 250.0})
    assert fired.observed == 250.0
    assert fired.rule.severity == "warning"


def test_below_threshold_rules_fire_on_low_values() -> None:
    alerts = AlertBook(
        rules=(
            Rule(
                "no_traffic",
                "request_rate",
                "info",
                0.01,
                comparison="below",
                fire_after=2,
                resolve_after=1,
            ),
        )
    )
    assert alerts.observe("d1", {"request_rate": 0.0}) == []
    assert [t.state for t in alerts.observe("d1", {"request_rate": 0.0})] == ["firing"]
    assert [t.state for t in alerts.observe("d1", {"request_rate": 5.0})] == ["resolved"]


def test_thresholds_come_from_env_over_the_defaults(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from services.monitor.settings import MonitorSettings

    monkeypatch.setenv("BENTOMESH_MONITOR_P99_MS", "250")
    monkeypatch.setenv("BENTOMESH_MONITOR_DOWN_AFTER", "5")
    rules = {r.name: r for r in MonitorSettings().rules()}
    assert rules["p99_latency"].threshold == 250.0
    assert rules["endpoint_down"].fire_after == 5
    assert rules["error_rate_5xx"].threshold == 0.05


def test_a_rule_naming_an_unknown_metric_is_refused_with_the_known_ones() -> None:
    import pytest

    from services.monitor.rules import Rule

    with pytest.raises(ValueError, match="unknown metric 'p99'; one of live_failed"):
        Rule("slow", "p99", "warning", 100.0)
