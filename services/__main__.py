"""``python -m services NAME [--port N]``: run one mesh service in the foreground."""

from __future__ import annotations

import argparse

from services.registry import SERVICES
from services.runtime.serve import serve
from services.runtime.settings import RuntimeSettings


def main() -> None:
    by_name = {s.name: s for s in SERVICES}
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("name", choices=sorted(by_name))
    parser.add_argument("--port", type=int, default=None, help="HTTP port of /metrics, /healthz")
    args = parser.parse_args()
    info = by_name[args.name]
    runtime = RuntimeSettings()
    serve(info.create_app(), host=runtime.http_host, port=args.port or info.port)


if __name__ == "__main__":
    main()
