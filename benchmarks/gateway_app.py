"""The benchmark's processes: a model-like upstream (fixed JSON answer) and the deployer's
gateway over a store file, each an ASGI app for uvicorn (``--factory``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ANSWER = b'{"labels":["churn"],"probabilities":[{"churn":0.8,"stay":0.2}]}'


def upstream() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ANSWER})

    return app


def gateway() -> Any:
    from services.deployer.gateway import Gateway
    from services.deployer.state import DeploymentStore

    return Gateway(DeploymentStore(Path(os.environ["BENCH_GATEWAY_STORE"])))
