"""Stop ``bentomesh up`` with two models deployed and start it again on the same home: both
serve again, the event history and the status page's chains are still there, and the monitor
still watches them (a killed model raises an alert that resolves once it is back)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bentomesh_contracts.events import Deployed, HealthAlert
from tests.e2e.mesh_up import Up, register_classifier, up_env

pytestmark = pytest.mark.e2e

MODELS = ("restart-a", "restart-b")


def _until(check: Callable[[], Any], what: str, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"not within {timeout}s: {what}")


def _history(env: dict[str, str]) -> list[dict[str, Any]]:
    tail = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "events", "tail", "--no-follow", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tail.returncode == 0, tail.stderr
    return [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]


def _deployed(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in history if e["type"] == Deployed.EVENT_TYPE]


def _serving(deployer: str) -> set[str]:
    listing = httpx.get(f"{deployer}/models", timeout=5).json()
    return {m["model"] for m in listing} if set(MODELS) <= {m["model"] for m in listing} else set()


def _predicts(deployer: str, name: str) -> bool:
    body = {"rows": [{"a": 1.0, "b": 0.0, "c": 0.0}]}
    return httpx.post(f"{deployer}/models/{name}/predict", json=body, timeout=10).status_code == 200


def test_a_restarted_mesh_serves_remembers_and_monitors_its_models(
    tmp_path: Path, artifact_root: Path
) -> None:
    home = tmp_path / "home"
    env = up_env(home, BENTOMESH_MONITOR_INTERVAL_S="1", BENTOMESH_MONITOR_SYNC_S="2")
    up = Up(env)
    try:
        deployer = up.wait_up()["deployer"][1]
        for name in MODELS:
            kafka = env["BENTOMESH_KAFKA_BOOTSTRAP_SERVERS"]
            register_classifier(name, "1", home=home, kafka=kafka, artifact_root=artifact_root)
        _until(lambda: _serving(deployer), "both models deployed")
        before = _until(lambda: len(_deployed(h := _history(env))) == 2 and h, "two Deployed")
        assert up.stop(signal.SIGINT) == 0, up.output
    finally:
        up.kill()

    up = Up(env)
    try:
        services = up.wait_up()
        assert "journal: replayed" in up.output, up.output
        deployer, monitor = services["deployer"][1], services["monitor"][1]
        _until(lambda: _serving(deployer), "both models serving again")
        for name in MODELS:
            _until(lambda n=name: _predicts(deployer, n), f"{name} answering")

        after = _history(env)
        assert {e["id"] for e in before} <= {e["id"] for e in after}
        # nothing was processed twice: still one Deployed per registration
        assert sorted(e["data"]["model_name"] for e in _deployed(after)) == sorted(MODELS)

        status = httpx.get(f"{monitor}/api/status", timeout=5).json()
        chains = {c["model"]: c["status"] for c in status["chains"]}
        assert chains == dict.fromkeys(MODELS, "deployed"), chains

        victim = next(
            d
            for d in httpx.get(f"{deployer}/deployments", timeout=5).json()
            if d["model"] == MODELS[0] and d["status"] == "active"
        )
        os.killpg(int(victim["handle"]), signal.SIGKILL)

        def alert_states() -> list[str]:
            return [
                e["data"]["state"]
                for e in _history(env)
                if e["type"] == HealthAlert.EVENT_TYPE
                and e["data"]["deployment_id"] == victim["id"]
            ]

        _until(lambda: "firing" in alert_states(), "an alert for the killed model")
        states = _until(
            lambda: (s := alert_states()) and s[-1] == "resolved" and s, "the alert resolved"
        )
        assert states[0] == "firing", states
        assert up.stop(signal.SIGINT) == 0, up.output
    finally:
        up.kill()
