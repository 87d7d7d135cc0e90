"""The docker-compose mesh with the local override, on the real engine: register a model inside
the network, get ``Deployed``, a prediction through the gateway, then stop the model's container
and see ``HealthAlert`` firing. Builds the mesh images (cached after the first run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bentomesh_contracts.signing import PRODUCERS
from services.builder.backend import docker_available
from services.runtime.ports import free_port
from tests.conftest import require
from tests.monitor_status import wait_until_checked_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
FILES = ("-f", str(ROOT / "docker-compose.yaml"), "-f", str(ROOT / "docker-compose.local.yaml"))
MODEL = f"compose-churn-{uuid.uuid4().hex[:6]}"
SERVICES = ("packager", "builder", "deployer", "monitor")


@dataclass
class Mesh:
    project: str
    env: dict[str, str]
    ports: dict[str, int]

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        result = subprocess.run(
            ["docker-compose", "-p", self.project, *FILES, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}: {result.stderr[-3000:]}")
        return result.stdout

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def events(self, topic: str) -> list[dict[str, Any]]:
        """The topic's CloudEvents, read by the CLI inside the network (as an operator would)."""
        out = self.compose(
            "exec", "-T", "monitor", "bentomesh", "events", "tail", "--no-follow", "--json",
            "--topic", topic, timeout=60,
        )  # fmt: skip
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, AssertionError):
            found = None
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    require(docker_available(), "a Docker engine", ".ci/run installs docker.io and starts dockerd")
    require(bool(shutil.which("docker-compose")), "docker-compose", "apt install docker-compose")
    from services.builder.base_image import build_base_image

    build_base_image()  # no-op when it exists (CI builds it before the tests)
    artifacts = tmp_path_factory.mktemp("compose-artifacts")
    artifacts.chmod(0o755)  # read by the packager's non-root user
    project = f"bentomesh-test-{os.getpid()}"
    ports = {name: free_port() for name in (*SERVICES, "kafka", "prometheus")}
    env = {
        **os.environ,
        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
        "BENTOMESH_NETWORK": project,
        "BENTOMESH_ARTIFACTS_DIR": str(artifacts),
        # the deployer restarts a stopped model within 1-6 s (supervision every 5 s, then about
        # a second to ready): checks every 0.25 s, and an alert on the first failed one
        "BENTOMESH_MONITOR_INTERVAL_S": "0.25",
        "BENTOMESH_MONITOR_DOWN_AFTER": "1",
        **{f"BENTOMESH_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    mesh = Mesh(project, env, ports)
    try:
        mesh.compose("up", "-d", "--build", timeout=1500)
        for service in SERVICES:
            _wait(
                f"{service} healthy",
                lambda s=service: httpx.get(f"{mesh.url(s)}/healthz", timeout=5).is_success,
                240,
            )
        yield mesh
    finally:
        _remove_model_containers(project)
        mesh.compose("down", "-v", "-t", "5", timeout=300, check=False)


def _remove_model_containers(network: str) -> None:
    """Model containers are started by the deployer, not by compose: remove them first."""
    import docker

    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"network": network}):
        if "com.docker.compose.project" not in container.labels:
            container.remove(force=True)
    for image in client.images.list(name=f"bentomesh/{MODEL}"):
        client.images.remove(image.id, force=True)  # the model's own layer; the base stays


def test_compose_mesh_deploys_serves_and_alerts(mesh: Mesh) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    artifact = Path(mesh.env["BENTOMESH_ARTIFACTS_DIR"]) / f"{MODEL}.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), artifact)
    artifact.chmod(0o644)

    mesh.compose(
        "run", "--rm", "-T", "trainer", "register", "--model-path",
        f"/artifacts/{artifact.name}", "--name", MODEL, "--version", "1",
        "--task", "classification", "--features", "a,b,c,d", "--class-labels", "no,yes",
        "--no-wait", timeout=60,
    )  # fmt: skip

    deployed = _wait(
        "Deployed",
        lambda: [
            e for e in mesh.events("bentomesh.deployed.v1") if e["data"]["model_name"] == MODEL
        ],
        600,
    )
    assert len(deployed) == 1
    data = deployed[0]["data"]
    assert data["runtime"] == "docker"
    assert data["endpoint_url"].startswith("http://bentomesh-")
    failed = mesh.events("bentomesh.stage-failed.v1")
    assert [e for e in failed if (e["subject"] or "").startswith(f"{MODEL}:")] == []

    response = httpx.post(
        f"{mesh.url('deployer')}/models/{MODEL}/predict",
        json={"rows": [[2.0, 0.0, 0.0, 0.0], [-2.0, 0.0, 0.0, 0.0]]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["labels"] == ["yes", "no"]
    assert response.headers["x-bentomesh-version"] == "1"
    # the control plane needs the token; each service holds its own signing key only
    rollback = httpx.post(f"{mesh.url('deployer')}/deployments/{MODEL}/rollback", timeout=10)
    assert rollback.status_code == 401
    held = mesh.compose(
        "exec", "-T", "packager", "sh", "-c",
        "ls /var/lib/bentomesh/keys/*/signing.pem; ls /var/lib/bentomesh/keys/trusted",
        timeout=30, check=False,
    )  # fmt: skip
    assert "keys/packager/signing.pem" in held
    assert "deployer/signing.pem" not in held
    assert held.count(".pub") == len(PRODUCERS)  # every public key, one private

    import docker

    container_name = data["endpoint_url"].removeprefix("http://").split(":")[0]
    container = docker.from_env().containers.get(container_name)
    assert container.attrs["Config"]["User"] == "1034"
    # a model image starts in about a second: a stop the monitor was not yet watching would
    # be over before its first check
    token = mesh.compose("exec", "-T", "deployer", "cat", "/var/lib/bentomesh/control/api-token")
    wait_until_checked_healthy(mesh.url("monitor"), data["deployment_id"], token=token.strip())
    container.stop(timeout=5)

    def alerts(state: str) -> Callable[[], list[dict[str, Any]]]:
        return lambda: [
            e
            for e in mesh.events("bentomesh.health-alert.v1")
            if e["data"]["deployment_id"] == data["deployment_id"] and e["data"]["state"] == state
        ]

    try:
        alert = _wait("HealthAlert firing", alerts("firing"), 120)
    except AssertionError:  # what the monitor and the deployer saw: the only witness in CI
        logs = ("logs", "--no-color", "--tail", "80", "monitor", "deployer")
        print(mesh.compose(*logs, check=False))
        raise
    assert alert[0]["data"]["rule"] in {"endpoint_down", "not_ready"}
    assert alert[0]["chainid"] == deployed[0]["chainid"]
    # the deployer's supervision replaces the stopped container; the alert resolves
    _wait("HealthAlert resolved", alerts("resolved"), 120)
    restarted = docker.from_env().containers.get(container_name)
    assert restarted.id != container.id
    assert restarted.status == "running"
