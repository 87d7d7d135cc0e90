"""The steps of a canary or shadow rollout: set the candidate's share, let it bake, judge it.

Kafka-free and runtime-free: the store holds the share (the gateway routes by it) and any
operator command, the traffic log holds what the gateway saw, ``report`` publishes each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bentomesh_contracts.events import RolloutProgressed
from bentomesh_contracts.rollout import Decision, RolloutAnalysis, RolloutThresholds, Strategy
from services.deployer.analysis import Verdict, judge
from services.deployer.state import Deployment, DeploymentStore
from services.deployer.traffic import TrafficLog

Report = Callable[[RolloutProgressed], None]


@dataclass(frozen=True)
class RolloutPlan:
    strategy: Strategy  # 'canary' or 'shadow'
    steps: tuple[float, ...]
    bake_s: float
    interval_s: float  # how often a step is judged: a failure is acted on within one interval
    max_wait_s: float  # past its bake, how long a step waits for enough requests
    thresholds: RolloutThresholds


@dataclass(frozen=True)
class Outcome:
    result: Literal["promoted", "aborted"]
    reason: str
    analysis: RolloutAnalysis | None
    step: int


class Steps:
    def __init__(
        self,
        store: DeploymentStore,
        traffic: TrafficLog,
        plan: RolloutPlan,
        report: Report,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.traffic, self.plan = store, traffic, plan
        self.report, self.sleep = report, sleep

    def event(
        self,
        candidate: Deployment,
        serving: Deployment,
        step: int,
        share: float,
        decision: Decision,
        reason: str,
        analysis: RolloutAnalysis | None = None,
    ) -> RolloutProgressed:
        return RolloutProgressed(
            deployment_id=candidate.id,
            model_name=candidate.model,
            model_version=candidate.version,
            serving_deployment_id=serving.id,
            serving_version=serving.version,
            strategy=self.plan.strategy,
            step=step,
            steps=list(self.plan.steps),
            share=share,
            decision=decision,
            reason=reason,
            analysis=analysis,
            thresholds=self.plan.thresholds,
        )

    def tell(self, event: RolloutProgressed) -> None:
        """Publish a step and keep it as the candidate's last word (``rollout status``)."""
        self.report(event)
        said = f"step {event.step + 1} of {len(event.steps)}, {event.decision}: {event.reason}"
        self.store.update(event.deployment_id, detail=said)

    def run(self, candidate: Deployment, serving: Deployment) -> Outcome:
        """Walk every step; the outcome says whether the candidate earned all the traffic."""
        began = time.time()
        for step, share in enumerate(self.plan.steps):
            self.store.update(candidate.id, share=share)
            what = "mirrored" if self.plan.strategy == "shadow" else "of the traffic"
            decision: Decision = "started" if step == 0 else "advanced"
            self.tell(self.event(candidate, serving, step, share, decision, f"{share:.0%} {what}"))
            outcome = self._bake(candidate, serving, step, share, began)
            if outcome is not None:
                return outcome
        last = len(self.plan.steps) - 1
        return Outcome("promoted", "passed every step", None, last)

    def _bake(
        self, candidate: Deployment, serving: Deployment, step: int, share: float, began: float
    ) -> Outcome | None:
        """``None`` once the step passed; an outcome when it failed or an operator decided."""
        start = time.time()
        ripe, give_up = start + self.plan.bake_s, start + self.plan.bake_s + self.plan.max_wait_s
        waiting_told = False
        while True:
            self.sleep(self.plan.interval_s)
            now = self.store.get(candidate.id)
            if now is not None and now.command == "abort":
                return Outcome("aborted", "aborted by an operator", None, step)
            if now is not None and now.command == "promote":
                return Outcome("promoted", "promoted by an operator", None, step)
            verdict = self._judge(candidate, serving, start, began)
            if verdict.outcome == "fail":
                return Outcome("aborted", verdict.reason, verdict.analysis, step)
            if time.time() < ripe:
                continue
            if verdict.outcome == "pass":
                return None
            if time.time() >= give_up:
                reason = f"not enough evidence after {self.plan.max_wait_s:g} s: {verdict.reason}"
                return Outcome("aborted", reason, verdict.analysis, step)
            if not waiting_told:
                waiting_told = True
                self.tell(
                    self.event(
                        candidate, serving, step, share, "waiting", verdict.reason, verdict.analysis
                    )
                )

    def _judge(
        self, candidate: Deployment, serving: Deployment, start: float, began: float
    ) -> Verdict:
        limits = self.plan.thresholds
        mine = self.traffic.window(candidate.id, start)
        theirs = self.traffic.window(serving.id, start)
        if theirs.timed < (limits.min_requests or 1):  # e.g. the candidate has it all now
            theirs = self.traffic.window(serving.id, began)
        mirrored, dropped = (None, 0)
        if self.plan.strategy == "shadow":
            mirrored, dropped = self.traffic.differences(candidate.id, start)
        return judge(
            mine, theirs, limits, window_s=time.time() - start, mirrored=mirrored, dropped=dropped
        )
