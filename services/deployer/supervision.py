"""Keeping what runs equal to what the store says: restart the dead, remove the abandoned, stop
the leftovers; and finding the runtime each deployment runs on. Part of
:class:`~services.deployer.rollout.Deployer`."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from services.deployer.replicas import ModelLocks
from services.deployer.runtimes import Runtime
from services.deployer.state import Deployment, DeploymentStore
from services.errors import RuntimeUnavailable

if TYPE_CHECKING:
    from services.deployer.rollout import RolloutSettings

logger = logging.getLogger("bentomesh.deployer")


class Supervision:
    store: DeploymentStore
    runtimes: dict[str, Runtime]
    # runtimes that could not be created at start (engine down): tried again when needed
    late_runtimes: dict[str, Callable[[], Runtime]]
    settings: RolloutSettings
    models: ModelLocks
    _lock: AbstractContextManager[object]

    def runtime(self, name: str) -> Runtime:
        if name not in self.runtimes and name in self.late_runtimes:
            try:
                self.runtimes[name] = self.late_runtimes[name]()
            except Exception as exc:
                raise RuntimeUnavailable(f"runtime {name!r} is unreachable: {exc}") from exc
            del self.late_runtimes[name]
            logger.info("runtime %s is available now", name)
        try:
            return self.runtimes[name]
        except KeyError:
            raise RuntimeUnavailable(
                f"runtime {name!r} is not available in this deployer"
            ) from None

    def supervise(self) -> list[Deployment]:
        """Restart active deployments whose process or container died, remove deployments
        abandoned while starting, stop leftovers; returns the deployments restarted.

        A model being rolled out (its lock held) is left to that rollout."""
        restarted = []
        self._remove_abandoned("its deployer stopped before it became ready")
        for deployment in self.store.all_active():
            runtime = self.runtimes.get(deployment.runtime)
            if runtime is None:
                continue
            if deployment.handle and runtime.alive(deployment.handle):
                self.placed(deployment, runtime)
                continue
            with self.models.hold(deployment.model, wait=False) as free:
                if free and (again := self._restart(deployment, runtime)) is not None:
                    restarted.append(again)
        with self._lock:
            self._sweep()
        return restarted

    def placed(self, deployment: Deployment, runtime: Runtime) -> Deployment:
        """``deployment`` with the endpoints its replicas answer at now, where its runtime moves
        them (a Swarm replica rescheduled to another node): the gateway follows the store."""
        found = runtime.endpoints(deployment.handle) if deployment.handle else None
        if not found or " ".join(found) == deployment.endpoints:
            return deployment
        logger.info("%s answers at %s", deployment.id, " ".join(found))
        return self.store.update(deployment.id, endpoint=found[0], endpoints=" ".join(found))

    def _restart(self, deployment: Deployment, runtime: Runtime) -> Deployment | None:
        current = self.store.get(deployment.id)
        if current is None or current.status != "active":
            return None  # replaced or removed meanwhile
        logger.warning("%s died; restarting it", deployment.id)
        try:  # one deployment that cannot restart never stops the supervision of others
            with self._lock:
                started = runtime.start(deployment)
                updated = self.store.update(
                    deployment.id, endpoint=started.endpoint, handle=started.handle
                )
            runtime.wait_ready(started, self.settings.ready_timeout_s)
        except Exception as exc:
            logger.warning("%s: restart failed: %s", deployment.id, exc)
            self.store.update(deployment.id, detail=f"restart failed: {exc}")
            return None
        return self.placed(updated, runtime)

    def _remove_abandoned(self, reason: str) -> None:
        """A deployment still ``starting`` (or a ``candidate``) while nobody holds its model's
        lock was abandoned (its deployer died mid-rollout): stop what it started and mark it
        failed. The serving version keeps all the traffic; the redelivered event starts over."""
        for starting in (*self.store.in_status("starting"), *self.store.in_status("candidate")):
            with self.models.hold(starting.model, wait=False) as free:
                if not free:
                    continue  # being rolled out right now
                again = self.store.get(starting.id)
                if again is not None and again.status in ("starting", "candidate"):
                    with self._lock:
                        self._discard(again, reason)

    def _discard(self, deployment: Deployment, reason: str) -> None:
        if deployment.handle:
            with contextlib.suppress(RuntimeUnavailable):
                self.runtime(deployment.runtime).stop(deployment.handle)
        self.store.update(deployment.id, status="failed", share=0.0, detail=reason)

    def _sweep(self) -> None:
        """Make what runs match the store: stop anything that is neither an active deployment,
        one starting (a rollout in progress; an abandoned one was removed before this), nor one
        just replaced and draining while its model's rollout finishes."""
        keep = {
            d.id: d.handle
            for d in (
                *self.store.all_active(),
                *self.store.in_status("starting"),
                *self.store.in_status("candidate"),
            )
            if d.handle
        }
        # a version just replaced drains, then its rollout stops it (its model's lock held)
        recent = time.time() - 3600
        for replaced in self.store.in_status("replaced"):
            if replaced.handle and replaced.updated_at > recent:
                with self.models.hold(replaced.model, wait=False) as free:
                    if not free:
                        keep[replaced.id] = replaced.handle
        for name, runtime in self.runtimes.items():
            try:
                stopped = runtime.sweep(keep)
            except Exception:
                logger.exception("sweep of the %s runtime failed", name)
                continue
            if stopped:
                logger.warning("stopped leftover %s instances: %s", name, stopped)

    def reconcile(self) -> None:
        """After a restart: remove what was left half-done, then make reality match the store."""
        self._remove_abandoned("deployer restarted before it became ready")
        self.supervise()

    def stop_all(self) -> None:
        """Stop every running deployment but keep it active: :meth:`reconcile` restarts it."""
        for deployment in self.store.all_active():
            runtime = self.runtimes.get(deployment.runtime)
            if runtime is not None and deployment.handle:
                runtime.stop(deployment.handle)
