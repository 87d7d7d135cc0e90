"""Deployer replicas that share one home (its state database and its runtimes).

Any number of replicas may consume ``ImageReady`` in one group; during a rebalance two of them
can hold the same event at once. Two kinds of file lock keep them apart:
- a lock per model, held for a whole rollout (or rollback, undeploy, restart) of that model: a
  second replica with the same event waits, then finds the first's deployment of the same cause
  and answers with it. Different models roll out at the same time.
- one short lock for each change of what runs or what the store says (start a server, switch,
  sweep), never held while a server gets ready.
The kernel releases a lock when a replica dies, so a killed replica never blocks the others. A
deployment left "starting" is abandoned when its model's lock is free: whoever finds it so
removes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


class ModelLocks:
    """One lock per model, across threads and replicas: a model's versions roll out one at a
    time while different models roll out together. ``flock`` on a file per model: each hold
    opens its own file description, so two threads of one process exclude each other too."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory

    @contextmanager
    def hold(self, model: str, *, wait: bool = True) -> Iterator[bool]:
        """Yields True once held; with ``wait=False``, False at once when someone else holds it."""
        name = hashlib.sha256(model.encode()).hexdigest()[:24]
        with open(self.directory / f"{name}.lock", "ab") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
