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


def wait_healthy(url: str, mesh: subprocess.Popen[str], log: Path, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert mesh.poll() is None, f"bentomesh up exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=1).status_code < 300:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not healthy within {limit_s:.0f}s: {log.read_text()[-3000:]}")


def test_readme_quick_start_serves_the_model_as_written(tmp_path: Path) -> None:
    # a new shell: none of the session's BENTOMESH_* settings, only what the README sets
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BENTOMESH_")},
        "UV_PROJECT": str(ROOT),
        "BENTOMESH_HOME": str(tmp_path / "home"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "COLUMNS": "200",
    }
    log = tmp_path / "up.log"
    with log.open("w") as out:  # a file, not a pipe nobody reads: `up` redraws its table
        mesh = subprocess.Popen(
            ["bash", "-c", readme_block("mesh")],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        wait_healthy("http://127.0.0.1:8104/healthz", mesh, log, 240)
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
        answer = next((line for line in out.splitlines() if "probabilities" in line), out[-2000:])
        assert '"probabilities":[{"no":' in answer, answer  # the curl, by column names
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
