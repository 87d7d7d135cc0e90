"""BentoML's request timeout, without its timer leak.

BentoML 1.4's ``TimeoutMiddleware`` arms a ``loop.call_later(timeout)`` per request and never
cancels it: with the 30 s timeout, a model serving 2,000 requests a second holds 60,000 live
timers and futures. Serving the same bento, that alone took p99 from 29 ms to 100-340 ms at
c=32 (the heap of timers and the garbage collector's walks over it). :class:`Deadline` keeps its
behaviour (a 504 with the same body when no response has started within the timeout; none once
it has) and drops its timer when the response starts. :func:`install` puts it in BentoML's
place before the service's app is built.

This module imports nothing of BentoMesh: it runs inside bentos.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Deadline:
    """ASGI middleware: ``timeout`` seconds for a response to start, else 504."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False
        deadline = asyncio.timeout(self.timeout)

        async def send_and_stop_the_clock(message: Any) -> None:
            nonlocal started
            if not started:
                started = True
                deadline.reschedule(None)  # a started response may take its time (streams)
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, send_and_stop_the_clock)
        except TimeoutError:
            if started or not deadline.expired():  # not ours to answer
                raise
            body = json.dumps(
                {"error": f"Not able to process the request in {self.timeout} seconds"}
            ).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 504, "headers": headers})
            await send({"type": "http.response.body", "body": body})


def install() -> None:
    """Use :class:`Deadline` wherever BentoML builds its timeout middleware (it imports the
    class when it builds an app, so this must run before: at the template's import)."""
    from bentoml._internal.server.http import traffic

    traffic.TimeoutMiddleware = Deadline  # type: ignore[misc, assignment]
