"""What the gateway adds to a request: direct to the model vs through ``/models/<name>`` with one
version, a canary split (50/50) and a shadow mirror (every request copied), side by side.

Run: ``uv run python -m benchmarks.gateway_overhead [--duration 10] [--repeat 2]``. Needs ``wrk``.

The upstreams answer fixed JSON at once (no model work), so the differences are the gateway's:
its routing table, the proxy hop (httpx), and for a split or a mirror the per-request figures a
rollout is judged on. Servers (two upstreams and the gateway, uvicorn, one process each) share
CPU 0, wrk runs on CPU 1, single-row bodies at concurrency 32 (saturated: the added latency is
mostly queueing behind the gateway's CPU per request) and 1 (one request at a time: the hop
itself). Prints req/s, p50 and p99 per mode, and what each adds to the direct call.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.serving import stop, wrk
from services.deployer.state import Deployment, DeploymentStore

BODY = '{"rows":[{"monthly spend":4.2,"support calls":2,"tenure months":12}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(factory: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", "--factory", factory]
    cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.post(url, content=BODY, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def row(did: str, status: str, endpoint: str, strategy: str | None, share: float) -> Deployment:
    now = time.time()
    return Deployment(
        id=did,
        model="bench",
        version=did,
        runtime="process",
        ref="bench:1",
        status=status,  # type: ignore[arg-type]
        endpoint=endpoint,
        handle=None,
        chain_id="bench",
        cause_id=did,
        replaced_id=None,
        detail=None,
        cpus=1.0,
        memory_mb=512,
        created_at=now,
        updated_at=now,
        strategy=strategy,
        share=share,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode (best is kept)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    store_path = workdir / "deployer.db"
    store = DeploymentStore(store_path)
    ports = {name: free_port() for name in ("a", "b", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    servers = [serve("benchmarks.gateway_app:upstream", ports[n]) for n in ("a", "b")]
    env = {"BENCH_GATEWAY_STORE": str(store_path)}
    servers.append(serve("benchmarks.gateway_app:gateway", ports["gateway"], env))
    store.insert(row("1", "active", urls["a"], None, 0.0))
    modes = {
        "direct": (urls["a"] + "/predict", None),
        "gateway, one version": (urls["gateway"] + "/models/bench/predict", None),
        "gateway, canary split 50%": (urls["gateway"] + "/models/bench/predict", "canary"),
        "gateway, shadow mirror 100%": (urls["gateway"] + "/models/bench/predict", "shadow"),
    }
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    try:
        for url in (urls["a"], urls["b"], urls["gateway"] + "/models/bench/predict"):
            wait_up(url)
        for mode, (url, strategy) in modes.items():
            if strategy is not None:
                if store.candidate("bench") is None:
                    store.insert(row("2", "candidate", urls["b"], strategy, 0.5))
                share = 0.5 if strategy == "canary" else 1.0
                store.update("2", strategy=strategy, share=share)
            for connections in (32, 1):
                best: tuple[float, float, float] | None = None
                for attempt in range(args.repeat):
                    said = f"{mode}, c={connections}: run {attempt + 1} of {args.repeat}"
                    print(said, file=sys.stderr, flush=True)
                    figures = wrk(url, BODY, args.duration, connections, workdir)
                    if best is None or figures[2] < best[2]:
                        best = figures
                assert best is not None
                results[mode, connections] = best
    finally:
        for server in servers:
            stop(server)
    head = f"{'mode':<30}{'c':>4}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'+p50':>9}{'+p99':>9}"
    print("\n" + head)
    for (mode, connections), (rps, p50, p99) in sorted(results.items(), key=lambda r: -r[0][1]):
        direct = results["direct", connections]
        added = "" if mode == "direct" else f"{p50 - direct[1]:>9.2f}{p99 - direct[2]:>9.2f}"
        print(f"{mode:<30}{connections:>4}{rps:>10,.0f}{p50:>10.2f}{p99:>10.2f}{added}")


if __name__ == "__main__":
    main()
