"""Canary and shadow rollouts of a ready candidate: the plan a registration asks for, and what
promotion and abort change. Part of :class:`~services.deployer.rollout.Deployer`.

The candidate runs beside the serving version with status ``candidate``; the gateway sends it
its share. Promotion is the store's atomic ``activate`` (then the old version drains and
stops); an abort sets its share to 0 first, so no user request reaches it after the decision.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bentomesh_contracts.events import EventData, HealthAlert
from bentomesh_contracts.parts import DeploymentPrefs
from bentomesh_contracts.rollout import Decision, RolloutThresholds
from services.deployer.analysis import resolved
from services.deployer.state import Deployment
from services.deployer.steps import Outcome, RolloutPlan, Steps
from services.deployer.supervision import Supervision
from services.deployer.traffic import TrafficLog
from services.errors import RolloutAborted, RolloutInProgress, UnsupportedPreference

if TYPE_CHECKING:
    from services.deployer.rollout import RolloutSettings

logger = logging.getLogger("bentomesh.deployer")

Announce = Callable[[EventData], None]


def plan_for(prefs: DeploymentPrefs, settings: RolloutSettings) -> RolloutPlan | None:
    """The registration's rollout over the mesh's defaults; ``None`` for a plain replace."""
    strategy = prefs.strategy or settings.strategy
    if strategy == "replace":
        return None
    asked = prefs.rollout
    default = settings.canary_steps if strategy == "canary" else (settings.shadow_share,)
    steps = tuple(asked.steps) if asked and asked.steps else tuple(default)
    if strategy == "canary" and steps[-1] != 1.0:
        steps = (*steps, 1.0)  # a canary ends with all the traffic, or it is not promoted
    plan = RolloutPlan(
        strategy=strategy,
        steps=steps,
        bake_s=(asked.bake_s if asked and asked.bake_s else settings.bake_s),
        interval_s=settings.analysis_interval_s,
        max_wait_s=settings.max_wait_s,
        thresholds=resolved(
            asked.thresholds if asked else RolloutThresholds(), settings.thresholds
        ),
    )
    longest = len(plan.steps) * (plan.bake_s + plan.max_wait_s + plan.interval_s)
    if longest > settings.max_s:
        raise UnsupportedPreference(
            f"a {strategy} of {len(plan.steps)} steps with bake_s={plan.bake_s:g} may take "
            f"{longest:.0f} s, past this deployer's {settings.max_s:.0f} s "
            "(BENTOMESH_ROLLOUT_MAX_S); register with fewer steps or a shorter bake"
        )
    return plan


class ProgressiveDelivery(Supervision):
    traffic: TrafficLog

    def _roll_out(
        self,
        candidate: Deployment,
        serving: Deployment,
        plan: RolloutPlan,
        announce: Announce,
    ) -> None:
        """Walk a ready ``candidate`` through ``plan`` beside ``serving``; promote it, or stop
        it and raise :class:`RolloutAborted` with the figures."""
        with self._lock:
            candidate = self.store.update(candidate.id, status="candidate", strategy=plan.strategy)
        steps = Steps(self.store, self.traffic, plan, announce)
        try:
            outcome = steps.run(candidate, serving)
        except BaseException as exc:  # a bug or a stop: the serving version keeps everything
            self._stop_candidate(candidate, f"rollout interrupted: {exc!r}")
            raise
        share = plan.steps[outcome.step]
        final: Decision = "promoted" if outcome.result == "promoted" else "aborted"
        event = steps.event(
            candidate, serving, outcome.step, share, final, outcome.reason, outcome.analysis
        )
        if outcome.result == "promoted":
            with self._lock:
                self.store.activate(candidate.id, serving.id)
            announce(event)
            logger.info("%s promoted: %s", candidate.id, outcome.reason)
            time.sleep(self.settings.drain_s)
            if serving.handle:
                self.runtime(serving.runtime).stop(serving.handle)
            self.traffic.forget(candidate.id, serving.id)
            return
        self._stop_candidate(candidate, outcome.reason)
        announce(event)
        announce(_alert(candidate, serving, outcome))
        raise RolloutAborted(
            f"{candidate.model}:{candidate.version} {plan.strategy} aborted at step "
            f"{outcome.step + 1} of {len(plan.steps)}: {outcome.reason}; "
            f"{serving.model}:{serving.version} keeps serving",
            details=event.model_dump_json(include={"analysis", "thresholds"}),
        )

    def _stop_candidate(self, candidate: Deployment, reason: str) -> None:
        with self._lock:  # first out of the routing table, then stopped after a drain
            self.store.update(candidate.id, status="failed", share=0.0, detail=reason)
        time.sleep(self.settings.drain_s)
        if candidate.handle:
            with contextlib.suppress(Exception):
                self.runtime(candidate.runtime).stop(candidate.handle)
        self.traffic.forget(candidate.id)

    def _no_rollout(self, model: str) -> None:
        """Refuse at once rather than wait (holding an HTTP call) for a rollout's end."""
        candidate = self.store.candidate(model)
        if candidate is not None:
            raise RolloutInProgress(
                f"{model}:{candidate.version} is being rolled out ({candidate.strategy}, share "
                f"{candidate.share:.0%}); decide it first: bentomesh rollout abort {model} "
                f"(or promote)"
            )


def _alert(candidate: Deployment, serving: Deployment, outcome: Outcome) -> HealthAlert:
    return HealthAlert(
        deployment_id=candidate.id,
        model_name=candidate.model,
        model_version=candidate.version,
        endpoint_url=candidate.endpoint or "",
        rule="rollout_aborted",
        severity="warning",
        state="firing",
        message=(
            f"{candidate.model}:{candidate.version} was not promoted ({outcome.reason}); "
            f"traffic is back on {serving.version}"
        ),
    )
