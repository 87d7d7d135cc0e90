"""Alerts are at least once and in order: the broker refuses every connection and the webhook
receiver is down for a minute while an endpoint goes down and up twice. Afterwards both get
all four transitions, in order, each once (the monitor service as a process, a real broker
behind a proxy that the test cuts, a real HTTP receiver)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bentomesh_contracts import topics
from bentomesh_contracts.events import HealthAlert
from bentomesh_contracts.kafka import KafkaSettings
from services.mesh.local import LocalMesh
from services.monitor.sinks import SIGNATURE_HEADER, verify
from services.registry import SERVICES
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.ports import free_port
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics
from tests.integration.conftest import deployed_event
from tests.integration.faults.report import FaultRow
from tests.kafka_helpers import Collector, send_signed
from tests.model_server import ModelServer
from tests.monitor_status import wait_until_checked_healthy
from tests.socket_proxy import SocketProxy

pytestmark = [pytest.mark.faults, pytest.mark.integration]

OUTAGE_S = 60.0
SECRET = "outage-secret"


class Receiver:
    """The operator's webhook endpoint: started late (down until then), records what came."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[bytes] = []
        self._server: uvicorn.Server | None = None

    def start(self) -> None:
        async def hook(request: Request) -> Response:
            body = await request.body()
            assert verify(body, request.headers[SIGNATURE_HEADER], SECRET)
            self.bodies.append(body)
            return Response(status_code=204)

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        while not self._server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


@pytest.fixture
def rig(session_home: Path) -> Iterator[tuple[KafkaSettings, SocketProxy, LocalMesh, Receiver]]:
    broker_port, proxy_port = free_port(), free_port()
    proxy = SocketProxy(proxy_port, ("127.0.0.1", broker_port))
    receiver = Receiver()
    log = session_home / "broker-alert-outage.log"
    # the broker sends clients to the proxy, so every connection goes through it
    with EmbeddedBroker(broker_port, advertised=f"127.0.0.1:{proxy_port}", log_path=log):
        proxy.start()
        kafka = KafkaSettings(bootstrap_servers=proxy.address)
        asyncio.run(ensure_topics(kafka, partitions=1))
        monitor = LocalMesh(
            kafka,
            RuntimeSettings(home=session_home / "mesh-alert-outage"),
            services=tuple(s for s in SERVICES if s.name == "monitor"),
            free_ports=True,
            extra_env={
                "BENTOMESH_MONITOR_INTERVAL_S": "0.5",
                "BENTOMESH_MONITOR_SYNC_S": "0",
                "BENTOMESH_MONITOR_WEBHOOK_URL": f"http://127.0.0.1:{receiver.port}/hook",
                "BENTOMESH_MONITOR_WEBHOOK_SECRET": SECRET,
            },
        )
        monitor.start(timeout=60)
        try:
            yield kafka, proxy, monitor, receiver
        finally:
            monitor.stop()
            receiver.stop()
            proxy.cut()


@pytest.mark.timeout(600)
def test_alerts_wait_out_a_refusing_broker_and_a_webhook_down_for_a_minute(
    rig: tuple[KafkaSettings, SocketProxy, LocalMesh, Receiver], matrix: list[FaultRow]
) -> None:
    kafka, proxy, monitor, receiver = rig
    server = ModelServer().start()
    event = deployed_event(server, "alert-outage", "1")
    deployment = event.data.deployment_id

    def flap() -> None:
        """Down, up, down, up: four transitions, each given time to be seen."""
        nonlocal server
        for _ in range(2):
            server.stop()
            time.sleep(4)
            revived = ModelServer()
            revived.port = server.port
            server = revived.start()
            time.sleep(4)

    async def run() -> tuple[list[HealthAlert], list[str], float]:
        status_url = f"{monitor.processes[0].url}/api/status"
        async with Collector(kafka, (topics.HEALTH_ALERT,)) as collector:
            await send_signed(event, kafka)
            # elected (~3 s), watching the deployment, and checked it healthy
            await asyncio.to_thread(
                wait_until_checked_healthy, monitor.processes[0].url, deployment, 60
            )
            proxy.cut()  # the broker refuses every connection from here on
            cut = time.monotonic()
            await asyncio.to_thread(flap)
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut)))
            # the monitor lives on and its checks went on (its /healthz pings the broker: down)
            status = httpx.get(status_url, timeout=5).json()
            [row] = [r for r in status["deployments"] if r["deployment_id"] == deployment]
            assert row["healthy"] is True, row
            proxy.start()
            receiver.start()
            back = time.monotonic()
            deadline = back + 180
            while time.monotonic() < deadline:
                await collector.poll()
                mine = [
                    e for e in collector.events(topics.HEALTH_ALERT)
                    if e.data.deployment_id == deployment
                ]  # fmt: skip
                if len(mine) >= 4 and len(receiver.bodies) >= 4:
                    break
            await asyncio.sleep(2)  # anything further (a duplicate) would show now
            await collector.poll()
            mine = [
                e for e in collector.events(topics.HEALTH_ALERT)
                if e.data.deployment_id == deployment
            ]  # fmt: skip
            return mine, [e.id for e in mine], time.monotonic() - back

    try:
        alerts, ids, delay = asyncio.run(run())
    finally:
        server.stop()
    hooks = [HealthAlert.model_validate_json(body) for body in receiver.bodies]
    expected = ["firing", "resolved", "firing", "resolved"]
    matrix.append(
        FaultRow(
            f"broker refuses connections and webhook down ({OUTAGE_S:.0f} s), endpoint flaps",
            1,
            len(expected),
            len(expected) - len(set(ids)),
            len(ids) - len(set(ids)),
            delay,
            f"{len(alerts)} alerts on Kafka, {len(hooks)} webhook deliveries after the outage",
        )
    )
    assert [a.data.state for a in alerts] == expected
    assert len(set(ids)) == len(ids) == 4
    assert [h.state for h in hooks if h.deployment_id == deployment] == expected
