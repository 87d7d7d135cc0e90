"""The health monitor: check every watched endpoint on an interval, turn rule transitions into
``HealthAlert``s and hand them to the registered handlers. Works without Kafka
(:func:`create_health_monitor`, the original API; the README shows it)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp

from bentomesh_contracts.events import HealthAlert
from services.monitor.alerts import alert_for
from services.monitor.checker import CheckResult, Target, check, read_live
from services.monitor.drift import DriftTracker
from services.monitor.rules import DEFAULT_RULES, AlertBook, Rule, Transition
from services.monitor.window import Scrape

logger = logging.getLogger("bentomesh.monitor")

Handler = Callable[[HealthAlert], Any]
AfterCheck = Callable[[aiohttp.ClientSession, Target], Awaitable[None]]


class HealthMonitor:
    def __init__(
        self,
        targets: Iterable[Target] = (),
        *,
        check_interval: float = 10.0,
        rules: tuple[Rule, ...] = DEFAULT_RULES,
        concurrency: int = 100,
        jitter: float = 0.1,
        timeout_s: float = 3.0,
        drift_min_rows: int = 300,
    ) -> None:
        self.targets: dict[str, Target] = {t.deployment_id: t for t in targets}
        self.check_interval = check_interval
        self.book = AlertBook(rules=rules)
        self.handlers: list[Handler] = []
        self.concurrency = concurrency
        self.jitter = jitter
        self.timeout_s = timeout_s
        self.last: dict[str, CheckResult] = {}
        self.checks = 0
        self.on_results: list[Callable[[list[CheckResult]], None]] = []
        self.on_drift: list[Callable[[str, str, Any], None]] = []  # (deployment, model, scores)
        self.after_live_check: list[AfterCheck] = []  # more to read from a live endpoint
        self.on_unwatch: list[Callable[[str], None]] = []
        self._scrapes: dict[str, Scrape] = {}
        self.drift = DriftTracker(min_rows=drift_min_rows)
        self._no_reference: set[str] = set()  # served without a reference: no drift checks
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[str, asyncio.Future[CheckResult]] = {}
        self._limits: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def add_alert_handler(self, handler: Handler) -> None:
        """``handler(alert)``; a coroutine function is awaited."""
        self.handlers.append(handler)

    def watch(self, target: Target) -> None:
        with self._lock:
            self.targets[target.deployment_id] = target

    def retire(self, deployment_id: str) -> list[HealthAlert]:
        """Stop watching a deployment that no longer serves (replaced, removed), returning a
        'resolved' alert for each of its rules still firing: none stays firing forever."""
        target = self.targets.get(deployment_id)
        resolved = []
        if target is not None:
            for name in self.book.firing(deployment_id):
                rule = next(r for r in self.book.rules if r.name == name)
                alert = alert_for(target, Transition(rule, "resolved", None))
                resolved.append(
                    alert.model_copy(update={"message": f"{alert.message} (no longer serving)"})
                )
        self.unwatch(deployment_id)
        return resolved

    async def dispatch(self, alerts: Iterable[HealthAlert]) -> None:
        for alert in alerts:
            await self._dispatch(alert)

    def unwatch(self, deployment_id: str) -> None:
        with self._lock:
            self.targets.pop(deployment_id, None)
            self.last.pop(deployment_id, None)
            self._scrapes.pop(deployment_id, None)
        self.drift.forget(deployment_id)
        self._no_reference.discard(deployment_id)
        for callback in self.on_unwatch:
            callback(deployment_id)
        self.book.forget([deployment_id])

    def session(self) -> aiohttp.ClientSession:
        """An HTTP session sized for the monitor's concurrency."""
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency),
        )

    async def run_once(
        self, client: aiohttp.ClientSession, wait: float | None = None
    ) -> list[HealthAlert]:
        """Check every target once (bounded concurrency); dispatch and return the alerts.

        With ``wait``, return after at most that many seconds: a check still running (an
        endpoint that does not answer) stays in flight and is harvested by a later call, and its
        target is not checked again meanwhile. One hanging endpoint then delays nobody else.
        """
        with self._lock:
            targets = list(self.targets.values())
        for target in targets:
            if target.deployment_id not in self._inflight:
                self._inflight[target.deployment_id] = asyncio.ensure_future(
                    self._check_one(client, target)
                )
        tasks = list(self._inflight.values())
        if not tasks:
            return []
        done, _ = await asyncio.wait(tasks, timeout=wait)
        results = []
        for task in done:
            result = task.result()
            if self._inflight.get(result.target.deployment_id) is task:
                del self._inflight[result.target.deployment_id]
            results.append(result)
        alerts = []
        for result in results:
            if result.target.deployment_id not in self.targets:
                continue  # unwatched while it was being checked
            self.last[result.target.deployment_id] = result
            observed = self.book.observe(result.target.deployment_id, result.metrics())
            alerts += [
                alert_for(result.target, replace(t, note=result.notes.get(t.rule.metric)))
                for t in observed
            ]
        self.checks += len(results)
        for callback in self.on_results:
            callback(list(results))
        for alert in alerts:
            await self._dispatch(alert)
        return alerts

    async def _check_one(self, client: aiohttp.ClientSession, target: Target) -> CheckResult:
        loop = asyncio.get_running_loop()
        limit = self._limits.setdefault(loop, asyncio.Semaphore(self.concurrency))
        async with limit:
            result, scrape = await check(client, target, self._scrapes.get(target.deployment_id))
        if scrape is not None:
            self._scrapes[target.deployment_id] = scrape
        if result.live and target.deployment_id not in self._no_reference:
            await self._read_drift(client, result)
        for after in self.after_live_check if result.live else ():
            await after(client, target)
        return result

    async def _read_drift(self, client: aiohttp.ClientSession, result: CheckResult) -> None:
        """Read the model's live counts; a closed window adds its drift metrics to ``result``."""
        deployment = result.target.deployment_id
        known = self.drift.has_reference(deployment)
        snapshot = await read_live(client, result.target, with_reference=not known)
        if snapshot == {}:
            self._no_reference.add(deployment)
            return
        if snapshot is None:
            return
        if known:
            snapshot["reference"] = self.drift.deployments[deployment].reference
        scores = self.drift.update(deployment, snapshot)
        if scores is not None:
            for callback in self.on_drift:
                callback(deployment, result.target.model_name, scores)
            result.stats.update(scores.metrics())
            thresholds = {r.metric: r.threshold for r in self.book.rules}
            result.notes.update(scores.notes(thresholds))

    def drift_of(self, deployment_id: str) -> dict[str, Any]:
        """What the status page shows: the latest window's scores, worst feature first."""
        if deployment_id in self._no_reference:
            return {"reference": False}
        scores = self.drift.latest.get(deployment_id)
        if scores is None:
            return {"reference": self.drift.has_reference(deployment_id) or None}
        return {
            "reference": True,
            "rows": scores.rows,
            "features": sorted(scores.features.items(), key=lambda kv: -kv[1]),
            "prediction": scores.prediction,
            "quality": sorted(scores.quality.items(), key=lambda kv: -kv[1]),
        }

    async def _dispatch(self, alert: HealthAlert) -> None:
        for handler in self.handlers:
            try:
                outcome = handler(alert)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("alert handler %r failed", handler)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Check on the interval (jittered) until ``stop`` is set or :meth:`stop` is called.

        Cycles start on a fixed clock: a cycle's own duration does not stretch the interval,
        and a check that outlasts it is harvested by the next cycle.
        """

        def stopping() -> bool:
            return self._stop.is_set() or bool(stop and stop.is_set())

        loop = asyncio.get_running_loop()
        try:
            async with self.session() as client:
                while not stopping():
                    started = loop.time()
                    await self.run_once(client, wait=self.check_interval)
                    delay = self.check_interval * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311
                    remaining = max(0.0, started + delay - loop.time())
                    steps = max(1, int(remaining / 0.05))
                    for _ in range(steps):
                        if stopping():
                            return
                        await asyncio.sleep(remaining / steps)
        finally:
            for task in self._inflight.values():
                task.cancel()
            self._inflight.clear()

    def start(self) -> None:
        """Run in a background thread (its own event loop)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.run()), daemon=True, name="bentomesh-monitor"
        )
        self._thread.start()

    def halt(self) -> None:
        """Ask :meth:`run` to return after the current cycle."""
        self._stop.set()

    @property
    def halted(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def get_health_summary(self) -> dict[str, Any]:
        with self._lock:
            targets = list(self.targets.values())
        services = {}
        for target in targets:
            result = self.last.get(target.deployment_id)
            services[target.model_name if target.model_name != "unknown" else target.url] = {
                "deployment_id": target.deployment_id,
                "url": target.url,
                "healthy": bool(result and result.live and result.ready),
                "live": result.live if result else None,
                "ready": result.ready if result else None,
                "ready_ms": result.ready_ms if result else None,
                "stats": dict(result.stats) if result else {},
                "firing": self.book.firing(target.deployment_id),
                "last_error": result.error if result else None,
            }
        return {"checks": self.checks, "services": services}


def create_health_monitor(
    services: Iterable[Mapping[str, str]], check_interval: float = 30.0, **options: Any
) -> HealthMonitor:
    """The original API: ``services=[{"name": ..., "url": ...}]``."""
    import re

    def slug(name: str) -> str:
        return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:63] or "service"

    targets = [
        Target(
            deployment_id=s.get("id", s["name"]),
            url=s["url"],
            model_name=slug(s["name"]),
            model_version=s.get("version", "0"),
        )
        for s in services
    ]
    return HealthMonitor(targets, check_interval=check_interval, **options)
