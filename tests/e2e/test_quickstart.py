"""The README's quick start, run as written: the mesh in one shell, the client in another.

The blocks are read from README.md (after their ``<!-- quickstart:... -->`` markers), so the
README cannot drift from what works. Only the homes are the test's own (model store, state), and
``UV_PROJECT`` lets ``uv run`` find this checkout from the scratch directory the shells run in.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- quickstart:{marker} -->\n```bash\n(.*?)\n```", text, re.S)
    assert found, f"README.md has no quickstart:{marker} block"
    return found.group(1)


def wait_healthy(url: str, mesh: subprocess.Popen[str], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert mesh.poll() is None, f"bentomesh up exited: {mesh.communicate()[0][-3000:]}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not healthy within {limit_s:.0f}s")


def test_readme_quick_start_serves_the_model_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "UV_PROJECT": str(ROOT),
        "BENTOMESH_HOME": str(tmp_path / "home"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "COLUMNS": "200",
    }
    for variable in ("BENTOMESH_ARTIFACT_ROOTS", "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS"):
        env.pop(variable, None)  # a new shell: only what the README sets
    mesh = subprocess.Popen(
        ["bash", "-c", readme_block("mesh")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_healthy("http://127.0.0.1:8104/healthz", mesh, 240)
        client = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_block("client")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert client.returncode == 0, client.stdout[-3000:] + client.stderr[-3000:]
        out = client.stdout
        assert "churn:1 deployed at http://" in out
        assert '"probabilities":[{' in out  # the curl through the gateway
        assert "deployment.ready" in out  # events tail shows the chain's end
    finally:
        stop_like_ctrl_c(mesh)


def stop_like_ctrl_c(mesh: subprocess.Popen[str]) -> None:
    """SIGINT to ``bentomesh up`` (what Ctrl-C delivers to it); it stops every service."""
    shell = psutil.Process(mesh.pid)
    for process in shell.children(recursive=True):
        if "bentomesh" in " ".join(process.cmdline()) and "up" in process.cmdline():
            process.send_signal(signal.SIGINT)
    try:
        mesh.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(mesh.pid, signal.SIGKILL)
        mesh.wait()
