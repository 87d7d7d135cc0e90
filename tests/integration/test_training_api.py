"""A training job registers a fitted model with one call, from a plain script and from a real
Jupyter kernel (whose event loop is running), against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from bentomesh_contracts import decode, topics
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.kafka import KafkaSettings
from tests.kafka_helpers import Collector, run

pytestmark = pytest.mark.integration


def training_code(name: str, bootstrap: str, artifact_dir: Path) -> str:
    return textwrap.dedent(
        f"""
        import numpy as np, pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from bentomesh_contracts import register_model

        rng = np.random.default_rng(0)
        x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["tenure", "monthly_charges", "usage"])
        y = np.where(x["tenure"] + x["usage"] > 0, "churns", "stays")
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
        event = register_model(
            model, name={name!r}, version="1",
            artifact_dir={str(artifact_dir)!r}, bootstrap_servers={bootstrap!r},
        )
        print(event.chainid)
        """
    )


def registered(kafka: KafkaSettings, chain: str) -> dict[str, object]:
    """The registration of ``chain``; other tests put unreadable records on the same topic."""

    async def find() -> dict[str, object]:
        async with Collector(kafka, (topics.MODEL_REGISTERED,)) as collector:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for record in collector.records:
                    try:
                        event = decode(record.value)
                    except EventDecodeError:
                        continue
                    if event.chainid == chain:
                        return dict(json.loads(event.data.model_dump_json()))
                await collector.poll()
        raise AssertionError(f"no registration of chain {chain} within 30 s")

    result: dict[str, object] = run(find())
    return result


def check(data: dict[str, object], name: str, artifact_dir: Path) -> None:
    assert data["model_name"] == name
    assert data["task"] == "classification"
    assert [f["name"] for f in data["features"]] == ["tenure", "monthly_charges", "usage"]  # type: ignore[attr-defined,index]
    assert data["class_labels"] == ["churns", "stays"]
    assert (artifact_dir / f"{name}-1.joblib").is_file()


def test_a_script_registers_a_fitted_pipeline(kafka: KafkaSettings, tmp_path: Path) -> None:
    name = f"script-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-c", training_code(name, kafka.bootstrap_servers, tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check(registered(kafka, done.stdout.strip().splitlines()[-1]), name, tmp_path)


def test_a_notebook_registers_a_fitted_pipeline(kafka: KafkaSettings, tmp_path: Path) -> None:
    """In a real kernel: a top-level cell, and a cell whose code runs inside the kernel's
    running event loop (top-level ``await``), where ``asyncio.run`` would refuse."""
    name = f"notebook-{uuid.uuid4().hex[:6]}"
    in_loop = textwrap.indent(
        training_code(f"{name}-loop", kafka.bootstrap_servers, tmp_path), "    "
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(training_code(name, kafka.bootstrap_servers, tmp_path)),
        nbformat.v4.new_code_cell(
            "import asyncio\n"
            "async def train_and_register():\n"
            "    assert asyncio.get_running_loop().is_running()\n"
            f"{in_loop}\n"
            "await train_and_register()\n"
        ),
    ]
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    for cell, model in zip(notebook.cells, (name, f"{name}-loop"), strict=True):
        chain = "".join(cell.outputs[-1]["text"]).strip().splitlines()[-1]
        check(registered(kafka, chain), model, tmp_path)
