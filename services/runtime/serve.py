"""Run a service app (FastStream broker + ASGI routes) under uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn


def serve(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
    """Blocks until SIGINT/SIGTERM; uvicorn's lifespan starts and stops the broker."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
