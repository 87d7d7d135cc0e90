"""A signal to ``bentomesh up``'s whole process group (``kill %1``, ``timeout``, a supervisor),
with a model deployed: the mesh, its broker and its model stop promptly and completely."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
import psutil
import pytest
from sklearn.linear_model import LogisticRegression

from bentomesh_contracts.keys import KeyStore
from bentomesh_contracts.publish import publish_model_registered
from services.runtime.ports import free_port

pytestmark = pytest.mark.e2e

STARTED = re.compile(r"(\w+): started \(pid (\d+), http (\S+)\)")


def _family(pid: int) -> set[int]:
    try:
        process = psutil.Process(pid)
        return {pid, *(c.pid for c in process.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_signal_to_the_process_group_of_up_leaves_nothing_behind(
    tmp_path: Path, artifact_root: Path
) -> None:
    signum = signal.SIGTERM  # SIGINT takes the same path (both end `up` as Ctrl-C does)
    home = tmp_path / "home"
    kafka = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "BENTOMESH_HOME": str(home),
        "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "BENTOMESH_RUNTIME": "process",
        "COLUMNS": "200",
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # up leads its own process group, as in a shell job
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(up.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("mesh up" in line for line in lines):
            assert up.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        services = {m[1]: (int(m[2]), m[3]) for m in STARTED.finditer("".join(lines))}
        deployer_url = services["deployer"][1]

        rng = np.random.default_rng(0)
        x = rng.normal(size=(200, 3))
        path = artifact_root / f"signals-{signum}.joblib"
        joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
        publish_model_registered(
            path,
            bootstrap_servers=kafka,
            signer=KeyStore(home / "keys").signer("training"),
            name="signals",
            version=str(int(signum)),
            task="classification",
            features=["a", "b", "c"],
        )
        while True:
            listing = httpx.get(f"{deployer_url}/models", timeout=5).json()
            if listing:
                break
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.5)
        model_pid = int(httpx.get(f"{deployer_url}/deployments", timeout=5).json()[0]["handle"])
        everything = _family(up.pid) | _family(model_pid)
        for pid, _ in services.values():
            everything |= _family(pid)
        assert len(everything) >= 7  # up, broker, four services, the model server (and workers)

        os.killpg(up.pid, signum)
        started = time.monotonic()
        while any(_alive(pid) for pid in everything) and time.monotonic() - started < 15:
            time.sleep(0.2)
        left = sorted(pid for pid in everything if _alive(pid))
        assert not left, [psutil.Process(p).cmdline() for p in left if _alive(p)]
        assert up.wait(5) == 0, "".join(lines)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-f", f"bentoml serve signals:{int(signum)}"], check=False)
