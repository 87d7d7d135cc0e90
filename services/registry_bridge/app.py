"""``services.registry_bridge.app:app``: the bridge from MLflow as a mesh service.

It takes MLflow's webhooks at ``POST /webhooks/mlflow`` (and polls the registry when
``BENTOMESH_MLFLOW_POLL_S`` is set), publishes ``ModelRegistered`` signed with its own key, and
reads ``Deployed`` and ``StageFailed`` to write each version's outcome back to MLflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bentomesh_contracts import topics
from bentomesh_contracts.codec import decode_as, partition_key
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import Deployed, EventData, ModelRegistered, StageFailed
from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.training import default_artifact_dir
from services.registry_bridge.bridge import Bridge
from services.registry_bridge.ledger import Ledger
from services.registry_bridge.metrics import BridgeMetrics
from services.registry_bridge.mlflow_registry import MlflowRegistry
from services.registry_bridge.settings import BridgeSettings
from services.registry_bridge.webhook import ALIAS_CREATED, VERSION_CREATED, Refused, verify
from services.runtime.admit import admitted, raw_body
from services.runtime.app import create_service_app
from services.runtime.control import guarded
from services.runtime.settings import RuntimeSettings
from services.runtime.stage import publish_event
from services.runtime.trust import Trust

logger = logging.getLogger("bentomesh.registry_bridge")
PRODUCER = "bridge"
SERVICE = "registry_bridge"


def create_app(
    settings: BridgeSettings | None = None,
    *,
    kafka: KafkaSettings | None = None,
    trust: Trust | None = None,
    registry: MlflowRegistry | None = None,
) -> Any:
    settings = settings or BridgeSettings()
    kafka = kafka or KafkaSettings()
    trust = trust or Trust.load(PRODUCER)
    if settings.tracking_uri is None and registry is None:
        raise SystemExit("set BENTOMESH_MLFLOW_TRACKING_URI: the bridge follows that registry")
    registry = registry or MlflowRegistry(settings.tracking_uri or "")
    ledger = Ledger(settings.ledger_path or RuntimeSettings().home / "registry-bridge.db")
    broker_box: list[Any] = []

    async def publish(event: CloudEvent[Any]) -> None:
        await publish_event(broker_box[0], event, trust)

    bridge = Bridge(settings, registry, ledger, default_artifact_dir(), publish)

    def routers(broker_ref: Any, metrics: Any) -> KafkaRouter:
        broker_box.append(broker_ref())
        bridge.metrics = BridgeMetrics(metrics.registry)
        return outcome_router(bridge, trust, broker_ref)

    app = create_service_app(
        "registry_bridge",
        routers,
        kafka=kafka,
        routes=[
            ("/webhooks/mlflow", webhook_app(bridge, settings)),
            ("/api/registrations", guarded(registrations_app(ledger))),
        ],
    )
    tasks: list[asyncio.Task[None]] = []

    async def resend(raw: str) -> None:
        event = decode_as(raw.encode(), ModelRegistered)
        await broker_box[0].publish(raw.encode(), topics.MODEL_REGISTERED, key=partition_key(event))

    async def start() -> None:
        resent = await bridge.resend_unsent(resend)
        if resent:
            logger.info("sent again %d registrations claimed before a restart", resent)
        tasks.append(asyncio.create_task(keep_up(bridge, settings, resend)))
        logger.info(
            "following %s (%s; models: %s): webhooks at POST /webhooks/mlflow%s, %s",
            settings.tracking_uri,
            f"alias {settings.alias}" if settings.alias else "each new version",
            ", ".join(settings.models) or "all",
            "" if settings.webhook_secret else " refused (no BENTOMESH_MLFLOW_WEBHOOK_SECRET)",
            f"a poll every {settings.poll_interval_s:g} s"
            if settings.poll_interval_s
            else "no polling",
        )

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.after_startup(start)
    app.on_shutdown(stop)
    app.bridge = bridge  # type: ignore[attr-defined]
    return app


async def keep_up(
    bridge: Bridge, settings: BridgeSettings, resend: Callable[[str], Awaitable[None]]
) -> None:
    """Send again what a failed publish left claimed, and poll the registry when polling."""
    while True:
        try:
            resent = await bridge.resend_unsent(resend)
            if resent:
                logger.info("sent %d registrations the broker had refused", resent)
            if settings.poll_interval_s > 0:
                for line in await bridge.poll_once():
                    if not line.endswith(": unchanged"):
                        logger.info("poll: %s", line)
        except Exception as exc:  # MLflow or the broker unreachable: try again next round
            logger.warning("keeping up with MLflow failed: %s", exc)
        await asyncio.sleep(settings.poll_interval_s or 30.0)


def outcome_router(bridge: Bridge, trust: Trust, broker_ref: Any) -> KafkaRouter:
    """Outcomes of the chains the bridge started, from their signed events only. No consumer
    group: every bridge reads every outcome (bridges following other registries or models
    share the topics) from the beginning, and skips what its ledger shows already."""
    router = KafkaRouter()
    reader = trust.history_reader()

    def handler(data_type: type[EventData]) -> Any:
        async def on_outcome(body: bytes, message: KafkaMessage) -> None:
            event = await admitted(reader, message, data_type, broker_ref(), service=SERVICE)
            if event is not None:
                await bridge.outcome(event)

        return on_outcome

    for data_type in (Deployed, StageFailed):
        subscriber = router.subscriber(
            data_type.TOPIC,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            decoder=raw_body,
            title=f"registry_bridge:{data_type.__name__}",
            description="Outcomes to write back to MLflow.",
        )
        subscriber(handler(data_type))
    router.publisher(topics.MODEL_REGISTERED, title="registry_bridge:ModelRegistered")
    return router


def webhook_app(bridge: Bridge, settings: BridgeSettings) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        if settings.webhook_secret is None:
            return JSONResponse(
                {"error": "no webhook secret is configured (BENTOMESH_MLFLOW_WEBHOOK_SECRET)"},
                status_code=401,
            )
        body = await request.body()
        try:
            delivery = verify(
                settings.webhook_secret.get_secret_value(),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                now=time.time(),
                max_skew_s=settings.max_skew_s,
            )
        except Refused as exc:
            logger.warning("webhook refused: %s", exc)
            bridge.metrics.webhooks.labels("refused").inc()
            return JSONResponse({"error": str(exc)}, status_code=401)
        wanted = ALIAS_CREATED if settings.alias else VERSION_CREATED
        if delivery.event != wanted or (settings.alias and delivery.alias != settings.alias):
            bridge.metrics.webhooks.labels("ignored").inc()
            return JSONResponse({"outcome": "ignored", "event": delivery.event})
        if not delivery.model or not delivery.version:
            return JSONResponse({"error": "the payload names no model and version"}, 422)
        try:
            outcome = await bridge.offer(delivery.model, delivery.version)
        except Exception as exc:  # MLflow or the broker unreachable: MLflow delivers again
            logger.warning("webhook %s: %s", delivery.delivery_id, exc)
            bridge.metrics.webhooks.labels("retry").inc()
            return JSONResponse({"error": f"not published yet: {exc}"}, status_code=503)
        status = 422 if outcome.startswith("refused") else 200
        bridge.metrics.webhooks.labels("accepted").inc()
        return JSONResponse({"outcome": outcome, "delivery": delivery.delivery_id}, status)

    return Starlette(routes=[Route("/webhooks/mlflow", receive, methods=["POST"])])


def registrations_app(ledger: Ledger) -> Starlette:
    async def rows(request: Request) -> JSONResponse:
        return JSONResponse([row.__dict__ for row in ledger.rows()])

    return Starlette(routes=[Route("/api/registrations", rows)])


def __getattr__(name: str) -> Any:
    if name == "app":
        return create_app()
    raise AttributeError(name)
