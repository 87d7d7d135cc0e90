"""The status page's last hour per deployment: bounded, thinned, forgetting unwatched ones."""

from __future__ import annotations

from services.monitor.checker import CheckResult, Target
from services.monitor.history import History


def result(deployment_id: str, at: float, rate: float) -> CheckResult:
    target = Target(deployment_id, "http://127.0.0.1:9", "m", "1", "chain", "cause")
    stats = {"request_rate": rate, "p99_latency_ms": 5.0, "error_rate_5xx": 0.0, "requests": 1.0}
    return CheckResult(target, at, True, True, 1.0, 1.0, stats)


def test_keeps_one_hour_and_answers_at_most_the_points_asked() -> None:
    history = History(span_s=3600, interval_s=10)
    for i in range(1000):  # 10,000 s of checks every 10 s
        history.record([result("d1", i * 10.0, float(i))])
    assert len(history.points["d1"]) == 361
    series = history.series("d1", now=9990.0, points=60)
    assert len(series["request_rate"]) == 60
    assert series["request_rate"][-1] == 999.0  # the newest point is kept
    assert max(series["t"]) <= 3600


def test_a_deployment_no_longer_checked_is_forgotten() -> None:
    history = History()
    history.record([result("d1", 1.0, 1.0), result("d2", 1.0, 1.0)])
    history.record([result("d2", 2.0, 1.0)])
    assert set(history.points) == {"d2"}
    assert history.series("d1", now=3.0)["request_rate"] == []
