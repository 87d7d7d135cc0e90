"""Blue/green replacement, rollback and supervision of deployments; no Kafka here.

A new version starts beside the old one; when it answers ``/readyz`` the model's stable endpoint
(the gateway, which reads the store) switches to it, then the old one stops. A version never
ready is removed and the old one keeps serving. A repeated request returns what it already made.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from bentomesh_contracts.events import Deployed, ImageReady
from bentomesh_contracts.rollout import RolloutThresholds, Strategy
from services.deployer.analysis import MESH_THRESHOLDS
from services.deployer.progressive import Announce, ProgressiveDelivery, plan_for
from services.deployer.replicas import ModelLocks
from services.deployer.runtimes import Runtime
from services.deployer.state import Deployment, DeploymentStore
from services.deployer.traffic import TrafficLog
from services.deployer.versions import registered_before, rollback_target
from services.errors import (
    DeployFailed,
    NotDeployed,
    NothingToRollBack,
    NotReadyError,
    Superseded,
    UnsupportedPreference,
)

logger = logging.getLogger("bentomesh.deployer")


@dataclass(frozen=True)
class RolloutSettings:
    ready_timeout_s: float = 120.0
    drain_s: float = 1.0
    strategy: Strategy = "replace"  # for registrations that do not choose
    canary_steps: tuple[float, ...] = (0.1, 0.5, 1.0)
    shadow_share: float = 1.0
    bake_s: float = 60.0
    analysis_interval_s: float = 5.0
    max_wait_s: float = 600.0
    max_s: float = 3600.0  # a longer plan is refused
    thresholds: RolloutThresholds = MESH_THRESHOLDS


class Deployer(ProgressiveDelivery):
    def __init__(
        self,
        store: DeploymentStore,
        runtimes: Mapping[str, Runtime],
        settings: RolloutSettings | None = None,
        *,
        late_runtimes: Mapping[str, Callable[[], Runtime]] | None = None,
        lock: AbstractContextManager[object] | None = None,
        models: ModelLocks | None = None,
    ) -> None:
        self.store = store
        self.runtimes = dict(runtimes)
        # runtimes that could not be created at start (engine down): tried again when needed
        self.late_runtimes = dict(late_runtimes or {})
        self.settings = settings or RolloutSettings()
        # short: each change of what runs or of the store (across replicas: a ReplicaLock)
        self._lock = lock or threading.RLock()
        # long: a whole rollout of one model (models roll out side by side)
        self.models = models or ModelLocks(store.path.parent / "model-locks")
        self.traffic = TrafficLog()  # what the gateway saw, for rollouts to judge
        self.ready_seconds: dict[str, float] = {}  # start to ready, for Deployed (this process)

    @staticmethod
    def deployed_event(deployment: Deployment) -> Deployed:
        return Deployed(
            deployment_id=deployment.id,
            model_name=deployment.model,
            model_version=deployment.version,
            runtime=deployment.runtime,
            endpoint_url=deployment.endpoint or "",
            replaced_deployment_id=deployment.replaced_id,
        )

    def _with_replaced_version(self, deployment: Deployment) -> Deployed:
        event = self.deployed_event(deployment).model_copy(
            update={"ready_seconds": self.ready_seconds.get(deployment.id)}
        )
        if deployment.replaced_id:
            old = self.store.get(deployment.replaced_id)
            if old is not None:
                event = event.model_copy(update={"replaced_version": old.version})
        return event

    def deploy(
        self,
        image: ImageReady,
        *,
        cause_id: str,
        chain_id: str,
        registered_at: float | None = None,
        announce: Announce | None = None,
    ) -> Deployed:
        """Run ``image`` and make it the model's active deployment; idempotent per cause.

        ``registered_at`` (the chain's time) orders registrations of one model: an image whose
        registration is older than the active deployment's is refused (:class:`Superseded`),
        so a late or replayed event never puts version 2 back over version 3. Going back is
        what ``rollback`` is for. A ``canary`` or ``shadow`` rollout reports each step through
        ``announce`` and raises :class:`RolloutAborted` when the candidate fails."""
        plan = plan_for(image.deployment, self.settings)  # refused before anything starts
        with self.models.hold(image.model_name):
            with self._lock:
                ready = self._prepare(image, cause_id, chain_id, registered_at)
            if isinstance(ready, Deployed):
                return ready
            deployment, current = ready
            runtime = self.runtime(image.backend)
            if plan is None or current is None:  # a first version has nothing to compare with
                self._start_and_switch(deployment, runtime, current)
                if current is not None and current.handle:
                    self._retire(current)
            else:
                candidate = self._start_ready(deployment, runtime, current)
                self._roll_out(candidate, current, plan, announce or (lambda _: None))
        active = self.store.get(deployment.id)
        assert active is not None
        return self._with_replaced_version(active)

    def _prepare(
        self, image: ImageReady, cause_id: str, chain_id: str, registered_at: float | None
    ) -> Deployed | tuple[Deployment, Deployment | None]:
        """What this event already made (a repeat), or its new ``starting`` deployment and
        the deployment it is to replace."""
        replicas = image.deployment.replicas
        if replicas != 1 and image.backend != "swarm":
            raise UnsupportedPreference(
                f"replicas={replicas}: the {image.backend} runtime runs one "
                "server per version; register with replicas=1 or use runtime 'swarm' (more are "
                "not served, so they are refused rather than ignored)"
            )
        for earlier in self.store.by_cause(cause_id):
            if earlier.status in ("active", "replaced"):
                logger.info("%s: already deployed as %s", cause_id, earlier.id)
                return self._with_replaced_version(earlier)
            if earlier.status in ("starting", "candidate"):  # a crash interrupted it: start over
                self._discard(earlier, "interrupted before it became ready")
        current = self.store.active(image.model_name)
        if current is not None and current.version == image.model_version:
            return self._with_replaced_version(current)
        if current is not None and registered_before(registered_at, current.registered_at):
            raise Superseded(
                f"{image.model_name}:{image.model_version} was registered before the serving "
                f"version {current.version}; not deployed. To serve an earlier version on "
                f"purpose: bentomesh rollback {image.model_name}, or register it again."
            )
        runtime = self.runtime(image.backend)
        ref = runtime.pinned(image)  # only what the mesh built: never a path, a pull, an import
        now = time.time()
        deployment = Deployment(
            id=f"{image.model_name}-{image.model_version}-{uuid.uuid4().hex[:8]}",
            model=image.model_name,
            version=image.model_version,
            runtime=image.backend,
            ref=ref,
            status="starting",
            endpoint=None,
            handle=None,
            chain_id=chain_id,
            cause_id=cause_id,
            replaced_id=None,
            detail=None,
            cpus=image.deployment.resources.cpus,
            memory_mb=image.deployment.resources.memory_mb,
            created_at=now,
            updated_at=now,
            registered_at=registered_at,
            replicas=image.deployment.replicas,
        )
        self.store.insert(deployment)
        return deployment, current

    def _start_and_switch(
        self, deployment: Deployment, runtime: Runtime, current: Deployment | None
    ) -> None:
        """Start ``deployment`` beside ``current``, wait until it is ready (holding only its
        model's lock), then switch to it."""
        deployment = self._start_ready(deployment, runtime, current)
        with self._lock:
            self.store.activate(deployment.id, current.id if current else None)
        logger.info("%s active at %s", deployment.id, deployment.endpoint)

    def _retire(self, old: Deployment) -> None:
        """Drain and stop the version just replaced, its model's lock still held (the next
        version waits; supervision leaves a drain alone), before ``Deployed`` is announced: when
        it is out, one server serves each active deployment."""
        time.sleep(self.settings.drain_s)  # requests already routed to it finish
        self.runtime(old.runtime).stop(old.handle or "")

    def _start_ready(
        self, deployment: Deployment, runtime: Runtime, current: Deployment | None
    ) -> Deployment:
        """Start ``deployment`` and wait until it answers ``/readyz``; removed if it never does."""
        started_at = time.monotonic()
        with self._lock:
            try:
                started = runtime.start(deployment)
            except Exception as exc:  # nothing started: the attempt is over, the old one serves
                self.store.update(deployment.id, status="failed", detail=f"could not start: {exc}")
                raise
            deployment = self.store.update(
                deployment.id, endpoint=started.endpoint, handle=started.handle
            )
        try:
            runtime.wait_ready(started, self.settings.ready_timeout_s)
        except NotReadyError as exc:
            logs = runtime.logs(deployment)
            with self._lock:
                self._discard(deployment, str(exc))
            serving = f"; {current.model}:{current.version} keeps serving" if current else ""
            raise DeployFailed(
                f"{deployment.model}:{deployment.version} did not become ready: {exc}{serving}",
                details=logs or None,
            ) from exc
        self.ready_seconds[deployment.id] = round(time.monotonic() - started_at, 3)
        return self.placed(deployment, runtime)

    def rollback(self, model: str, to_version: str | None = None) -> Deployment:
        """Serve again the version the active one replaced, or ``to_version`` (one the model
        served before), as a new deployment of it."""
        self._no_rollout(model)
        with self.models.hold(model):
            return self._rollback(model, to_version)

    def _rollback(self, model: str, to_version: str | None) -> Deployment:
        current = self.store.active(model)
        if current is None:
            raise NothingToRollBack(f"{model} has no earlier version to roll back to: none serves")
        previous = rollback_target(current, self.store, to_version)
        now = time.time()
        again = Deployment(
            id=f"{model}-{previous.version}-{uuid.uuid4().hex[:8]}",
            model=model,
            version=previous.version,
            runtime=previous.runtime,
            ref=previous.ref,
            status="starting",
            endpoint=None,
            handle=None,
            chain_id=previous.chain_id,
            cause_id=f"rollback:{current.id}",
            replaced_id=None,
            detail=f"rollback from {current.version}",
            cpus=previous.cpus,
            memory_mb=previous.memory_mb,
            created_at=now,
            updated_at=now,
            registered_at=previous.registered_at,
        )
        with self._lock:
            self.store.insert(again)
        self._start_and_switch(again, self.runtime(previous.runtime), current)
        if current.handle:
            self._retire(current)
        rolled = self.store.get(again.id)
        assert rolled is not None
        return rolled

    def undeploy(self, model: str) -> Deployment:
        """Stop the model's active deployment: nothing serves it until a version is registered."""
        self._no_rollout(model)
        with self.models.hold(model), self._lock:
            current = self.store.active(model)
            if current is None:
                raise NotDeployed(f"{model} has no active deployment")
            runtime = self.runtimes.get(current.runtime)
            if runtime is not None and current.handle:
                runtime.stop(current.handle)
            return self.store.update(current.id, status="stopped", detail="undeployed")
