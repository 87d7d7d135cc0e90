"""The peers the serving benchmark runs beside the template: a stock BentoML service written the
obvious way, a bare ASGI app (the Python floor), FastAPI, and MLServer. Source text, written to a
temp dir per run; MLServer installed in a venv of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

QUIET = ("--log-level", "warning")

STOCK_SERVICE = """
import bentoml
import numpy as np


@bentoml.service(workers=1)
class Stock:
    model_ref = bentoml.models.BentoModel("bench-stock-model:1")

    def __init__(self):
        self.model = bentoml.sklearn.load_model(self.model_ref)

    @bentoml.api
    def predict_proba(self, input_data: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(input_data)
"""

BARE_ASGI = """
import joblib
import numpy as np
import orjson
from threadpoolctl import threadpool_limits

threadpool_limits(1)
MODEL = joblib.load({model_path!r})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    rows = np.asarray(orjson.loads(body)["rows"], dtype=float)
    proba = MODEL.predict_proba(rows)
    payload = orjson.dumps({{"probabilities": proba.tolist()}})
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": payload}})
"""

FASTAPI_ASYNC = """
import joblib
import numpy as np
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

threadpool_limits(1)
MODEL = joblib.load({model_path!r})
app = FastAPI(default_response_class=ORJSONResponse)


class Rows(BaseModel):
    rows: list[list[float]]


@app.post("/predict_proba")
async def predict_proba(body: Rows):
    proba = MODEL.predict_proba(np.asarray(body.rows, dtype=float))
    return {{"probabilities": proba.tolist()}}
"""

MLSERVER_VERSION = "1.7.1"


def mlserver_install(directory: Path) -> Path:
    """MLServer with its scikit-learn runtime in a venv of its own (its pins are not the mesh's),
    with this venv's scikit-learn and numpy so it loads the same pickle. Raises with the reason
    when it cannot be installed here."""
    import numpy
    import sklearn

    binary = directory / "bin" / "mlserver"
    if binary.exists():
        return binary
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is not on PATH")
    packages = [
        f"mlserver=={MLSERVER_VERSION}",
        f"mlserver-sklearn=={MLSERVER_VERSION}",
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={numpy.__version__}",
    ]
    for step in (
        [uv, "venv", "-q", "--python", sys.executable, str(directory)],
        [uv, "pip", "install", "-q", "--python", str(directory / "bin" / "python"), *packages],
    ):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return binary


def mlserver_repository(directory: Path, model_path: Path, port: int) -> Path:
    """A model repository for ``mlserver start``: one scikit-learn model served in the main
    process (``parallel_workers=0``, as a single worker), on ``port``."""
    model = directory / "bench"
    model.mkdir(parents=True)
    settings = {"http_port": port, "grpc_port": port + 1, "metrics_port": port + 2}
    settings |= {"parallel_workers": 0, "debug": False}
    (directory / "settings.json").write_text(json.dumps(settings))
    implementation = "mlserver_sklearn.SKLearnModel"
    served = {
        "name": "bench",
        "implementation": implementation,
        "parameters": {"uri": str(model_path)},
    }
    (model / "model-settings.json").write_text(json.dumps(served))
    return directory


def v2_request(rows: list[list[float]]) -> str:
    """The V2 inference protocol's body for ``rows``, asking for probabilities."""
    flat = [value for row in rows for value in row]
    tensor = {"name": "x", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}
    return json.dumps({"inputs": [tensor], "outputs": [{"name": "predict_proba"}]})


Body = Callable[[list[list[float]]], str]


def peers(
    template_tag: str, stock_tag: str, model_path: Path, workdir: Path
) -> dict[str, tuple[list[str], str, str, Body]]:
    """Each server: its command, URL, route and request body for some rows. The template runs
    as the mesh runs it (``serve_command``: BentoML's worker alone); MLServer when it installs."""
    from services.runtime.bento_server import serve_command

    py = sys.executable

    def keyed(key: str) -> Body:
        return lambda rows: json.dumps({key: rows})

    uvicorn = [py, "-m", "uvicorn", "--no-access-log", *QUIET]
    servers: dict[str, tuple[list[str], str, str, Body]] = {
        "template, compiled": (
            serve_command(template_tag, "127.0.0.1", 3101, supervised=None),
            "http://127.0.0.1:3101",
            "/predict_proba",
            keyed("rows"),
        ),
        "template, as trained": (  # the same bento told to load the original model
            serve_command(template_tag, "127.0.0.1", 3104, supervised=None),
            "http://127.0.0.1:3104",
            "/predict_proba",
            keyed("rows"),
        ),
        "stock bentoml": (
            [py, "-m", "bentoml", "serve", stock_tag, "--port", "3102"],
            "http://127.0.0.1:3102",
            "/predict_proba",
            keyed("input_data"),
        ),
        "bare asgi (floor)": (
            [*uvicorn, "bare:app", "--port", "3103"],
            "http://127.0.0.1:3103",
            "/",
            keyed("rows"),
        ),
        "fastapi async": (
            [*uvicorn, "fastapi_app:app", "--port", "3105"],
            "http://127.0.0.1:3105",
            "/predict_proba",
            keyed("rows"),
        ),
    }
    try:
        print("installing MLServer in a venv of its own ...", flush=True)
        mlserver = mlserver_install(Path.home() / ".cache" / "bentomesh" / "mlserver")
    except RuntimeError as exc:
        print(f"MLServer left out: it does not install here ({exc})", flush=True)
        return servers
    repository = mlserver_repository(workdir / "mlserver", model_path, 3106)
    servers["mlserver"] = (
        [str(mlserver), "start", str(repository)],
        "http://127.0.0.1:3106",
        "/v2/models/bench/infer",
        v2_request,
    )
    return servers
