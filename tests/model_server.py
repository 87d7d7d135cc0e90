"""A real HTTP model server whose health the tests control: up, down, slow, or failing.

It exposes BentoML's endpoint names and metric names, so the monitor reads it exactly as it reads
a served bento; it starts in well under a second, so many can run in one test.
"""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.runtime.ports import free_port


class ModelServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.delay_s = 0.0
        self.fail = False
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bentoml_service_request",
            "requests",
            ["endpoint", "http_response_code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "bentoml_service_request_duration_seconds",
            "latency",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> Starlette:
        async def ok(_: Request) -> Response:
            return PlainTextResponse("\n")

        async def metrics(_: Request) -> Response:
            return Response(generate_latest(self.registry), media_type="text/plain")

        async def predict(_: Request) -> Response:
            started = time.perf_counter()
            await asyncio.sleep(self.delay_s)
            code = 500 if self.fail else 200
            self.requests.labels("/predict", str(code)).inc()
            self.duration.labels("/predict").observe(time.perf_counter() - started)
            return JSONResponse({"labels": ["a"]}, status_code=code)

        return Starlette(
            routes=[
                Route("/livez", ok),
                Route("/readyz", ok),
                Route("/metrics", metrics),
                Route("/predict", predict, methods=["POST"]),
            ]
        )

    def start(self) -> ModelServer:
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "model server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop answering entirely (connection refused), like a dead deployment."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = None
        self._thread = None
