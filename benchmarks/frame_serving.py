"""Serving a DataFrame pipeline: BentoMesh's template against the floor, a bare ASGI app that
parses the same JSON rows and builds the same DataFrame before calling the same model.

Run: ``uv run python -m benchmarks.frame_serving [--duration 8] [--repeat 2]`` (needs ``wrk``).

The model is a scikit-learn pipeline over 20 columns as tables have them (12 numbers with gaps
and units in their names, 8 string columns): impute and scale, one-hot encode, logistic
regression. Single-row requests at concurrency 32, then 100-row batches at 8; the server is
pinned to CPU 0 and wrk to CPU 1. Prints req/s, rows/s, p50, p99 and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.rounds import measure, print_table

NUMBERS = [f"metric {i} (units)" for i in range(12)]
STRINGS = [f"segment/{i}" for i in range(8)]
COLUMNS = NUMBERS + STRINGS

BARE_FRAME_ASGI = """
import joblib
import orjson
import pandas as pd
from threadpoolctl import threadpool_limits

threadpool_limits(1)
MODEL = joblib.load({model_path!r})
COLUMNS = {columns!r}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    rows = orjson.loads(b"".join(chunks))["rows"]
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    proba = MODEL.predict_proba(frame)
    payload = orjson.dumps({{"probabilities": proba.tolist()}})
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": payload}})
"""


def table(n: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {c: rng.normal(size=n).round(3) for c in NUMBERS}
    data.update({c: rng.choice(["a", "b", "c", "d", "e"], n) for c in STRINGS})
    frame = pd.DataFrame(data)
    frame.loc[::11, NUMBERS[0]] = np.nan
    return frame


def train(workdir: Path) -> Path:
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x = table(5000, 0)
    y = (x[NUMBERS[1]] + (x[STRINGS[0]] == "a") * 1.5 > 0.5).astype(int)
    model = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
            (OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ),
        LogisticRegression(max_iter=500),
    ).fit(x, y)
    path = workdir / "artifacts" / "frame.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def build_template_bento(model_path: Path) -> str:
    from bentomesh_contracts.publish import build_model_registered
    from services.packager.pipeline import package

    data = build_model_registered(
        model_path, name="bench-frame", version="1", task="classification"
    )
    return package(data, chain_id="bench-frame").built.bento_tag


def rows_json(n: int) -> str:
    frame = table(n, 1)
    return str(frame.to_json(orient="records"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (servers interleaved)")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-bench-frame-"))
    os.environ.setdefault("BENTOML_HOME", str(workdir / "bentoml"))
    os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(workdir / "artifacts")
    os.environ["BENTOMESH_HOME"] = str(workdir / "mesh")
    print(f"workdir {workdir}\ntraining the pipeline and building the bento ...", flush=True)
    model_path = train(workdir)
    template_tag = build_template_bento(model_path)
    bare = BARE_FRAME_ASGI.format(model_path=str(model_path), columns=COLUMNS)
    (workdir / "bare_frame.py").write_text(textwrap.dedent(bare))
    one, hundred = rows_json(1), rows_json(100)
    py = sys.executable
    servers = {
        "bentomesh template": (
            [py, "-m", "bentoml", "serve", template_tag, "--port", "3111"],
            "http://127.0.0.1:3111/predict_proba",
        ),
        "bare asgi + DataFrame": (
            [py, "-m", "uvicorn", "bare_frame:app", "--port", "3112", "--no-access-log",
             "--log-level", "warning"],
            "http://127.0.0.1:3112/",
        ),
    }  # fmt: skip
    best = measure(
        servers, one, hundred, repeat=args.repeat, duration=args.duration, workdir=workdir
    )
    print_table(best, "bare asgi + DataFrame", "x floor")
    print(f"\n(best of {args.repeat} interleaved rounds per server and workload)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
