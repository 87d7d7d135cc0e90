"""``bentomesh demo --mlflow``: from an MLflow registration to a served model, nothing else.

Starts an MLflow server of its own (SQLite, local artifacts) and the embedded mesh with the
registry bridge, subscribes the bridge to MLflow's signed webhooks, then does what a training
job does: fits a pipeline, logs it with its signature and registers it. The mesh serves it, and
MLflow's model version shows where.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import secrets
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console

from bentomesh_contracts import topics
from bentomesh_contracts.events import Deployed, ModelRegistered, StageFailed
from bentomesh_contracts.kafka import KafkaSettings
from services.demo.examples import Say
from services.demo.mlflow_server import MlflowServer
from services.errors import DemoFailed, MeshError
from services.mesh.follow import ChainFollower
from services.mesh.local import LocalMesh
from services.runtime.settings import RuntimeSettings
from services.status.render import summarize

MODEL = "churn"


def log_and_register(tracking_uri: str) -> tuple[Any, Any]:
    """What a training job does: fit, log with signature and input example, register (MLflow's
    own chatter is kept out of the demo's output)."""
    import mlflow
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {
            "monthly charges ($)": rng.uniform(10, 120, 500),
            "contract type": rng.choice(["month-to-month", "one year", "two year"], 500),
            "tenure months": rng.integers(0, 72, 500),
        }
    )
    y = ((x["tenure months"] < 20) & (x["contract type"] == "month-to-month")).astype(int)
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["contract type"]),
            remainder=StandardScaler(),
        ),
        LogisticRegression(),
    ).fit(x, y)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("churn-training")
    quiet = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
        mlflow.start_run(),
    ):
        warnings.simplefilter("ignore")
        mlflow.log_metric("accuracy", float(pipeline.score(x, y)))
        mlflow.sklearn.log_model(
            pipeline, name="model", input_example=x.head(3), registered_model_name=MODEL
        )
    return pipeline, x.head(2)


async def follow_registration(
    kafka: KafkaSettings, register: Callable[[], Any], say: Say, limit_s: float = 600
) -> tuple[Any, Any]:
    """Run ``register`` (blocking) and follow the chain the bridge starts for it."""
    follower = ChainFollower(kafka, (topics.MODEL_REGISTERED, topics.DEPLOYED, *_rest()))
    await follower.start()
    started = time.perf_counter()
    try:
        registered = asyncio.create_task(
            follower.until(
                lambda e: (
                    isinstance(e.data, ModelRegistered) and e.data.tags.get("mlflow.model") == MODEL
                ),
                limit_s,
                "ModelRegistered from the bridge",
            )
        )
        result = await asyncio.to_thread(register)
        event = await registered

        def show(e: Any) -> None:
            kind = e.type.removeprefix("bentomesh.").removesuffix(".v1")
            say(f"{time.perf_counter() - started:6.1f}s  {kind:<18} {summarize(e.data)}")

        show(event)
        final = await follower.until_done(event.chainid, show, limit_s)
    finally:
        await follower.stop()
    if isinstance(final.data, StageFailed):
        raise DemoFailed(f"{MODEL} failed in the {final.data.stage}: {final.data.reason}")
    return result, final


def _rest() -> tuple[str, ...]:
    return (topics.BENTO_BUILT, topics.IMAGE_READY, topics.STAGE_FAILED)


def run_mlflow_demo(
    *, out: Console, status: Callable[[str], Any], progress: Callable[[Any, Console], Say]
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-mlflow-demo-"))
    secret = secrets.token_urlsafe(24)
    out.print(f"[bold]BentoMesh from MLflow[/bold] (files in {workdir})")
    server = MlflowServer(workdir / "mlflow")
    mesh = LocalMesh(
        runtime=RuntimeSettings(home=workdir / "mesh"),
        extra_env={
            "BENTOMESH_ARTIFACT_ROOTS": str(workdir / "models"),
            "BENTOML_HOME": str(workdir / "bentoml"),
            "BENTOMESH_RUNTIME": "process",
            "BENTOMESH_MLFLOW_TRACKING_URI": server.url,
            "BENTOMESH_MLFLOW_WEBHOOK_SECRET": secret,
        },
    )
    try:
        with status("starting an MLflow server (SQLite backend)"):
            server.start()
        out.print(f"MLflow: {server.url}")
        with status("starting the embedded mesh and the registry bridge") as spinner:
            mesh.start(progress(spinner, out), timeout=180)
        bridge = next(p.url for p in mesh.processes if p.info.name == "registry_bridge")
        from mlflow import MlflowClient

        client = MlflowClient(server.url)
        client.create_webhook(
            "bentomesh", f"{bridge}/webhooks/mlflow", ["model_version.created"], secret=secret
        )
        out.print(f"MLflow webhook -> {bridge}/webhooks/mlflow (signed with a new secret)")
        out.print("training, logging and registering 'churn' in MLflow; the mesh does the rest:")
        with status("following the chain") as spinner:
            (pipeline, rows), deployed = asyncio.run(
                follow_registration(
                    mesh.kafka, lambda: log_and_register(server.url), progress(spinner, out)
                )
            )
        data: Deployed = deployed.data
        body = json.loads(rows.to_json(orient="records"))
        answer = httpx.post(f"{data.endpoint_url}/predict_proba", json={"rows": body}, timeout=60)
        out.print(f"  POST {data.endpoint_url}/predict_proba -> {answer.status_code}", markup=False)
        out.print(f"  {answer.text[:300]}", markup=False)
        expected = pipeline.predict_proba(rows)[:, 1].round(4).tolist()
        out.print(f"  the logged pipeline in this process says P(1) = {expected}", markup=False)
        tags = _wait_tags(client, data.model_version)
        out.print("MLflow's model version now says where it serves:")
        for key in sorted(k for k in tags if k.startswith("bentomesh.")):
            out.print(f"  {key} = {tags[key]}", markup=False)
        if answer.status_code != 200 or tags.get("bentomesh.status") != "deployed":
            raise DemoFailed("the model answered or was tagged wrongly; see above")
        out.print(f"[green]done[/green]: open {server.url}/#/models/{MODEL} to see it in MLflow")
    except (MeshError, RuntimeError, TimeoutError) as exc:
        raise DemoFailed(f"demo failed: {exc}; logs in {mesh.log_dir}") from exc
    finally:
        with status("stopping the mesh and MLflow"):
            mesh.stop()
            server.stop()


def _wait_tags(client: Any, version: str, limit_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + limit_s
    tags: dict[str, str] = {}
    while time.monotonic() < deadline:
        tags = dict(client.get_model_version(MODEL, version).tags)
        if tags.get("bentomesh.status") == "deployed":
            break
        time.sleep(0.5)
    return tags
