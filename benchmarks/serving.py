"""Serving throughput: BentoMesh's template vs stock BentoML, MLServer, FastAPI (async) and bare
ASGI.

Run: ``uv run python -m benchmarks.serving [--duration 10] [--repeat 2]``. Needs ``wrk`` (Debian).
The template runs twice: serving its compiled trees (tl2cgen), and as trained (scikit-learn).

Same model (HistGradientBoosting, 20 features), same machine, one worker each; the server is pinned
to CPU 0 and wrk to CPU 1. Single-row requests at concurrency 32, then 100-row batches. The bare
ASGI app (uvicorn, no access log, orjson) is the Python floor; the stock service is a
``@bentoml.service`` written the obvious way (numpy in, numpy out); FastAPI is an async endpoint
with a pydantic body and an orjson response, under the same uvicorn (uvloop, httptools); MLServer
(installed with ``uv`` in a venv of its own, scikit-learn runtime, ``parallel_workers=0``, the V2
inference protocol) when it installs here. Prints
req/s (rows/s for batches), p50 and p99, and the ratios to the stock service, the floor and
FastAPI (throughput, and p99).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from benchmarks.peers import BARE_ASGI, FASTAPI_ASYNC, STOCK_SERVICE, peers

N_FEATURES = 20
FEATURES = [f"f{i}" for i in range(N_FEATURES)]

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""


@dataclass
class Result:
    server: str
    workload: str
    rps: float
    p50_ms: float
    p99_ms: float
    rows: int

    @property
    def rows_per_s(self) -> float:
        return self.rps * self.rows


def train(workdir: Path) -> Path:
    import joblib
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, N_FEATURES))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=5000) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=100).fit(x, y)
    path = workdir / "artifacts" / "bench.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def build_template_bento(model_path: Path) -> str:
    from bentomesh_contracts.publish import build_model_registered
    from services.packager.pipeline import package

    data = build_model_registered(
        model_path, name="bench-template", version="1", task="classification", features=FEATURES
    )
    return package(data, chain_id="bench").built.bento_tag


def build_stock_bento(model_path: Path, workdir: Path) -> str:
    import bentoml
    import joblib

    bentoml.sklearn.save_model("bench-stock-model:1", joblib.load(model_path))
    ctx = workdir / "stock"
    ctx.mkdir()
    (ctx / "service.py").write_text(STOCK_SERVICE)
    bento = bentoml.bentos.build(
        "service:Stock",
        name="bench-stock",
        version="1",
        build_ctx=str(ctx),
        python={"packages": ["scikit-learn", "numpy"], "lock_packages": False},
    )
    return str(bento.tag)


def start(
    cmd: list[str], cwd: Path | None = None, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "True", **(extra or {})}
    return subprocess.Popen(
        ["taskset", "-c", "0", *cmd],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_ready(url: str, probe: str, body: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            r = httpx.post(
                url + probe, content=body, headers={"content-type": "application/json"}, timeout=5
            )
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, 15)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)


def wrk(
    url: str, body: str, duration: int, connections: int, workdir: Path
) -> tuple[float, float, float]:
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} non-2xx responses from {url}: figures invalid")

    def latency(pct: str) -> float:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return rps, latency("50"), latency("99")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (servers interleaved)")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")

    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-bench-"))
    os.environ.setdefault("BENTOML_HOME", str(workdir / "bentoml"))
    os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(workdir / "artifacts")
    os.environ["BENTOMESH_HOME"] = str(workdir / "mesh")
    print(f"workdir {workdir}")
    print("training the model and building the bentos ...", flush=True)
    model_path = train(workdir)
    template_tag = build_template_bento(model_path)
    stock_tag = build_stock_bento(model_path, workdir)
    (workdir / "bare.py").write_text(textwrap.dedent(BARE_ASGI.format(model_path=str(model_path))))
    fastapi_app = FASTAPI_ASYNC.format(model_path=str(model_path))
    (workdir / "fastapi_app.py").write_text(textwrap.dedent(fastapi_app))

    rng = np.random.default_rng(1)
    one = rng.normal(size=(1, N_FEATURES)).round(4).tolist()
    hundred = rng.normal(size=(100, N_FEATURES)).round(4).tolist()
    servers = peers(template_tag, stock_tag, model_path, workdir)
    results: list[Result] = []
    for round_no in range(args.repeat):
        for name, (cmd, url, route, body_of) in servers.items():
            plain = {"BENTOMESH_SERVE_COMPILED": "0"} if name == "template, as trained" else {}
            process = start(cmd, cwd=workdir, extra=plain)
            try:
                wait_ready(url, route, body_of(one))
                for workload, rows in (("1 row, c=32", one), ("100 rows, c=8", hundred)):
                    conns = 32 if len(rows) == 1 else 8
                    print(f"  round {round_no + 1}: {name}, {workload} ...", flush=True)
                    rps, p50, p99 = wrk(url + route, body_of(rows), args.duration, conns, workdir)
                    results.append(Result(name, workload, rps, p50, p99, len(rows)))
            finally:
                stop(process)

    print(
        f"\n{'server':<22} {'workload':<15} {'req/s':>8} {'rows/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'x stock':>8} {'x floor':>8} {'x fastapi':>9} {'p99/fastapi':>11}"
    )
    best: dict[tuple[str, str], Result] = {}
    for r in results:
        key = (r.server, r.workload)
        if key not in best or r.rps > best[key].rps:
            best[key] = r
    for (server, workload), r in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        stock = best[("stock bentoml", workload)].rps
        floor = best[("bare asgi (floor)", workload)].rps
        fastapi = best[("fastapi async", workload)]
        print(
            f"{server:<22} {workload:<15} {r.rps:>8.0f} {r.rows_per_s:>9.0f} {r.p50_ms:>8.1f} "
            f"{r.p99_ms:>8.1f} {r.rps / stock:>8.2f} {r.rps / floor:>8.2f} "
            f"{r.rps / fastapi.rps:>9.2f} {r.p99_ms / fastapi.p99_ms:>11.2f}"
        )
    print("\n(best of", args.repeat, "interleaved rounds per server and workload)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
