"""A bento served by one BentoML worker process, without BentoML's supervisor:
``python -m services.runtime.serve_one bentoml serve TAG --host H --port P`` (the command line
reads ``bentoml serve TAG``, like the supervised server's, for whoever looks for it).

``bentoml serve`` starts a supervisor (circus) that imports BentoML and loads the service, binds
the socket, then spawns the worker, which imports and loads it all again: 4.6 s from start to
``/readyz`` for a logistic regression on this machine, against 2.4 s for the worker alone. A
bento with one worker and no dependent services needs nothing of the supervisor (the deployer
restarts a server that died), so this binds the socket and runs BentoML's own worker entry point
on it: the same app, settings and metrics. Bentos with more workers go through ``bentoml serve``
(:func:`needs_supervisor`).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml


def needs_supervisor(bento_dir: Path) -> bool:
    """True when the bento runs more than one worker or dependent services (``bentoml serve``
    then supervises them), or when ``BENTOMESH_SERVE_SUPERVISED=1`` asks for it."""
    if os.environ.get("BENTOMESH_SERVE_SUPERVISED", "0") not in ("", "0"):
        return True
    try:
        info: dict[str, Any] = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return True  # bentoml serve reports what is wrong with it
    services = info.get("services") or []
    if len(services) != 1:
        return True
    config = services[0].get("config") or {}
    workers = config.get("workers", 1)
    return workers != 1 or bool(services[0].get("dependencies"))


def _fresh_metrics_dir() -> None:
    """An empty ``$PROMETHEUS_MULTIPROC_DIR`` (a new one when unset), as ``bentoml serve``
    leaves it: counts of an earlier run of this server do not carry over."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bentomesh-metrics-")
        return
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def _listening(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="serve_one", description=__doc__)
    parser.add_argument("bentoml", choices=["bentoml"])
    parser.add_argument("serve", choices=["serve"])
    parser.add_argument("bento")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args(argv)
    _fresh_metrics_dir()
    from _bentoml_impl.worker.service import main as worker  # type: ignore[import-untyped]
    from bentoml._internal.configuration.containers import BentoMLContainer

    BentoMLContainer.prometheus_multiproc_dir.set(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    sock = _listening(args.host, args.port, args.backlog)
    where = ["--fd", str(sock.fileno()), "--backlog", str(args.backlog)]
    worker.main([args.bento, *where, "--worker-id", "1", "--args", "{}"], prog_name="bentoml")


if __name__ == "__main__":
    main(sys.argv[1:])
