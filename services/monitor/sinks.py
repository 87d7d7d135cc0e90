"""Where alerts go: a log line, a signed webhook, or anything callable.

The webhook body is the ``HealthAlert`` JSON; ``X-BentoMesh-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the exact body bytes with the shared secret, so receivers can verify the sender.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bentomesh_contracts.events import HealthAlert
from services.monitor.outbox import Deliver, Outbox

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


def webhook_delivery(url: str, secret: str, *, timeout_s: float = 5.0) -> Deliver:
    """POST one alert body, signed; an error or a 5xx answer raises (the outbox retries), a 4xx
    is the receiver refusing it for good (logged, not retried)."""

    async def deliver(item: dict[str, Any]) -> None:
        body = item["body"].encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(url, content=body, headers=headers)
        if response.status_code >= 500:
            raise RuntimeError(f"webhook {url} answered {response.status_code}")
        if response.status_code >= 400:
            logger.error("webhook %s refused an alert: %s", url, response.status_code)

    return deliver


def webhook_handler(outbox: Outbox) -> AlertHandler:
    """Queue each alert for the webhook: checks never wait for the receiver."""

    async def send(alert: HealthAlert) -> None:
        outbox.put({"body": alert.model_dump_json()})

    return send
