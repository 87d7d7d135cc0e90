"""Signed events: HMAC-SHA256 over the canonical event, in the ``signature`` extension attribute.

Canonical form: the event's JSON object without ``signature``, keys sorted at every level, no
whitespace, UTF-8 (Python: ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``). It is computed from the bytes on the wire, so a producer in any language
signs what it sends. Value: ``hmac-sha256=<hex digest>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bentomesh_contracts.codec import encode
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import ContractError
from bentomesh_contracts.events import EventData

DataT = TypeVar("DataT", bound=EventData)
SCHEME = "hmac-sha256="


class SignatureError(ContractError):
    """The event is unsigned, or its signature does not match (wrong key or altered event)."""


class SigningSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key for ModelRegistered: producers sign with it, the packager "
        "refuses unsigned or wrongly signed registrations when it is set.",
    )


def canonical(raw: bytes | str) -> bytes:
    """The bytes that are signed: the event without ``signature``, canonical JSON."""
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise SignatureError("an event is a JSON object")
    body.pop("signature", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_of(raw: bytes | str, key: str) -> str:
    digest = hmac.new(key.encode(), canonical(raw), hashlib.sha256).hexdigest()
    return SCHEME + digest


def sign(event: CloudEvent[DataT], key: str) -> CloudEvent[DataT]:
    """A copy of ``event`` carrying its signature."""
    return event.model_copy(update={"signature": signature_of(encode(event), key)})


def verify(raw: bytes | str, key: str) -> None:
    """Raise :class:`SignatureError` unless ``raw`` carries a valid signature for ``key``."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SignatureError("not JSON, cannot check its signature") from exc
    given = body.get("signature") if isinstance(body, dict) else None
    if not given:
        raise SignatureError("unsigned event: a signing key is configured, sign with it")
    if not isinstance(given, str) or not given.startswith(SCHEME):
        raise SignatureError(f"unknown signature scheme; expected '{SCHEME}<hex>'")
    if not hmac.compare_digest(given, signature_of(raw, key)):
        raise SignatureError("invalid signature: wrong key, or the event was altered")
