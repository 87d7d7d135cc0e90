"""``bentomesh up`` as a user runs it: a child process in its own process group whose output
is read as it comes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from services.runtime.ports import free_port

STARTED = re.compile(r"(\w+): started \(pid (\d+), http (\S+)\)")


def up_env(home: Path, *, kafka: str | None = None, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "BENTOMESH_HOME": str(home),
        "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": kafka or f"127.0.0.1:{free_port()}",
        "BENTOMESH_RUNTIME": "process",
        "COLUMNS": "200",
        **extra,
    }


class Up:
    """``python -m services.cli.main up``; :meth:`wait_up` until it says "mesh up"."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # up leads its own process group, as in a shell job
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float = 180) -> dict[str, tuple[int, str]]:
        """Each service's pid and URL, once the mesh is up."""
        deadline = time.monotonic() + timeout
        while not any("mesh up" in line for line in self.lines):
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, self.output
            time.sleep(0.2)
        return {m[1]: (int(m[2]), m[3]) for m in STARTED.finditer(self.output)}

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        """Ctrl-C, as a terminal sends it; the exit code."""
        self.process.send_signal(signum)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """After a failure: kill -9 of ``up`` and of everything it started (the broker and the
        services run in sessions of their own, the model servers in theirs)."""
        if self.process.poll() is not None:
            return
        everything = family(self.process.pid)
        for pid in everything:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


def family(pid: int) -> set[int]:
    try:
        process = psutil.Process(pid)
        return {pid, *(c.pid for c in process.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def register_classifier(
    name: str, version: str, *, home: Path, kafka: str, artifact_root: Path
) -> None:
    """A small fitted classifier on features a, b, c, registered as the training job would."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from bentomesh_contracts.keys import KeyStore
    from bentomesh_contracts.publish import publish_model_registered

    x = np.random.default_rng(0).normal(size=(200, 3))
    path = artifact_root / f"{name}-{version}.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
    publish_model_registered(
        path,
        bootstrap_servers=kafka,
        signer=KeyStore(home / "keys").signer("training"),
        name=name,
        version=version,
        task="classification",
        features=["a", "b", "c"],
    )
