"""A signal to ``bentomesh up``'s whole process group (``kill %1``, ``timeout``, a supervisor),
with a model deployed: the mesh, its broker and its model stop promptly and completely."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.mesh_up import Up, alive, family, register_classifier, up_env

pytestmark = pytest.mark.e2e


def test_a_signal_to_the_process_group_of_up_leaves_nothing_behind(
    tmp_path: Path, artifact_root: Path
) -> None:
    signum = signal.SIGTERM  # SIGINT takes the same path (both end `up` as Ctrl-C does)
    home = tmp_path / "home"
    env = up_env(home)
    kafka = env["BENTOMESH_KAFKA_BOOTSTRAP_SERVERS"]
    up = Up(env)
    try:
        services = up.wait_up()
        deadline = time.monotonic() + 180
        deployer_url = services["deployer"][1]

        register_classifier(
            "signals", str(int(signum)), home=home, kafka=kafka, artifact_root=artifact_root
        )
        while True:
            listing = httpx.get(f"{deployer_url}/models", timeout=5).json()
            if listing:
                break
            assert time.monotonic() < deadline, up.output
            time.sleep(0.5)
        model_pid = int(httpx.get(f"{deployer_url}/deployments", timeout=5).json()[0]["handle"])
        everything = family(up.process.pid) | family(model_pid)
        for pid, _ in services.values():
            everything |= family(pid)
        assert len(everything) >= 7  # up, broker, four services, the model server (and workers)

        os.killpg(up.process.pid, signum)
        started = time.monotonic()
        while any(alive(pid) for pid in everything) and time.monotonic() - started < 15:
            time.sleep(0.2)
        left = sorted(pid for pid in everything if alive(pid))
        assert not left, [psutil.Process(p).cmdline() for p in left if alive(p)]
        assert up.process.wait(5) == 0, up.output
    finally:
        up.kill()
        subprocess.run(["pkill", "-f", f"bentoml serve signals:{int(signum)}"], check=False)
