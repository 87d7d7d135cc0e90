"""The mesh on one machine: the embedded broker (unless one answers) and every service process."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.keys import KeyStore, SigningSettings, warn_insecure
from bentomesh_contracts.topics import ALL_TOPICS
from services.errors import BrokerUnavailableError, MeshAlreadyRunning, MeshError
from services.registry import ALL_SERVICES, SERVICES, ServiceInfo
from services.registry_bridge.settings import BridgeSettings
from services.runtime.control import ControlSettings
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.journal import Journal
from services.runtime.journal_kafka import Recorder, restore
from services.runtime.logs import rotated
from services.runtime.ports import free_port, port_open
from services.runtime.settings import RuntimeSettings
from services.runtime.topics import ensure_topics

Progress = Callable[[str], None]


@dataclass
class ServiceProcess:
    info: ServiceInfo
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def state(self) -> str:
        if self.process is None:
            return "stopped"
        if self.process.poll() is not None:
            return f"exited ({self.process.returncode})"
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=1.0)
        except httpx.HTTPError:
            return "starting"
        return "healthy" if response.status_code < 300 else "unhealthy"


def hold_mesh_lock(home: Path) -> IO[str]:
    """An exclusive lock on ``home/mesh.lock`` for as long as the returned file stays open;
    :class:`MeshAlreadyRunning` naming the holder when another process has it."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / "mesh.lock", "a+")  # noqa: SIM115 - held for the mesh's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise MeshAlreadyRunning(
            f"a mesh is already running or starting from {home} (pid {holder}); use it, or stop "
            "it first ('bentomesh status' shows it)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ensure_keys(progress: Progress = lambda _: None) -> KeyStore | None:
    """The signing keys of every producer, created on first use (secure by default); None when
    ``BENTOMESH_INSECURE_UNSIGNED=true`` says to run unsigned."""
    settings = SigningSettings()
    if settings.insecure_unsigned:
        warn_insecure("the local mesh")
        return None
    keys = settings.keys
    created = keys.ensure()
    if created:
        progress(f"signing keys: created {', '.join(created)} in {keys.root}")
    return keys


def _split_bootstrap(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return host or "127.0.0.1", int(port)


class LocalMesh:
    """Start with :meth:`start`, stop with :meth:`stop`; also a context manager."""

    def __init__(
        self,
        kafka: KafkaSettings | None = None,
        runtime: RuntimeSettings | None = None,
        *,
        services: tuple[ServiceInfo, ...] = SERVICES,
        free_ports: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.kafka = kafka or KafkaSettings()
        self.runtime = runtime or RuntimeSettings()
        self.whole = services == SERVICES
        followed = (extra_env or {}).get("BENTOMESH_MLFLOW_TRACKING_URI")
        if self.whole and (followed or BridgeSettings().tracking_uri):  # and an MLflow registry
            services = ALL_SERVICES
        self.services = services
        self.free_ports = free_ports
        self.extra_env = extra_env or {}
        self._env: dict[str, str] = {}
        self.broker: EmbeddedBroker | None = None
        self.processes: list[ServiceProcess] = []
        self.log_dir = self.runtime.home / "logs"
        self._lock: IO[str] | None = None
        self.recorder: Recorder | None = None

    @property
    def broker_is_embedded(self) -> bool:
        return self.broker is not None

    def start(self, progress: Progress = lambda _: None, *, timeout: float = 60.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.whole:  # the whole mesh: one per home, even while starting
            self._lock = hold_mesh_lock(self.runtime.home)
        host, port = _split_bootstrap(self.kafka.bootstrap_servers)
        if port_open(host, port):
            progress(f"broker: using the one at {self.kafka.bootstrap_servers}")
        elif host in ("127.0.0.1", "localhost"):
            self.broker = EmbeddedBroker(port, log_path=self.log_dir / "broker.log").start()
            progress(f"broker: embedded Tansu on {self.broker.bootstrap_servers}")
        else:
            raise BrokerUnavailableError(
                f"no broker answers at {self.kafka.bootstrap_servers}; start it or unset "
                "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS to use the embedded one"
            )
        if self.broker is not None and self.runtime.journal:
            self._restore_journal(progress)
        else:
            created = asyncio.run(ensure_topics(self.kafka, partitions=self.runtime.partitions))
            progress(f"topics: {len(created)} created")
        keys = ensure_keys(progress)
        token = ControlSettings().ensure_token()
        self._env = {
            **os.environ,
            **self.kafka.as_env(),
            **({"BENTOMESH_KEYS_DIR": str(keys.root)} if keys is not None else {}),
            "BENTOMESH_API_TOKEN": token,
            "BENTOMESH_HOME": str(self.runtime.home),
            "PYTHONUNBUFFERED": "1",
            "BENTOMESH_STOP_DEPLOYMENTS_ON_EXIT": "true",
            **self.extra_env,
        }
        for info in self.services:
            svc_port = (
                free_port() if self.free_ports or port_open("127.0.0.1", info.port) else info.port
            )
            proc = ServiceProcess(info, svc_port, self.log_dir / f"{info.name}.log")
            self._spawn(proc)
            self.processes.append(proc)
            if info.name == "deployer":  # the monitor asks it what serves
                self._env["BENTOMESH_DEPLOYER_URL"] = proc.url
            progress(f"{info.name}: started (pid {proc.process.pid}, http {proc.url})")  # type: ignore[union-attr]
        self.wait_healthy(progress, timeout=timeout)

    def _restore_journal(self, progress: Progress) -> None:
        """The embedded broker starts empty: replay what the last run left in the journal, then
        keep recording."""
        journal = Journal(self.runtime.home / "journal")
        try:
            restored = asyncio.run(
                restore(
                    self.kafka,
                    journal,
                    ALL_TOPICS,
                    partitions=self.runtime.partitions,
                    retention_s=self.runtime.journal_retention_h * 3600,
                )
            )
        except (ValueError, KeyError) as exc:
            raise MeshError(
                f"the journal in {journal.folder} is damaged ({exc}); move that folder aside to "
                "start with an empty broker"
            ) from exc
        if restored.records or restored.groups:
            progress(
                f"journal: replayed {restored.records} records and the offsets of "
                f"{restored.groups} consumer groups from {journal.folder}"
            )
        self.recorder = Recorder(self.kafka, journal, restored.ends).start()

    def _spawn(self, proc: ServiceProcess) -> None:
        with open(rotated(proc.log_path), "ab") as log:
            proc.process = subprocess.Popen(
                [sys.executable, "-m", "services", proc.info.name, "--port", str(proc.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        proc.started_at = time.monotonic()

    def restart(self, name: str, *, timeout: float = 120.0) -> ServiceProcess:
        """Start a service again on its port (after it died or was killed); waits until healthy."""
        proc = next(p for p in self.processes if p.info.name == name)
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
        if proc.process is not None:
            proc.process.wait()
        self._spawn(proc)
        self.wait_healthy(lambda _: None, timeout=timeout, only=[proc])
        return proc

    def wait_healthy(
        self, progress: Progress, *, timeout: float, only: list[ServiceProcess] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.processes if only is None else only)
        while pending:
            for proc in list(pending):
                state = proc.state()
                if state == "healthy":
                    pending.remove(proc)
                    progress(f"{proc.info.name}: healthy")
                elif state.startswith("exited"):
                    raise MeshError(f"{proc.info.name} {state}; see {proc.log_path}")
            if time.monotonic() > deadline:
                names = ", ".join(p.info.name for p in pending)
                raise MeshError(f"not healthy within {timeout:.0f}s: {names}; see {self.log_dir}")
            time.sleep(0.2)

    def stop(self, progress: Progress = lambda _: None) -> None:
        """Services first (each stops its models when told to), the broker last. A second
        Ctrl-C or a signal to the whole process group does not cut this short."""
        with _signals_held():
            self._stop(progress)

    def _stop(self, progress: Progress) -> None:
        for proc in reversed(self.processes):
            if proc.process and proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in reversed(self.processes):
            if proc.process is None:
                continue
            try:
                proc.process.wait(15)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()
            progress(f"{proc.info.name}: stopped")
        self.processes.clear()
        if self.recorder is not None:
            self.recorder.stop()
            progress(f"journal: {self.recorder.recorded} new records kept")
            self.recorder = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
            progress("broker: stopped")
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def __enter__(self) -> LocalMesh:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
