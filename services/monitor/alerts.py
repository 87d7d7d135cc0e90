"""Rule transitions as ``HealthAlert`` events."""

from __future__ import annotations

from bentomesh_contracts.events import HealthAlert
from services.monitor.checker import Target
from services.monitor.rules import Transition


def alert_for(target: Target, transition: Transition) -> HealthAlert:
    rule = transition.rule
    observed = transition.observed
    what = rule.description or rule.name
    if transition.state == "firing":
        message = f"{target.model_name}:{target.model_version}: {what}"
        if transition.note:
            message += f": {transition.note}"
        if observed is not None and rule.metric not in ("live_failed", "ready_failed"):
            message += f" ({observed:.3g} vs threshold {rule.threshold:g})"
    else:
        message = f"{target.model_name}:{target.model_version}: {rule.name} back to normal"
    return HealthAlert(
        deployment_id=target.deployment_id,
        model_name=target.model_name,
        model_version=target.model_version,
        endpoint_url=target.url,
        rule=rule.name,
        severity=rule.severity,
        state=transition.state,
        observed=observed,
        threshold=rule.threshold,
        message=message,
    )
