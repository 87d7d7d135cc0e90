"""In-memory doubles behind the services' seams, for unit tests only."""

from __future__ import annotations

import time

from bentomesh_contracts.events import ImageReady
from services.deployer.runtimes import Started
from services.deployer.state import Deployment


class MemoryRuntime:
    """Starts nothing; every started handle is alive until stopped."""

    def __init__(self, *, fail_start: bool = False, ready_after_s: float = 0.0) -> None:
        self.fail_start = fail_start
        self.ready_after_s = ready_after_s  # how long a started server takes to be ready
        self.running: set[str] = set()
        self.count = 0
        self.getting_ready = 0  # servers waited on right now
        self.most_getting_ready = 0

    def pinned(self, image: ImageReady) -> str:
        return image.bento_tag

    def start(self, deployment: Deployment) -> Started:
        if self.fail_start:
            raise ConnectionError("engine went away")
        self.count += 1
        handle = f"h{self.count}"
        self.running.add(handle)
        return Started(endpoint=f"http://127.0.0.1:{9000 + self.count}", handle=handle)

    def wait_ready(self, started: Started, timeout: float) -> None:
        self.getting_ready += 1
        self.most_getting_ready = max(self.most_getting_ready, self.getting_ready)
        time.sleep(self.ready_after_s)
        self.getting_ready -= 1

    def alive(self, handle: str) -> bool:
        return handle in self.running

    def stop(self, handle: str) -> None:
        self.running.discard(handle)

    def endpoints(self, handle: str) -> list[str] | None:
        return None

    def logs(self, deployment: Deployment, lines: int = 30) -> str:
        return ""

    def sweep(self, keep: dict[str, str]) -> list[str]:
        """Stop what ``keep`` does not name, as the real runtimes do."""
        leftovers = sorted(self.running - set(keep.values()))
        self.running -= set(leftovers)
        return leftovers
