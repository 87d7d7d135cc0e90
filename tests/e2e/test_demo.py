"""The README's main job, ``bentomesh demo``, on the embedded default: no Docker, no Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.runtime.ports import free_port

pytestmark = pytest.mark.e2e


def run_demo(tmp_path: Path, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``bentomesh demo`` as a new user runs it: its own homes, an embedded broker."""
    env = {
        **os.environ,
        "BENTOMESH_HOME": str(tmp_path / ".bentomesh"),  # hidden, like the default ~/.bentomesh
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "demo", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_deploys_three_kinds_of_model_and_exits_cleanly(tmp_path: Path) -> None:
    result = run_demo(tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for model in ("churn:1", "demand:1", "uplift:1"):
        assert f"{model}" in out
    assert out.count("deployment.ready") == 3
    assert out.count("-> 200 ") == 4  # each model, and the crashed one again after its restart
    assert '"lower":[' in out  # conformal intervals of the regressor
    assert '"average_effect"' in out  # causal effects
    assert "firing after" in out  # the crashed deployment was alerted ...
    assert "resolved after" in out  # ... restarted by the deployer, and the alert resolved
    assert "demo complete" in out
    leftover = subprocess.run(
        ["pgrep", "-f", f"bentoml serve .*{tmp_path}"], capture_output=True, text=True
    ).stdout
    assert leftover == ""


def test_demo_from_mlflow_serves_what_was_registered_there(tmp_path: Path) -> None:
    """``bentomesh demo --mlflow``: its own MLflow server, a model registered there, served by
    the mesh through the bridge and MLflow's signed webhook, and tagged back in MLflow."""
    result = run_demo(tmp_path, "--mlflow", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in ("model.registered", "bento.built", "deployment.ready", "-> 200"):
        assert step in out, out
    served = json.loads(next(line for line in out.splitlines() if '"probabilities"' in line))
    logged = json.loads(out.split("P(1) = ")[1].splitlines()[0])
    assert [round(p["1"], 4) for p in served["probabilities"]] == logged
    assert "bentomesh.status = deployed" in out
    assert "bentomesh.endpoint = http://127.0.0.1:" in out
    assert "Successfully registered" not in out  # MLflow's own chatter stays out
