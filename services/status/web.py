"""The status page (``/ui``) and its JSON (``/api/status``), as small ASGI apps.

The page is one static HTML document; its script polls ``/api/status`` every second and redraws,
so it updates live without a reload and needs no build step or external assets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson

Snapshot = Callable[[], dict[str, Any]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def page_app() -> Callable[[dict[str, Any], Any, Send], Awaitable[None]]:
    html = resources.files("services.status").joinpath("page.html").read_bytes()

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        await _respond(send, 200, html, "text/html; charset=utf-8")

    return app


def api_app(snapshot: Snapshot) -> Callable[[dict[str, Any], Any, Send], Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        await _respond(send, 200, orjson.dumps(snapshot()), "application/json")

    return app
