"""``services.monitor.app:app``: the monitor service with its own metrics and alert handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from faststream.kafka import KafkaBroker

from bentomesh_contracts import topics
from bentomesh_contracts.kafka import KafkaSettings
from services.monitor.history import History
from services.monitor.leader import Leadership
from services.monitor.metrics import MonitorMetrics
from services.monitor.monitor import HealthMonitor
from services.monitor.outbox import Outbox, claimed
from services.monitor.samples import SampleReader, kafka_sample_publisher
from services.monitor.service import (
    WatchSet,
    kafka_alert_handler,
    kafka_delivery,
    monitor_router,
    pending_alerts,
    restore_alerts,
)
from services.monitor.settings import MonitorSettings
from services.monitor.sinks import log_handler, webhook_delivery, webhook_handler
from services.monitor.snapshot import status_snapshot
from services.monitor.sync import DeployerSync
from services.runtime.app import create_service_app
from services.runtime.control import ControlSettings, guarded
from services.runtime.metrics import StageMetrics
from services.runtime.settings import RuntimeSettings
from services.runtime.trust import Trust
from services.status.chains import ChainBook
from services.status.web import api_app, page_app

logger = logging.getLogger("bentomesh.monitor")


def create_app(
    settings: MonitorSettings | None = None,
    *,
    kafka: KafkaSettings | None = None,
    monitor: HealthMonitor | None = None,
    trust: Trust | None = None,
) -> Any:
    """The monitor service; ``monitor`` (its checks and their HTTP client) is the seam for tests."""
    settings = settings or MonitorSettings()
    kafka = kafka or KafkaSettings()
    trust = trust or Trust.load("monitor")
    monitor = monitor or HealthMonitor(
        check_interval=settings.interval_s,
        rules=settings.rules(),
        concurrency=settings.concurrency,
        jitter=settings.jitter,
        timeout_s=settings.timeout_s,
        drift_min_rows=settings.drift_min_rows,
    )
    watch = WatchSet(monitor, settings.targets_file)
    chains = ChainBook()
    history = History(interval_s=settings.interval_s)
    monitor.on_results.append(history.record)
    tasks: list[asyncio.Task[None]] = []
    outbox: list[Outbox] = []  # Kafka first, then the webhook when configured
    outboxes = RuntimeSettings().home / "monitor"
    leadership = Leadership(kafka)

    def routers(broker_ref: Any, metrics: StageMetrics) -> Any:
        own = MonitorMetrics(metrics.registry)
        monitor.on_results.append(
            lambda results: own.record(results, monitor.book, len(monitor.targets))
        )
        monitor.on_drift.append(own.record_drift)
        samples = SampleReader(kafka_sample_publisher(watch.causes, trust, broker_ref))
        monitor.after_live_check.append(samples.read)
        monitor.on_unwatch.append(samples.forget)
        monitor.add_alert_handler(log_handler)
        kafka = Outbox(
            "kafka alerts", kafka_delivery(broker_ref), claimed(outboxes / "kafka.jsonl")
        )
        outbox.append(kafka)
        monitor.add_alert_handler(when_leading(kafka_alert_handler(watch, trust, kafka)))
        if settings.webhook_url and settings.webhook_secret:
            secret = settings.webhook_secret.get_secret_value()
            hook = Outbox(
                "webhook",
                webhook_delivery(settings.webhook_url, secret),
                claimed(outboxes / "webhook.jsonl"),
            )
            outbox.append(hook)
            monitor.add_alert_handler(when_leading(webhook_handler(hook)))
        return monitor_router(watch, trust, broker_ref, chains)

    def status() -> dict[str, Any]:
        leading = leadership.leading.is_set()
        return {**status_snapshot(monitor, watch, chains, history), "leading": leading}

    def when_leading(handler: Any) -> Any:
        """Only the leading replica announces; a standby's transitions stay its own."""

        async def handle(alert: Any) -> None:
            if leadership.leading.is_set():
                await handler(alert)

        return handle

    app = create_service_app(
        "monitor",
        routers,
        kafka=kafka,
        routes=[
            ("/ui", page_app()),
            ("/api/status", guarded(api_app(status))),
        ],
    )

    async def take_up_alerts() -> None:
        # exactly what was announced: a transition a standby observed but did not announce
        # (a term ended mid-check) must come again, not be taken as sent
        monitor.book.states.clear()
        try:
            firing = await restore_alerts(kafka, monitor.book, trust.history_reader(), watch)
            logger.info("took up %d firing alerts from %s", firing, topics.HEALTH_ALERT)
        except Exception:
            logger.exception("could not read past alerts; starting with none firing")
        for alert in pending_alerts(outbox[0]):  # sent after the restart, announced already
            monitor.book.restore(alert.deployment_id, alert.rule, alert.state == "firing")

    async def lead() -> None:
        """Check while this replica leads; each term begins by taking up the alert states
        announced so far (by an earlier run, or by the replica that led before)."""
        while not monitor.halted:
            await leadership.leading.wait()
            await take_up_alerts()
            await monitor.run(stop=leadership.standing_by)

    async def start_checks() -> None:
        for box in outbox:
            tasks.append(asyncio.create_task(box.run()))
        tasks.append(asyncio.create_task(leadership.run()))
        tasks.append(asyncio.create_task(lead()))
        if settings.sync_s > 0:
            sync = DeployerSync(
                watch, settings.deployer_url, ControlSettings().token(), settings.sync_s
            )
            tasks.append(asyncio.create_task(sync.run()))

    async def stop_checks() -> None:
        monitor.halt()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.after_startup(start_checks)
    app.on_shutdown(stop_checks)
    app.monitor = monitor  # type: ignore[attr-defined]
    app.leadership = leadership  # type: ignore[attr-defined]
    return app


def broker_of(app: Any) -> KafkaBroker:
    broker: KafkaBroker = app.broker
    return broker


def __getattr__(name: str) -> Any:
    if name == "app":
        return create_app()
    raise AttributeError(name)
