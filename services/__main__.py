"""``python -m services NAME [--port N]``: run one mesh service in the foreground.

``--healthcheck`` asks the running service's ``/healthz`` instead and exits 0 or 1 (the
container ``HEALTHCHECK``). NAME defaults to ``$BENTOMESH_SERVICE``, so one image serves all four.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request

from services.registry import ALL_SERVICES
from services.runtime.serve import serve
from services.runtime.settings import RuntimeSettings


def healthcheck(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
            return 0 if response.status < 300 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def main() -> None:
    by_name = {s.name: s for s in ALL_SERVICES}
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument(
        "name", nargs="?", choices=sorted(by_name), default=os.environ.get("BENTOMESH_SERVICE")
    )
    parser.add_argument("--port", type=int, default=None, help="HTTP port of /metrics, /healthz")
    parser.add_argument("--healthcheck", action="store_true", help="Probe /healthz and exit.")
    args = parser.parse_args()
    if args.name is None:
        parser.error("name a service (or set BENTOMESH_SERVICE)")
    info = by_name[args.name]
    port = args.port or info.port
    if args.healthcheck:
        sys.exit(healthcheck(port))
    runtime = RuntimeSettings()
    serve(info.create_app(), host=runtime.http_host, port=port)


if __name__ == "__main__":
    main()
