"""The templates' request deadline: BentoML's 504 behaviour, without a timer left per request."""

from __future__ import annotations

import asyncio
from typing import Any

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from services.packager.templates.deadline import Deadline

Messages = list[dict[str, Any]]


def app_that(sleep_before: float, sleep_after: float = 0.0) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(sleep_before)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(sleep_after)
        await send({"type": "http.response.body", "body": b"done"})

    return app


async def call(app: Any) -> Messages:
    sent: Messages = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": "/predict"}, receive, send)
    return sent


def test_a_response_not_started_in_time_is_a_504_like_bentomls() -> None:
    sent = asyncio.run(call(Deadline(app_that(1.0), timeout=0.05)))
    assert sent[0]["status"] == 504
    assert b"Not able to process the request in 0.05 seconds" in sent[1]["body"]


def test_a_started_response_may_take_longer_than_the_deadline() -> None:
    sent = asyncio.run(call(Deadline(app_that(0.0, sleep_after=0.1), timeout=0.05)))
    assert [m.get("status") for m in sent] == [200, None]
    assert sent[1]["body"] == b"done"


def test_no_timer_outlives_its_request() -> None:
    """BentoML's middleware leaves one 30 s timer per request in the loop; ours none."""

    async def timers_left(middleware: type[Any]) -> int:
        app = middleware(app_that(0.0), timeout=30)
        for _ in range(200):
            await call(app)
        return len(asyncio.get_running_loop()._scheduled)  # type: ignore[attr-defined]

    assert asyncio.run(timers_left(TimeoutMiddleware)) == 200  # the leak this replaces
    assert asyncio.run(timers_left(Deadline)) == 0
