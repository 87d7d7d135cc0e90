"""The stable endpoint of every model: ``/models/<name>/<route>`` proxies to its active version.

Clients keep one URL per model across versions; the switch to a new version is the store's atomic
``activate``, read on every request. ``GET /models`` lists what is served where.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.deployer.state import DeploymentStore

Scope = dict[str, Any]

_HOP_HEADERS = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}


class BodyTooLarge(Exception):
    pass


async def _read_body(receive: Any, limit: int, declared: int | None) -> bytes:
    """The request body in linear time (chunks joined once), refused past ``limit`` bytes
    before it is read when Content-Length says so, else as soon as it grows past it."""
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Any, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Gateway:
    """An ASGI app; mount it at ``/models``."""

    def __init__(
        self, store: DeploymentStore, *, timeout: float = 60.0, max_body_bytes: int = 10 << 20
    ) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=256))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].split("/models", 1)[-1].strip("/")
        if not path:
            listing = [
                {
                    "model": d.model,
                    "version": d.version,
                    "runtime": d.runtime,
                    "endpoint": d.endpoint,
                    "deployment_id": d.id,
                }
                for d in self.store.all_active()
            ]
            await _send_json(send, 200, listing)
            return
        model, _, rest = path.partition("/")
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(send)  # before anything else: nothing of it is read
            return
        active = self.store.active(model)
        if active is None or not active.endpoint:
            await _send_json(send, 404, {"error": f"no active deployment of model {model!r}"})
            return
        if not rest:
            await _send_json(
                send, 200, {"model": model, "version": active.version, "endpoint": active.endpoint}
            )
            return
        try:
            body = await _read_body(receive, self.max_body_bytes, declared)
        except BodyTooLarge:
            await self._too_large(send)
            return
        query = scope.get("query_string", b"")
        url = f"{active.endpoint}/{rest}" + (f"?{query.decode()}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_HEADERS]
        try:
            upstream = await self.client.request(
                scope["method"], url, content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            await _send_json(send, 502, {"error": f"{model} {active.version}: {exc!r}"})
            return
        out_headers = [
            (k.encode(), v.encode())
            for k, v in upstream.headers.items()
            if k.encode().lower() not in _HOP_HEADERS
        ]
        out_headers.append((b"x-bentomesh-version", active.version.encode()))
        await send(
            {"type": "http.response.start", "status": upstream.status_code, "headers": out_headers}
        )
        await send({"type": "http.response.body", "body": upstream.content})

    async def _too_large(self, send: Any) -> None:
        message = f"request body over {self.max_body_bytes} bytes (BENTOMESH_MAX_BODY_BYTES)"
        await _send_json(send, 413, {"error": message})

    async def aclose(self) -> None:
        await self.client.aclose()
