"""Where alerts go: a log line, a signed webhook, or anything callable.

The webhook body is the ``HealthAlert`` JSON; ``X-BentoMesh-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the exact body bytes with the shared secret, so receivers can verify the sender.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

import httpx

from bentomesh_contracts.events import HealthAlert

AlertHandler = Callable[[HealthAlert], Awaitable[None]]
SIGNATURE_HEADER = "X-BentoMesh-Signature"

logger = logging.getLogger("bentomesh.monitor.alerts")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str, secret: str) -> bool:
    return hmac.compare_digest(sign(body, secret), signature)


async def log_handler(alert: HealthAlert) -> None:
    level = logging.WARNING if alert.state == "firing" else logging.INFO
    logger.log(
        level,
        "%s %s %s %s:%s %s",
        alert.severity.upper(),
        alert.state,
        alert.rule,
        alert.model_name,
        alert.model_version,
        alert.message,
    )


def webhook_handler(
    url: str,
    secret: str,
    *,
    attempts: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 5.0,
) -> AlertHandler:
    """POST each alert, retrying with exponential backoff on errors and 5xx answers."""

    async def send(alert: HealthAlert) -> None:
        body = alert.model_dump_json().encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            for attempt in range(attempts):
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                if attempt < attempts - 1:
                    await asyncio.sleep(backoff_s * 2**attempt)
        logger.error("webhook %s did not accept %s after %d attempts", url, alert.rule, attempts)

    return send
