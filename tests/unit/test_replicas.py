"""Deployer replicas on one home: one at a time at what changes what runs, even across
processes; a killed replica's turn ends with it; the last one to leave knows it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from services.deployer.replicas import Membership, ReplicaLock

HOLDER = """
import sys, time
from pathlib import Path
from services.deployer.replicas import ReplicaLock
lock = ReplicaLock(Path(sys.argv[1]))
lock.__enter__()
print("held", flush=True)
time.sleep(60)
"""


def test_a_replica_waits_for_another_process_and_gets_its_turn_when_that_one_dies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deployer.lock"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "held"
        lock = ReplicaLock(path)
        got = threading.Event()

        def take() -> None:
            with lock, lock:  # re-entrant within this process
                got.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not got.wait(1.0)  # the other process has its turn
        other.kill()  # kill -9: the kernel ends its turn
        assert got.wait(10)
        waiter.join(5)
        with lock:  # and released again after the nested use
            pass
    finally:
        other.kill()
        other.wait()


def test_threads_of_one_replica_take_turns(tmp_path: Path) -> None:
    lock = ReplicaLock(tmp_path / "deployer.lock")
    inside: list[int] = []
    overlaps: list[int] = []

    def work() -> None:
        for _ in range(20):
            with lock:
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_only_the_last_replica_to_leave_is_told_it_is_the_last(tmp_path: Path) -> None:
    path = tmp_path / "deployer.replicas"
    first, second = Membership(path), Membership(path)
    assert not first.last_one()
    second.leave()
    assert first.last_one()
    first.leave()
