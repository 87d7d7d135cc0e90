"""The monitor at scale: N local endpoints checked every few seconds; its CPU share and memory.

Run: ``uv run python -m benchmarks.monitor_scale [--endpoints 1000] [--interval 5] [--cycles 6]
[--drift]``; with ``--drift`` every endpoint also serves the drift counts of 20 features.

The endpoints are served by a separate process (uvicorn, BentoML's endpoint and metric names under
one path prefix per endpoint), so only the monitor's own work is measured: CPU seconds of this
process (getrusage) over the measured cycles, divided by their wall time, and its peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time

import httpx

SERVER = """
import sys
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
METRICS = (
    '# TYPE bentoml_service_request counter\\n'
    'bentoml_service_request_total{endpoint="/predict",http_response_code="200"} 10\\n'
    '# TYPE bentoml_service_request_duration_seconds histogram\\n'
    'bentoml_service_request_duration_seconds_bucket{endpoint="/predict",le="0.1"} 10\\n'
    'bentoml_service_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"} 10\\n'
)
async def ok(request):
    return PlainTextResponse("\\n")
async def metrics(request):
    return Response(METRICS, media_type="text/plain")
import json, os
FEATURES = [f"feature {i}" for i in range(20)]
PROFILE = {"kind": "numeric", "edges": [float(i) for i in range(9)], "shares": [0.1] * 10,
           "missing": 0.0, "range": [-1.0, 10.0]}
REFERENCE = {"rows": 10000, "bins": 10, "features": {f: PROFILE for f in FEATURES},
             "prediction": PROFILE}
CALLS = {}
async def live(request):
    # 300 more rows at every read, spread over the bins: every check closes a drift window
    e = request.path_params["e"]
    n = CALLS[e] = CALLS.get(e, 0) + 1
    counts = {"counts": [30 * n] * 10, "missing": 0, "outside": 0}
    body = {"pid": os.getpid(), "rows": 300 * n, "errors": 0, "last_error": None,
            "reference": None if b"reference=0" in request.scope["query_string"] else REFERENCE,
            "features": {f: counts for f in FEATURES}, "prediction": counts}
    return Response(json.dumps(body), media_type="application/json")
async def no_reference(request):
    return Response("{}", status_code=404, media_type="application/json")
DRIFT = os.environ.get("BENCH_DRIFT") == "1"
app = Starlette(routes=[Route("/{e}/livez", ok), Route("/{e}/readyz", ok),
                        Route("/{e}/metrics", metrics),
                        Route("/{e}/bentomesh/live", live if DRIFT else no_reference)])
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--servers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--drift",
        action="store_true",
        help="endpoints serve drift counts of 20 features; every check closes a window",
    )
    args = parser.parse_args()

    from services.monitor.checker import Target
    from services.monitor.monitor import HealthMonitor
    from services.runtime.ports import free_port

    ports = [free_port() for _ in range(args.servers)]
    workdir = tempfile.mkdtemp(prefix="bentomesh-monitor-bench-")
    with open(f"{workdir}/bentomesh_bench_endpoints.py", "w") as handle:
        handle.write(SERVER)
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bentomesh_bench_endpoints:app",
                "--port",
                str(p),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=workdir,
            env={**os.environ, "BENCH_DRIFT": "1" if args.drift else "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        for p in ports:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{p}/e0/livez", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        targets = [
            Target(f"dep-{i}", f"http://127.0.0.1:{ports[i % len(ports)]}/e{i}", f"m{i}", "1")
            for i in range(args.endpoints)
        ]
        monitor = HealthMonitor(targets, check_interval=args.interval, concurrency=100)
        drift = "with drift windows of 20 features" if args.drift else "no drift (404)"
        print(
            f"{args.endpoints} endpoints ({drift}), every {args.interval}s, "
            f"{args.cycles} measured cycles"
        )

        async def measure() -> tuple[float, float, list[float]]:
            async with monitor.session() as client:
                await monitor.run_once(client)  # warm-up: connections, first scrape
                cpu0 = time.process_time()
                wall0 = time.monotonic()
                durations = []
                for _ in range(args.cycles):
                    started = time.monotonic()
                    await monitor.run_once(client)
                    durations.append(time.monotonic() - started)
                    await asyncio.sleep(max(0.0, args.interval - durations[-1]))
                return time.process_time() - cpu0, time.monotonic() - wall0, durations

        cpu, wall, durations = asyncio.run(measure())
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        healthy = sum(1 for r in monitor.last.values() if r.live and r.ready)
        print(
            f"checked {healthy}/{args.endpoints} healthy; one cycle took "
            f"{min(durations):.2f}-{max(durations):.2f}s"
        )
        print(
            f"monitor CPU: {cpu:.1f}s over {wall:.0f}s = {100 * cpu / wall:.1f}% of one core "
            f"(target <= 25%)"
        )
        print(f"monitor peak RSS: {rss_mb:.0f} MB")
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
