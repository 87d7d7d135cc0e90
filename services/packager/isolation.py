"""Packaging in worker processes that hold no secrets (see :mod:`services.packager.worker`).

Workers start on first use, one per concurrent build, and live on: the ML libraries are imported
once. A worker that dies mid-job (a pickle that calls ``os._exit``, a segfault, OOM) is replaced,
and the job fails with a sentence saying so.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from typing import Any

from bentomesh_contracts.events import BentoBuilt, ModelRegistered
from services import errors
from services.errors import StageError, UnloadableArtifact
from services.packager.pipeline import PackagedBento
from services.packager.settings import PackagerSettings
from services.runtime.bento_server import model_environment


class Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.packager.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=model_environment(),  # no keys location, token or Kafka credentials
            text=True,
            bufsize=1,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, registration: ModelRegistered, chain_id: str, progress: Any) -> PackagedBento:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        job = {"registration": registration.model_dump(mode="json"), "chain_id": chain_id}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            message = json.loads(line)
            if "progress" in message:
                progress(message["progress"])
            elif "error" in message:
                raise _rebuilt(message["error"])
            else:
                return PackagedBento(BentoBuilt.model_validate(message["built"]), message["reused"])
        code = self.process.wait()
        raise UnloadableArtifact(
            f"the packaging worker exited (code {code}) while packaging "
            f"{registration.model_name}:{registration.model_version}: the artifact ended the "
            "process that loaded it; it was not packaged"
        )

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _rebuilt(error: dict[str, Any]) -> Exception:
    """The worker's error as the same :class:`StageError` class, or a plain one."""
    cls = getattr(errors, error["class"], None)
    if isinstance(cls, type) and issubclass(cls, StageError):
        return cls(error["reason"], details=error.get("details"))
    return RuntimeError(f"{error['class']}: {error['reason']}")


class IsolatedPackager:
    """The ``Package`` seam of the packager stage, run in secret-free workers."""

    def __init__(self) -> None:
        self.idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()

    def __call__(
        self,
        registration: ModelRegistered,
        *,
        chain_id: str,
        settings: PackagerSettings,
        progress: Any,
    ) -> PackagedBento:
        try:
            worker = self.idle.get_nowait()
        except queue.Empty:
            worker = Worker()
        try:
            result = worker.run(registration, chain_id, progress)
        finally:
            if worker.alive():
                self.idle.put(worker)
        return result

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return
