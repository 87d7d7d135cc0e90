"""A bento served by a local ``bentoml serve`` child process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from services.errors import NotBuiltHere, NotReadyError
from services.runtime.bento_store import stored_bento
from services.runtime.logs import rotated
from services.runtime.ports import free_port
from services.runtime.serve_one import needs_supervisor

SECRET_VARIABLES = re.compile(
    r"^BENTOMESH_(KEYS_DIR|API_TOKEN|KAFKA_SASL_.*|KAFKA_SSL_.*|MONITOR_WEBHOOK_.*)$|"
    r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)",
    re.IGNORECASE,
)


def model_environment() -> dict[str, str]:
    """This process's environment without the mesh's secrets (where keys are, tokens, Kafka
    credentials): a model is code from a pickle and gets none of them."""
    return {k: v for k, v in os.environ.items() if not SECRET_VARIABLES.search(k)}


def serve_command(bento_tag: str, host: str, port: int, supervised: bool | None) -> list[str]:
    """``bentoml serve TAG``, or its one worker alone where the bento has one (``serve_one``;
    ``supervised=None`` decides from the bento)."""
    if supervised is None:
        try:
            supervised = needs_supervisor(stored_bento(bento_tag))
        except NotBuiltHere:
            supervised = True  # bentoml serve says what is wrong
    # serve_one or own_metrics (each server its own Prometheus directory), then the same words
    module = "services.runtime.own_metrics" if supervised else "services.runtime.serve_one"
    where = ["--host", host, "--port", str(port)]
    return [sys.executable, "-m", module, "bentoml", "serve", bento_tag, *where]


class LocalBentoServer:
    """A bento served on 127.0.0.1 by a child process in a session of its own, one OpenMP
    thread per worker."""

    def __init__(
        self,
        bento_tag: str,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        metrics_dir: Path | None = None,
        supervised: bool | None = None,
    ) -> None:
        self.bento_tag = bento_tag
        self.port = port or free_port()
        self.host = host
        self.log_path = log_path
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_dir = metrics_dir  # its workers' Prometheus files (see own_metrics)
        self.supervised = supervised

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalBentoServer:
        log = open(rotated(self.log_path), "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        if self.metrics_dir is None:
            self.metrics_dir = Path(tempfile.mkdtemp(prefix=f"bentomesh-metrics-{self.port}-"))
        self.process = subprocess.Popen(
            serve_command(self.bento_tag, self.host, self.port, self.supervised),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **model_environment(),
                "OMP_NUM_THREADS": "1",
                "BENTOML_DO_NOT_TRACK": "True",
                "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
                **self.env,
            },
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self, timeout: float = 1.0) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds it took to become ready; raises NotReadyError otherwise."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise NotReadyError(f"{self.bento_tag} exited with code {code} before ready")
            if self.ready():
                return time.monotonic() - started
            time.sleep(0.1)
        raise NotReadyError(f"{self.bento_tag} not ready on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def __enter__(self) -> LocalBentoServer:
        self.start().wait_ready()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
