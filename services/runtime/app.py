"""The process of one service: its broker, its stage, and HTTP ``/metrics`` and ``/healthz``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faststream.asgi import AsgiFastStream, make_ping_asgi
from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry, make_asgi_app

from bentomesh_contracts.kafka import KafkaSettings
from services.runtime.broker import create_broker
from services.runtime.metrics import StageMetrics
from services.runtime.settings import RuntimeSettings
from services.runtime.stage import StageSpec, stage_router
from services.runtime.topics import ensure_topics
from services.runtime.trust import Trust

RouterFactory = Callable[[Callable[[], KafkaBroker], StageMetrics], KafkaRouter]


def create_service_app(
    service: str,
    router_factory: RouterFactory,
    *,
    kafka: KafkaSettings | None = None,
    runtime: RuntimeSettings | None = None,
    routes: list[tuple[str, Any]] | None = None,
) -> AsgiFastStream:
    """Compose a service: one broker, its own Prometheus registry, the stage's router."""
    kafka = kafka or KafkaSettings()
    runtime = runtime or RuntimeSettings()
    registry = CollectorRegistry()
    broker = create_broker(kafka, service=service, registry=registry)
    broker.include_router(router_factory(lambda: broker, StageMetrics(registry)))

    async def create_topics() -> None:
        await ensure_topics(kafka, partitions=runtime.partitions)

    return AsgiFastStream(
        broker,
        asgi_routes=[
            ("/metrics", make_asgi_app(registry)),
            ("/healthz", make_ping_asgi(broker, timeout=5.0)),
            *(routes or []),
        ],
        on_startup=[create_topics],
        asyncapi_path="/docs/asyncapi",
    )


def create_stage_app(
    spec: StageSpec[Any, Any], *, kafka: KafkaSettings | None = None, trust: Trust | None = None
) -> AsgiFastStream:
    """A service that is one stage: its router in its own app (packager, builder, deployer).
    ``trust`` defaults to the stage's keys from the keys directory."""
    stage_trust = trust or Trust.load(spec.stage)
    return create_service_app(
        spec.stage,
        lambda broker_ref, metrics: stage_router(
            spec, broker_ref=broker_ref, metrics=metrics, trust=stage_trust
        ),
        kafka=kafka,
    )


class PrefixDispatch:
    """Send HTTP requests under given path prefixes to other ASGI apps; the rest (and the
    lifespan, which starts the broker) to the service app. FastStream's own routes match exact
    paths only; a gateway needs prefixes."""

    def __init__(self, app: AsgiFastStream, routes: dict[str, Any]) -> None:
        self.app = app
        self.routes = routes
        self.broker = app.broker

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix, route in self.routes.items():
                if path == prefix or path.startswith(prefix + "/"):
                    await route(scope, receive, send)
                    return
        await self.app(scope, receive, send)
