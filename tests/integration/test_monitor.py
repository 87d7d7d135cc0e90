"""The monitor against real HTTP endpoints, without Kafka (the original Python API)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bentomesh_contracts.events import HealthAlert
from services.monitor.checker import Target
from services.monitor.monitor import HealthMonitor, create_health_monitor
from services.monitor.outbox import Outbox
from services.monitor.rules import DEFAULT_RULES, Rule
from services.monitor.sinks import SIGNATURE_HEADER, verify, webhook_delivery, webhook_handler
from services.runtime.ports import free_port
from tests.model_server import ModelServer

pytestmark = pytest.mark.integration

INTERVAL = 0.3


@pytest.fixture
def server() -> Iterator[ModelServer]:
    srv = ModelServer().start()
    yield srv
    srv.stop()


def monitor_for(server: ModelServer, rules: tuple[Rule, ...] = DEFAULT_RULES) -> HealthMonitor:
    return HealthMonitor(
        [Target("dep-1", server.url, "churn", "3")],
        check_interval=INTERVAL,
        rules=rules,
        timeout_s=1.0,
    )


async def cycles(monitor: HealthMonitor, n: int, traffic: Any = None) -> list[HealthAlert]:
    alerts: list[HealthAlert] = []
    async with monitor.session() as session, httpx.AsyncClient(timeout=5) as client:
        for _ in range(n):
            if traffic is not None:
                await traffic(client)
            alerts += await monitor.run_once(session)
            await asyncio.sleep(INTERVAL)
    return alerts


async def test_endpoint_that_stops_answering_fires_critical_then_resolves(
    server: ModelServer,
) -> None:
    monitor = monitor_for(server)
    assert await cycles(monitor, 2) == []
    port = server.port
    server.stop()
    fired = await cycles(monitor, 3)  # within three intervals
    assert [(a.rule, a.severity, a.state) for a in fired] == [
        ("endpoint_down", "critical", "firing")
    ]
    assert fired[0].deployment_id == "dep-1"
    assert await cycles(monitor, 3) == []  # no duplicate while it stays down
    revived = ModelServer()
    revived.port = port
    revived.start()
    try:
        resolved = await cycles(monitor, 3)
    finally:
        revived.stop()
    assert [(a.rule, a.state) for a in resolved] == [("endpoint_down", "resolved")]


async def test_slow_endpoint_fires_the_latency_rule(server: ModelServer) -> None:
    rules = (Rule("p99_latency", "p99_latency_ms", "warning", 200.0, fire_after=2),)
    monitor = monitor_for(server, rules)

    async def traffic(client: httpx.AsyncClient) -> None:
        await asyncio.gather(*(client.post(f"{server.url}/predict") for _ in range(5)))

    assert await cycles(monitor, 2, traffic) == []
    server.delay_s = 0.4
    fired = await cycles(monitor, 3, traffic)
    assert [(a.rule, a.state) for a in fired] == [("p99_latency", "firing")]
    assert fired[0].observed is not None
    assert fired[0].observed > 200


async def test_rising_5xx_rate_fires_the_error_rule(server: ModelServer) -> None:
    rules = (Rule("error_rate_5xx", "error_rate_5xx", "critical", 0.05, fire_after=2),)
    monitor = monitor_for(server, rules)

    async def traffic(client: httpx.AsyncClient) -> None:
        for _ in range(10):
            await client.post(f"{server.url}/predict")

    assert await cycles(monitor, 2, traffic) == []
    server.fail = True
    fired = await cycles(monitor, 3, traffic)
    assert [(a.rule, a.severity, a.state) for a in fired] == [
        ("error_rate_5xx", "critical", "firing")
    ]


async def test_endpoint_that_hangs_delays_no_other_check(server: ModelServer) -> None:
    """A server that accepts connections but never answers is down after one timeout (no
    second wait on ``/livez``) and does not slow the checks of the other endpoints."""
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)  # the kernel accepts; nobody ever answers
    hung_url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    monitor = HealthMonitor(
        [Target("dep-ok", server.url, "churn", "3"), Target("dep-hung", hung_url, "stuck", "1")],
        check_interval=0.2,
        jitter=0.0,
        timeout_s=1.5,
    )
    seen: list[tuple[str, bool, str | None]] = []
    monitor.on_results.append(
        lambda results: seen.extend((r.target.deployment_id, r.live, r.error) for r in results)
    )
    stop = asyncio.Event()
    running = asyncio.create_task(monitor.run(stop))
    await asyncio.sleep(3.2)
    stop.set()
    await running
    hanging.close()
    healthy = [live for dep, live, _ in seen if dep == "dep-ok"]
    hung = [(live, error) for dep, live, error in seen if dep == "dep-hung"]
    assert all(healthy), healthy
    assert len(healthy) >= 10, healthy  # one check every 0.2 s, as if it were alone
    assert 1 <= len(hung) <= 2, hung  # each of its checks waited out one 1.5 s timeout
    assert hung[0] == (False, f"{hung_url}/readyz did not answer in time")


def test_python_api_works_without_kafka(server: ModelServer) -> None:
    import time

    monitor = create_health_monitor(
        services=[{"name": "Churn Model", "url": server.url}], check_interval=0.2
    )
    received: list[HealthAlert] = []
    monitor.add_alert_handler(received.append)
    monitor.start()
    try:
        deadline = time.monotonic() + 20
        while monitor.checks < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        summary = monitor.get_health_summary()
        server.stop()
        while not received:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        monitor.stop()
    assert summary["services"]["churn-model"]["healthy"] is True
    assert received[0].rule == "endpoint_down"
    assert received[0].state == "firing"


async def test_webhook_receiver_verifies_the_signature(server: ModelServer) -> None:
    secret = "s3cret"
    seen: list[tuple[bytes, str]] = []
    attempts: list[int] = []

    async def hook(request: Request) -> Response:
        attempts.append(1)
        if len(attempts) == 1:
            return Response(status_code=503)  # first delivery fails: the sender retries
        seen.append((await request.body(), request.headers[SIGNATURE_HEADER]))
        return Response(status_code=204)

    port = free_port()
    receiver = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="error",
        )
    )
    thread = threading.Thread(target=receiver.run, daemon=True)
    thread.start()
    while not receiver.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    deliver = webhook_delivery(f"http://127.0.0.1:{port}/hook", secret)
    outbox = Outbox("webhook", deliver, backoff_s=0.05)
    sender = asyncio.create_task(outbox.run())
    try:
        monitor = monitor_for(server)
        monitor.add_alert_handler(webhook_handler(outbox))
        server.stop()
        await cycles(monitor, 3)
        for _ in range(100):
            if not outbox.items:
                break
            await asyncio.sleep(0.05)
    finally:
        sender.cancel()
        receiver.should_exit = True
        thread.join(5)
    [(body, signature)] = seen
    assert len(attempts) == 2
    assert verify(body, signature, secret)
    assert not verify(body, signature, "wrong secret")
    assert HealthAlert.model_validate_json(body).rule == "endpoint_down"
