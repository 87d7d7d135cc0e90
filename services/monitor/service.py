"""The monitor service: watches what ``Deployed`` announces, emits ``HealthAlert`` on Kafka.

It reads ``bentomesh.deployed.v1`` from the beginning on every start, with no consumer group,
so after a restart it knows every deployment again; a deployment that was replaced is dropped
from the watch set when its successor's ``Deployed`` is read.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from bentomesh_contracts import topics
from bentomesh_contracts.codec import CONTENT_TYPE, decode, decode_as, encode, partition_key
from bentomesh_contracts.envelope import CloudEvent, chain_time, follow_up
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.events import Deployed, HealthAlert, PredictionsSampled, Undeployed
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.pipeline import CHAIN_TOPICS
from services.monitor.checker import Target
from services.monitor.monitor import HealthMonitor
from services.monitor.outbox import Outbox
from services.monitor.rules import AlertBook
from services.runtime.admit import admitted as admit
from services.runtime.admit import raw_body
from services.runtime.history import read_topic
from services.runtime.trust import Trust, verified
from services.status.chains import ChainBook

logger = logging.getLogger("bentomesh.monitor")


class WatchSet:
    """Deployments to watch, from ``Deployed`` events; the cause of each, for lineage."""

    def __init__(self, monitor: HealthMonitor, targets_file: Path | None = None) -> None:
        self.monitor = monitor
        self.targets_file = targets_file
        self.causes: dict[str, CloudEvent[Deployed]] = {}
        self.by_model: dict[str, str] = {}
        # Undeployed ids: the two topics are read by separate consumers, so at start-up an
        # Undeployed may be read before the Deployed it ends; that Deployed must not be watched.
        self.removed: set[str] = set()
        # 'resolved' alerts of retired deployments, and their causes, until flush() sends them
        self.pending: list[HealthAlert] = []
        self.retired: set[str] = set()
        # the last firing alert of each (deployment, rule) taken up at start, and the chains
        # of those resolved because their deployment had gone while the monitor was down
        self.standing: dict[tuple[str, str], CloudEvent[HealthAlert]] = {}
        self.alert_causes: dict[str, CloudEvent[HealthAlert]] = {}

    def apply(self, event: CloudEvent[Deployed]) -> None:
        data = event.data
        if data.deployment_id in self.causes or data.deployment_id in self.removed:
            return  # a redelivered Deployed, or one of a deployment since undeployed
        current = self.causes.get(self.by_model.get(data.model_name, ""))
        if current is not None and chain_time(current) > chain_time(event):
            return  # a replayed Deployed of an older version: keep watching the newer one
        for old in {data.replaced_deployment_id, self.by_model.get(data.model_name)} - {None}:
            assert old is not None
            self.retire(old)
        self.causes[data.deployment_id] = event
        self.by_model[data.model_name] = data.deployment_id
        self.monitor.watch(
            Target(
                data.deployment_id,
                data.endpoint_url,
                data.model_name,
                data.model_version,
                event.chainid,
                event.id,
            )
        )
        logger.info(
            "watching %s (%s:%s) at %s",
            data.deployment_id,
            data.model_name,
            data.model_version,
            data.endpoint_url,
        )
        self.write_targets()

    def remove(self, event: CloudEvent[Undeployed]) -> None:
        """Stop watching a deployment that was undeployed."""
        removed = event.data.deployment_id
        self.removed.add(removed)
        self.retire(removed)
        if self.by_model.get(event.data.model_name) == removed:
            del self.by_model[event.data.model_name]
        logger.info("no longer watching %s: %s", removed, event.data.reason)
        self.write_targets()

    def retire(self, deployment_id: str) -> None:
        """Unwatch; its firing alerts resolve when :meth:`flush` runs."""
        self.pending.extend(self.monitor.retire(deployment_id))
        self.retired.add(deployment_id)

    def resolve_orphans(self, serving: set[str]) -> None:
        """Alerts taken up as firing for deployments that stopped serving while the monitor was
        down (replaced, removed): resolved now, following their own firing alert's chain."""
        for (deployment_id, rule), event in self.standing.items():
            gone = deployment_id not in serving and deployment_id not in self.causes
            if gone and rule in self.monitor.book.firing(deployment_id):
                self.monitor.book.restore(deployment_id, rule, False)
                self.alert_causes[deployment_id] = event
                self.retired.add(deployment_id)
                message = f"{event.data.message} (no longer serving)"
                self.pending.append(
                    event.data.model_copy(update={"state": "resolved", "message": message})
                )
        self.standing.clear()

    async def flush(self) -> None:
        """Send the 'resolved' alerts of retired deployments, then forget their causes."""
        pending, self.pending = self.pending, []
        await self.monitor.dispatch(pending)
        for gone in self.retired - set(self.by_model.values()):
            self.causes.pop(gone, None)
            self.alert_causes.pop(gone, None)
        self.retired.clear()
        self.write_targets()

    def write_targets(self) -> None:
        """Prometheus file-based service discovery: one target group per watched deployment."""
        if self.targets_file is None:
            return
        groups = [
            {
                "targets": [urlparse(e.data.endpoint_url).netloc],
                "labels": {
                    "model": e.data.model_name,
                    "version": e.data.model_version,
                    "deployment": e.data.deployment_id,
                    "runtime": e.data.runtime,
                },
            }
            for e in self.causes.values()
        ]
        tmp = self.targets_file.with_suffix(".tmp")
        try:
            self.targets_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(groups, indent=2))
            tmp.replace(self.targets_file)  # atomic: Prometheus never reads half a file
        except OSError as exc:  # Prometheus misses targets; watching and alerting go on
            logger.warning("could not write Prometheus targets to %s: %s", self.targets_file, exc)


async def restore_alerts(
    settings: KafkaSettings, book: AlertBook, trust: Trust, watch: WatchSet | None = None
) -> int:
    """Take up the alert states this monitor (or an earlier run of it) announced: without them
    a restart would announce a standing outage as firing again, and never resolve one that
    ended while the monitor was down. Returns how many alerts are firing."""
    for record in await read_topic(settings, topics.HEALTH_ALERT):
        if not verified(trust, record.value):
            continue
        try:
            event = decode_as(record.value or b"", HealthAlert)
        except EventDecodeError:
            continue
        alert = event.data
        book.restore(alert.deployment_id, alert.rule, alert.state == "firing")
        if watch is not None:
            watch.standing.pop((alert.deployment_id, alert.rule), None)
            if alert.state == "firing":
                watch.standing[(alert.deployment_id, alert.rule)] = event
    return sum(1 for state in book.states.values() if state.firing)


def kafka_alert_handler(watch: WatchSet, trust: Trust, outbox: Outbox) -> Any:
    """Each alert as a signed follow-up of the deployment's ``Deployed``, built once (its id
    fixed) and queued: the outbox publishes it until the broker acknowledges it."""

    async def publish(alert: HealthAlert) -> None:
        deployment_id = alert.deployment_id.split("/", 1)[0]  # a replica's: "id/host:port"
        cause: CloudEvent[Any] | None = watch.causes.get(deployment_id)
        cause = cause or watch.alert_causes.get(deployment_id)
        if cause is None:
            return  # unwatched meanwhile
        key = f"{alert.rule}/{alert.state}/{time.time_ns()}"
        event = trust.sign(follow_up(cause, alert, source="bentomesh/monitor", key=key))
        outbox.put({"value": encode(event).decode(), "key": partition_key(event).decode()})

    return publish


def kafka_delivery(broker_ref: Any) -> Any:
    async def deliver(item: dict[str, Any]) -> None:
        broker: KafkaBroker = broker_ref()
        await broker.publish(
            item["value"].encode(),
            topics.HEALTH_ALERT,
            key=item["key"].encode(),
            headers={"content-type": CONTENT_TYPE},
        )

    return deliver


def pending_alerts(outbox: Outbox) -> list[HealthAlert]:
    """The alerts not yet on the broker (a restart): their states count as announced."""
    return [decode_as(item["value"], HealthAlert).data for item in outbox.items]


def monitor_router(
    watch: WatchSet, trust: Trust, broker_ref: Any, chains: ChainBook | None = None
) -> KafkaRouter:
    """Reads the whole history of ``Deployed`` and ``Undeployed``; only events their producer
    signed are acted on, the others are dead-lettered with the reason."""
    router = KafkaRouter()
    reader = trust.history_reader()
    if chains is not None:
        add_chain_subscriber(router, chains, reader)

    async def admitted(message: KafkaMessage, data_type: type[Any]) -> CloudEvent[Any] | None:
        return await admit(reader, message, data_type, broker_ref(), service="monitor")

    subscriber = router.subscriber(
        topics.DEPLOYED,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        decoder=raw_body,
        title="monitor:Deployed",
        description="Deployments to watch.",
    )
    router.publisher(
        topics.HEALTH_ALERT,
        schema=CloudEvent[HealthAlert],
        title="monitor:HealthAlert",
        description="Health rule transitions (firing, resolved).",
    )
    router.publisher(
        topics.PREDICTIONS,
        schema=CloudEvent[PredictionsSampled],
        title="monitor:PredictionsSampled",
        description="Sampled rows and predictions of models registered with log_predictions.",
    )

    async def on_deployed(body: bytes, message: KafkaMessage) -> None:
        event = await admitted(message, Deployed)
        if event is not None:
            watch.apply(event)
            await watch.flush()

    subscriber(on_deployed)

    removals = router.subscriber(
        topics.UNDEPLOYED,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        decoder=raw_body,
        title="monitor:Undeployed",
        description="Deployments no longer to watch.",
    )

    async def on_undeployed(body: bytes, message: KafkaMessage) -> None:
        event = await admitted(message, Undeployed)
        if event is not None:
            watch.remove(event)
            await watch.flush()

    removals(on_undeployed)
    return router


def add_chain_subscriber(router: KafkaRouter, chains: ChainBook, reader: Trust) -> None:
    """Every mesh event from the beginning, no group: the status page's event chains."""
    subscriber = router.subscriber(
        *CHAIN_TOPICS,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        decoder=raw_body,
        title="monitor:chains",
        description="Every mesh event, for the status page's event chains.",
    )

    async def on_event(body: bytes) -> None:
        if not reader.accepts(body):
            logger.debug("status page: skipped an event its producer did not sign")
            return
        try:
            chains.add(decode(body))
        except EventDecodeError:
            logger.debug("status page: skipped a record that is not a mesh event")

    subscriber(on_event)
