"""The bridge's Prometheus counters (in the service's own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.offers = Counter(
            "bentomesh_bridge_offers",
            "Model versions offered by a webhook or a poll, by outcome (published, unchanged, "
            "ignored, refused).",
            ["outcome"],
            registry=registry,
        )
        self.webhooks = Counter(
            "bentomesh_bridge_webhooks",
            "MLflow webhook deliveries, by answer (accepted, refused, ignored, retry).",
            ["answer"],
            registry=registry,
        )
        self.written = Counter(
            "bentomesh_bridge_outcomes_written",
            "Outcomes written back to MLflow as version tags, by status.",
            ["status"],
            registry=registry,
        )
        self.mlflow_errors = Counter(
            "bentomesh_bridge_mlflow_errors",
            "Calls to MLflow that failed (unreachable or refused).",
            registry=registry,
        )
