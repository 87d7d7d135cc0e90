"""MLflow's webhook deliveries: signature check, replay guard, and what a delivery asks for.

MLflow signs ``<delivery id>.<timestamp>.<body>`` with HMAC-SHA256 and sends
``X-MLflow-Signature: v1,<base64>`` with ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``
(the Standard Webhooks scheme).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

SIGNATURE = "x-mlflow-signature"
TIMESTAMP = "x-mlflow-timestamp"
DELIVERY_ID = "x-mlflow-delivery-id"

VERSION_CREATED = "model_version.created"
ALIAS_CREATED = "model_version_alias.created"


class Refused(Exception):
    """The delivery is not MLflow's, or too old; the message says why (sent back with a 401)."""


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str  # "<entity>.<action>", e.g. model_version.created
    model: str | None
    version: str | None
    alias: str | None


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for ``body``."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, headers: dict[str, str], body: bytes, *, now: float, max_skew_s: float
) -> Delivery:
    """The delivery in ``body`` once its signature and timestamp check out; :class:`Refused`
    otherwise. ``headers`` keys are lower case."""
    delivery_id, stamp = headers.get(DELIVERY_ID), headers.get(TIMESTAMP)
    signature = headers.get(SIGNATURE)
    if not delivery_id or not stamp or not signature:
        raise Refused(f"a webhook needs the {SIGNATURE}, {TIMESTAMP} and {DELIVERY_ID} headers")
    try:
        sent = float(stamp)
    except ValueError:
        raise Refused(f"{TIMESTAMP} {stamp!r} is not a Unix time") from None
    if abs(now - sent) > max_skew_s:
        raise Refused(
            f"the delivery is {now - sent:.0f} s old; at most {max_skew_s:.0f} s is "
            "accepted (a replay, or clocks apart)"
        )
    expected = sign(secret, delivery_id, stamp, body)
    offered = [s.strip() for s in signature.split(" ")]  # several when the secret rotates
    if not any(hmac.compare_digest(expected, s) for s in offered):
        raise Refused("the signature does not match the webhook secret")
    try:
        payload: dict[str, Any] = json.loads(body)
        data = payload.get("data") or {}
        event = f"{payload['entity']}.{payload['action']}"
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refused("the body is not an MLflow webhook payload") from None
    version = data.get("version")
    return Delivery(
        delivery_id=delivery_id,
        event=event,
        model=data.get("name"),
        version=str(version) if version is not None else None,
        alias=data.get("alias"),
    )
