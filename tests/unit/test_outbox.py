"""The alert outbox: a sink that fails delays deliveries but loses none, keeps their order, and
what was pending when the monitor stopped is delivered after it starts again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from services.monitor.outbox import Outbox


async def test_a_failing_sink_gets_every_item_afterwards_in_order(tmp_path: Path) -> None:
    received: list[int] = []
    down = {"until": 7}
    attempts = 0

    async def deliver(item: dict[str, Any]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= down["until"]:
            raise ConnectionError("receiver down")
        received.append(item["n"])

    outbox = Outbox("test", deliver, tmp_path / "outbox.jsonl", backoff_s=0.001, cap_s=0.01)
    sender = asyncio.create_task(outbox.run())
    for n in range(5):
        outbox.put({"n": n})
        await asyncio.sleep(0.002)
    for _ in range(500):
        if len(received) == 5:
            break
        await asyncio.sleep(0.01)
    sender.cancel()
    assert received == [0, 1, 2, 3, 4]
    assert attempts == 7 + 5
    assert not outbox.items
    assert (tmp_path / "outbox.jsonl").read_text() == ""


async def test_pending_items_survive_a_restart(tmp_path: Path) -> None:
    async def refuse(item: dict[str, Any]) -> None:
        raise ConnectionError("broker down")

    first = Outbox("kafka", refuse, tmp_path / "kafka.jsonl")
    first.put({"n": 1})
    first.put({"n": 2})
    received: list[int] = []

    async def accept(item: dict[str, Any]) -> None:
        received.append(item["n"])

    again = Outbox("kafka", accept, tmp_path / "kafka.jsonl")  # the monitor started again
    sender = asyncio.create_task(again.run())
    for _ in range(100):
        if len(received) == 2:
            break
        await asyncio.sleep(0.01)
    sender.cancel()
    assert received == [1, 2]
