"""Request bodies over ``BENTOMESH_MAX_BODY_BYTES`` are refused with 413 before they are read.

This module imports nothing of BentoMesh: it runs inside bentos.
"""

from __future__ import annotations

import json
import os
from typing import Any

MAX_BODY_BYTES = int(os.environ.get("BENTOMESH_MAX_BODY_BYTES") or 10 << 20)


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, refused before it is read
    when its Content-Length says so, else as soon as it grows past the limit."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        refused = False

        async def limited() -> Any:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # answered here; the app sees the client go away
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Any) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited, send_unless_refused)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(
            {"error": f"request body over {self.max_bytes} bytes (BENTOMESH_MAX_BODY_BYTES)"}
        ).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def limit_body(service: Any) -> None:
    """Put :class:`BodyLimit` in front of a ``@bentoml.service`` (a Service object at runtime)."""
    service.add_asgi_middleware(BodyLimit)
