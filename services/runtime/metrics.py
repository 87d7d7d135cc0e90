"""The counters every stage keeps, in its service's own Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StageMetrics:
    """Per-service counters in the service's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "bentomesh_stage_events",
            "Events consumed by outcome (produced, failed, dead_lettered).",
            ["stage", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "bentomesh_stage_handling_seconds",
            "Wall time from receiving an event to committing it.",
            ["stage"],
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600),
        )
        self.in_flight = Gauge(
            "bentomesh_stage_in_flight",
            "Events being handled right now (at most the stage's concurrency).",
            ["stage"],
            registry=registry,
        )
