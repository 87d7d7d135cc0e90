"""Alert deliveries that are never lost: one outbox per sink (Kafka, a webhook).

A transition is put in the outbox when it happens and leaves it only once the sink acknowledged
it; until then the same delivery is retried with capped exponential backoff, and those behind it
wait (in order). The outbox is kept in a file, so what was pending when the monitor stopped is
delivered after it starts again. Each delivery is built once (the Kafka event with its id, the
webhook body), so a retry is the same message and receivers can drop duplicates. Checks never
wait for a sink.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger("bentomesh.monitor")

Deliver = Callable[[dict[str, Any]], Awaitable[None]]
_claims: list[IO[bytes]] = []  # held for the life of the process


def claimed(path: Path) -> Path:
    """This process's own outbox file: ``path``, or ``NAME-2.jsonl`` and so on while other
    monitors on the same home hold those. A file left by a monitor that stopped is taken by
    the next one to start, and what was pending in it is delivered then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        candidate = path if number == 1 else path.with_name(f"{path.stem}-{number}{path.suffix}")
        handle = open(candidate.with_name(candidate.name + ".lock"), "ab")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _claims.append(handle)
        return candidate
    raise AssertionError("unreachable")


class Outbox:
    def __init__(
        self,
        name: str,
        deliver: Deliver,
        path: Path | None = None,
        *,
        backoff_s: float = 0.5,
        cap_s: float = 30.0,
    ) -> None:
        self.name = name
        self.deliver = deliver
        self.path = path
        self.backoff_s = backoff_s
        self.cap_s = cap_s
        self.items: deque[dict[str, Any]] = deque(self._load())
        self.delivered = 0
        self._ready = asyncio.Event()
        if self.items:
            self._ready.set()

    def _load(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(item) + "\n" for item in self.items))
        os.replace(tmp, self.path)  # atomic: a crash leaves the old list or the new one

    def put(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._save()
        self._ready.set()

    async def run(self) -> None:
        """Deliver the oldest item until acknowledged, then the next; forever."""
        failures = 0
        while True:
            if not self.items:
                self._ready.clear()
                await self._ready.wait()
                continue
            item = self.items[0]
            try:
                await self.deliver(item)
            except Exception as exc:
                failures += 1
                delay = min(self.cap_s, self.backoff_s * 2 ** min(failures - 1, 10))
                logger.warning(
                    "%s: delivery failed (%s); %d pending, retrying in %.1f s",
                    self.name, exc, len(self.items), delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.items.popleft()
            self.delivered += 1
            self._save()
