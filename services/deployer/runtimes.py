"""Where deployments run: a local ``bentoml serve`` process, or a Docker container.

A runtime starts a deployment, waits for ``/readyz``, tells whether it is alive, and stops it.
Handles are strings (a pid, a container id) so the deployer can persist them and re-adopt
deployments after a restart.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import httpx

from bentomesh_contracts.events import ImageReady
from services.deployer.state import Deployment
from services.errors import NotReadyError
from services.runtime.bento_server import LocalBentoServer
from services.runtime.bento_store import own_bento, stored_bento
from services.runtime.ports import free_port

OWNER_ENV = "BENTOMESH_DEPLOYER_OWNER"
DEPLOYMENT_ENV = "BENTOMESH_DEPLOYMENT_ID"


def owner_id(state_path: Path) -> str:
    """Which deployer started a process or container: a digest of its state file's path."""
    import hashlib

    return hashlib.sha256(str(state_path.resolve()).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Started:
    endpoint: str
    handle: str


class Runtime(Protocol):
    name: str

    def pinned(self, image: ImageReady) -> str:
        """The reference this runtime will run for ``image``: only what the mesh built, pinned
        (a bento tag of the local store, an image id the builder recorded); else NotBuiltHere."""
        ...

    def start(self, deployment: Deployment) -> Started: ...

    def wait_ready(self, started: Started, timeout: float) -> None: ...

    def alive(self, handle: str) -> bool: ...

    def stop(self, handle: str) -> None: ...

    def endpoints(self, handle: str) -> list[str] | None:
        """Where the replicas of ``handle`` answer now, for runtimes that move them (Swarm);
        ``None``: one endpoint, fixed when it started."""
        ...

    def logs(self, deployment: Deployment, lines: int = 30) -> str: ...

    def sweep(self, keep: dict[str, str]) -> list[str]:
        """Stop whatever this deployer started that is not ``keep`` (deployment id -> handle):
        leftovers of a crash between starting something and recording it, or between switching
        and stopping the old version. Returns what was stopped."""
        ...


def http_ready(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"{endpoint}/readyz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _pid_alive(pid: int) -> bool:
    """True for a running process (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


WORKER_MODULES = ("_bentoml_impl.worker.service", "services.runtime.serve_one")


def kill_orphaned_workers(port: int) -> list[int]:
    """Kill BentoML workers still listening on ``port`` after their server died.

    Workers run in sessions of their own: when ``bentoml serve`` is killed (-9, OOM), they live
    on and keep the port, so a restart on it could not bind and an outage would look healthy.
    Only BentoML worker processes (``bentoml serve``'s or ``serve_one``) are touched."""
    import psutil

    killed = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None or not conn.laddr:
            continue
        if conn.laddr.port != port:
            continue
        try:
            process = psutil.Process(conn.pid)
            if not any(part in WORKER_MODULES for part in process.cmdline()):
                continue
            process.kill()
            process.wait(5)
            killed.append(conn.pid)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            continue
    return killed


class ProcessRuntime:
    """A bento's server (``serve_one``, or ``bentoml serve`` for several workers) as a child in
    its own session, so it outlives a deployer restart."""

    name = "process"

    def __init__(self, log_dir: Path, host: str = "127.0.0.1", owner: str = "") -> None:
        self.log_dir = log_dir
        self.host = host
        self.owner = owner  # marks this deployer's processes (environment), for the sweep
        self._children: dict[int, LocalBentoServer] = {}

    def _log_path(self, deployment_id: str) -> Path:
        return self.log_dir / f"{deployment_id}.log"

    def pinned(self, image: ImageReady) -> str:
        own_bento(image.model_name, image.model_version, image.bento_tag)
        stored_bento(image.bento_tag)
        return image.bento_tag

    def start(self, deployment: Deployment) -> Started:
        stored_bento(deployment.ref)  # checked again: a restart may come long after
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # a restart keeps the deployment's port, so its endpoint (and whoever watches it) holds
        port = urlparse(deployment.endpoint).port if deployment.endpoint else None
        if port is not None:
            kill_orphaned_workers(port)
        server = LocalBentoServer(
            deployment.ref,
            port=port or free_port(),
            host=self.host,
            log_path=self._log_path(deployment.id),
            metrics_dir=self.log_dir / f"{deployment.id}.metrics",
            env={OWNER_ENV: self.owner, DEPLOYMENT_ENV: deployment.id},
        ).start()
        assert server.process is not None
        self._children[server.process.pid] = server
        return Started(endpoint=server.url, handle=str(server.process.pid))

    def wait_ready(self, started: Started, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(started.handle):
                raise NotReadyError(f"process {started.handle} exited before it was ready")
            if http_ready(started.endpoint):
                return
            time.sleep(0.1)
        raise NotReadyError(f"{started.endpoint} not ready within {timeout:.0f}s")

    def alive(self, handle: str) -> bool:
        pid = int(handle)
        child = self._children.get(pid)
        if child is not None:
            return child.alive()
        return _pid_alive(pid)

    def stop(self, handle: str) -> None:
        pid = int(handle)
        child = self._children.pop(pid, None)
        if child is not None:
            child.stop()
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)

    def endpoints(self, handle: str) -> list[str] | None:
        return None

    def sweep(self, keep: dict[str, str]) -> list[str]:
        import psutil

        stopped = []
        for process in psutil.process_iter():
            try:
                env = process.environ()
                if not self.owner or env.get(OWNER_ENV) != self.owner:
                    continue
                handle = keep.get(env.get(DEPLOYMENT_ENV, ""))
                family = {process.pid, *(p.pid for p in process.parents())}
                if handle is not None and int(handle) in family:
                    continue
                process.kill()
                stopped.append(str(process.pid))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return stopped

    def logs(self, deployment: Deployment, lines: int = 30) -> str:
        path = self._log_path(deployment.id)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
