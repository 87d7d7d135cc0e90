"""Alert rules with hysteresis and deduplication; pure logic, no HTTP and no Kafka.

A rule fires after ``fire_after`` consecutive breaching checks and resolves after
``resolve_after`` consecutive healthy ones, so one slow or failed check never pages anyone and an
endpoint that flaps does not produce an alert storm. Only transitions are reported: a condition
that persists yields one ``firing``, then one ``resolved``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bentomesh_contracts.events import AlertState, Severity

Comparison = Literal["above", "below"]


METRICS: dict[str, str] = {
    "live_failed": "1 when /livez failed on this check, else 0",
    "ready_failed": "1 when /readyz failed on this check while /livez answered, else 0",
    "p50_latency_ms": "median request latency over the window (from /metrics)",
    "p95_latency_ms": "95th percentile request latency over the window",
    "p99_latency_ms": "99th percentile request latency over the window",
    "request_rate": "requests per second over the window",
    "requests": "requests answered over the window (how much the percentiles rest on)",
    "error_rate_5xx": "share of requests answered 5xx over the window (none: no judgement)",
    "error_rate_4xx": "share of requests answered 4xx over the window",
    "feature_drift": "largest PSI of a feature against the reference profile, per closed drift "
    "window (none: no reference, or too few rows yet)",
    "prediction_drift": "PSI of the predictions against the reference's, per closed drift window",
    "data_quality": "largest share of bad values in a feature per closed drift window: missing "
    "beyond the reference's share, outside its range, or a category never seen",
}
"""What a rule's ``metric`` can name: the values each check measures per deployment."""


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    severity: Severity
    threshold: float
    comparison: Comparison = "above"
    fire_after: int = 3
    resolve_after: int = 3
    description: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(
                f"rule {self.name!r}: unknown metric {self.metric!r}; one of {', '.join(METRICS)}"
            )

    def breached(self, value: float | None) -> bool | None:
        """Whether ``value`` breaches the rule; None when there is nothing to judge."""
        if value is None:
            return None
        return value > self.threshold if self.comparison == "above" else value < self.threshold


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "endpoint_down",
        "live_failed",
        "critical",
        0.5,
        fire_after=3,
        resolve_after=2,
        description="/livez failed on consecutive checks",
    ),
    Rule(
        "not_ready",
        "ready_failed",
        "warning",
        0.5,
        fire_after=2,
        resolve_after=2,
        description="/readyz failed on consecutive checks",
    ),
    Rule(
        "p99_latency",
        "p99_latency_ms",
        "warning",
        500.0,
        fire_after=2,
        resolve_after=3,
        description="p99 request latency over the window",
    ),
    Rule(
        "error_rate_5xx",
        "error_rate_5xx",
        "critical",
        0.05,
        fire_after=2,
        resolve_after=3,
        description="share of requests answered 5xx over the window",
    ),
    Rule(
        "data_drift",
        "feature_drift",
        "warning",
        0.2,
        fire_after=2,
        resolve_after=2,
        description="features drifted from the reference",
    ),
    Rule(
        "prediction_drift",
        "prediction_drift",
        "warning",
        0.2,
        fire_after=2,
        resolve_after=2,
        description="predictions drifted from the reference",
    ),
    Rule(
        "data_quality",
        "data_quality",
        "warning",
        0.05,
        fire_after=2,
        resolve_after=2,
        description="bad values in features (missing, out of range, unseen categories)",
    ),
)


@dataclass
class RuleState:
    breaches: int = 0
    oks: int = 0
    firing: bool = False


@dataclass(frozen=True)
class Transition:
    rule: Rule
    state: AlertState
    observed: float | None
    note: str | None = None  # what is behind the value (the drifted features)


@dataclass
class AlertBook:
    """Per-deployment rule states; feed it each check's metrics, get back the transitions."""

    rules: tuple[Rule, ...] = DEFAULT_RULES
    states: dict[tuple[str, str], RuleState] = field(default_factory=dict)

    def observe(self, deployment_id: str, metrics: Mapping[str, float | None]) -> list[Transition]:
        transitions = []
        for rule in self.rules:
            breached = rule.breached(metrics.get(rule.metric))
            if breached is None:
                continue
            state = self.states.setdefault((deployment_id, rule.name), RuleState())
            if breached:
                state.breaches, state.oks = state.breaches + 1, 0
                if not state.firing and state.breaches >= rule.fire_after:
                    state.firing = True
                    transitions.append(Transition(rule, "firing", metrics.get(rule.metric)))
            else:
                state.oks, state.breaches = state.oks + 1, 0
                if state.firing and state.oks >= rule.resolve_after:
                    state.firing = False
                    transitions.append(Transition(rule, "resolved", metrics.get(rule.metric)))
        return transitions

    def firing(self, deployment_id: str) -> list[str]:
        """Rules firing for one deployment: a lookup per rule, not a scan of every state."""
        states = (self.states.get((deployment_id, rule.name)) for rule in self.rules)
        return [
            s_name
            for s_name, s in zip((r.name for r in self.rules), states, strict=True)
            if s is not None and s.firing
        ]

    def restore(self, deployment_id: str, rule_name: str, firing: bool) -> None:
        """Take up a state announced before a restart: an alert that was firing stays firing
        (no second 'firing'), and resolves when the checks say so."""
        rule = next((r for r in self.rules if r.name == rule_name), None)
        if rule is None:
            return
        state = self.states.setdefault((deployment_id, rule_name), RuleState())
        state.firing, state.oks = firing, 0
        state.breaches = rule.fire_after if firing else 0

    def forget(self, deployment_ids: Iterable[str]) -> None:
        """Drop the state of deployments no longer watched (replaced or removed)."""
        gone = set(deployment_ids)
        for key in [k for k in self.states if k[0] in gone]:
            del self.states[key]
