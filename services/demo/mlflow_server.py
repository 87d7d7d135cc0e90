"""An MLflow tracking server of our own, for the demo and the tests: a SQLite backend (MLflow
sends webhooks only from a SQL store) and local artifacts. Webhooks may go to this machine over
plain HTTP (MLflow's defaults allow public https URLs only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from services.errors import MeshError
from services.runtime.ports import free_port


class MlflowServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).with_name("mlflow")
        if not mlflow.exists():
            raise MeshError("the MLflow server is not installed here: pip install mlflow")
        env = {
            **os.environ,
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # the bridge listens on 127.0.0.1
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",  # ... without TLS
            "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "2",
        }
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(mlflow), "server",
                    "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                    "--artifacts-destination", str(self.root / "artifacts"),
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", "1",
                ],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MeshError(f"the MLflow server exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise MeshError(f"the MLflow server is not up after {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.stop()
