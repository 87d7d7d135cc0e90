"""What the gateway saw of each version during a rollout: status and latency of every answer,
and the differences between mirrored answers. Written by the gateway's event loop, read by the
rollout's thread; bounded, so a long rollout keeps only its recent past."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from services.deployer.compare import Differences

WARM_UP = 50
"""A version's first answers (imports, caches, the first batch) are left out of its latency."""


@dataclass(frozen=True)
class Window:
    """Answers of one version over a window."""

    requests: int
    errors: int  # 5xx, or no answer at all
    p99_ms: float | None
    timed: int = 0  # answers behind p99_ms: those after the version's warm-up

    @property
    def error_share(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def p99(latencies: list[float]) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class TrafficLog:
    def __init__(self, keep: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, deque[tuple[float, int, float | None]]] = defaultdict(
            lambda: deque(maxlen=keep)
        )
        self._seen: dict[str, int] = defaultdict(int)
        self._pairs: dict[str, deque[tuple[float, Differences]]] = defaultdict(
            lambda: deque(maxlen=keep)
        )
        self._dropped: dict[str, int] = defaultdict(int)

    def answered(self, deployment_id: str, status: int, latency_ms: float) -> None:
        with self._lock:
            self._seen[deployment_id] += 1
            warm = self._seen[deployment_id] > WARM_UP
            self._answers[deployment_id].append((time.time(), status, latency_ms if warm else None))

    def compared(self, candidate_id: str, differences: Differences) -> None:
        with self._lock:
            self._pairs[candidate_id].append((time.time(), differences))

    def dropped(self, candidate_id: str) -> None:
        with self._lock:
            self._dropped[candidate_id] += 1

    def window(self, deployment_id: str, since: float) -> Window:
        with self._lock:
            recent = [(s, ms) for at, s, ms in self._answers.get(deployment_id, ()) if at >= since]
        errors = sum(1 for status, _ in recent if status >= 500)
        timed = [ms for _, ms in recent if ms is not None]
        return Window(len(recent), errors, p99(timed), len(timed))

    def differences(self, candidate_id: str, since: float) -> tuple[Differences, int]:
        """Summed differences of the mirrored pairs since ``since``, and copies dropped so far."""
        total = Differences()
        with self._lock:
            recent = [d for at, d in self._pairs.get(candidate_id, ()) if at >= since]
            dropped = self._dropped.get(candidate_id, 0)
        for each in recent:
            total.add(each)
        return total, dropped

    def forget(self, *deployment_ids: str) -> None:
        with self._lock:
            for each in deployment_ids:
                self._answers.pop(each, None)
                self._seen.pop(each, None)
                self._pairs.pop(each, None)
                self._dropped.pop(each, None)
