"""The monitor's own Prometheus metrics (in the service's isolated registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.monitor.checker import CheckResult
from services.monitor.rules import AlertBook


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.checks = Counter(
            "bentomesh_monitor_checks", "Health checks made.", ["model"], registry=registry
        )
        self.failures = Counter(
            "bentomesh_monitor_check_failures",
            "Checks that found the endpoint not live or not ready.",
            ["model"],
            registry=registry,
        )
        self.watched = Gauge(
            "bentomesh_monitor_watched_deployments", "Deployments being watched.", registry=registry
        )
        self.alert_state = Gauge(
            "bentomesh_monitor_alert_firing",
            "1 while a rule fires for a deployment.",
            ["deployment", "model", "rule", "severity"],
            registry=registry,
        )
        self.ready_ms = Gauge(
            "bentomesh_monitor_ready_ms",
            "Last /readyz response time.",
            ["deployment", "model"],
            registry=registry,
        )

        self.feature_drift = Gauge(
            "bentomesh_monitor_feature_drift",
            "PSI of a feature (or of the predictions: feature '(prediction)') against the "
            "reference, in the latest closed drift window.",
            ["deployment", "model", "feature"],
            registry=registry,
        )

    def record_drift(self, deployment: str, model: str, scores: Any) -> None:
        for feature, value in scores.features.items():
            self.feature_drift.labels(deployment, model, feature).set(value)
        if scores.prediction is not None:
            self.feature_drift.labels(deployment, model, "(prediction)").set(scores.prediction)

    def record(self, results: list[CheckResult], book: AlertBook, watched: int) -> None:
        self.watched.set(watched)
        for result in results:
            model = result.target.model_name
            self.checks.labels(model).inc()
            if not (result.live and result.ready):
                self.failures.labels(model).inc()
            if result.ready_ms is not None:
                self.ready_ms.labels(result.target.deployment_id, model).set(result.ready_ms)
            firing_now = set(book.firing(result.target.deployment_id))
            for rule in book.rules:
                firing = rule.name in firing_now
                self.alert_state.labels(
                    result.target.deployment_id, model, rule.name, rule.severity
                ).set(1 if firing else 0)
