"""Deployer replicas that share one home (its state database and its runtimes).

Any number of replicas may consume ``ImageReady`` in one group; during a rebalance two of them
can hold the same event at once. They take turns at everything that changes what runs (a
rollout, a rollback, supervision, the sweep) under one file lock, so the second finds the
first's deployment of the same cause and answers with it. The kernel releases the lock when a
replica dies, so a killed replica never blocks the others, and what it left half-done
("starting") is known to be abandoned by whoever gets the lock next.
"""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from typing import IO


class ReplicaLock:
    """Exclusive across processes (``flock``) and re-entrant within one (an ``RLock``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - held for the process's life
        self._thread_lock = threading.RLock()
        self._depth = 0

    def __enter__(self) -> ReplicaLock:
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._thread_lock.release()


class Membership:
    """Each live replica holds a shared lock on one file; the last to leave can tell."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - held for the process's life
        fcntl.flock(self._file, fcntl.LOCK_SH)

    def last_one(self) -> bool:
        """True when no other replica holds its share (this one then holds the file alone)."""
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def leave(self) -> None:
        self._file.close()
