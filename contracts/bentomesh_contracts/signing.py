"""Signed events: Ed25519 over the canonical event, in the ``signature`` extension attribute.

Every producer signs what it emits with its own private key; every consumer verifies against the
public keys it trusts before acting. A key id names the producer and the key
(``<producer>-<fingerprint>``), so keys rotate by trusting a new public key beside the old one,
and :data:`MAY_EMIT` says which producer may emit which event type (the packager cannot emit
``Deployed``).

Canonical form: the event's JSON object without ``signature``, keys sorted at every level, no
whitespace, UTF-8 (Python: ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``). It is computed from the bytes on the wire, so a producer in any language
signs what it sends. Value: ``ed25519:<key id>:<base64url signature>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bentomesh_contracts.codec import encode
from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.errors import ContractError
from bentomesh_contracts.events import (
    BentoBuilt,
    Deployed,
    EventData,
    HealthAlert,
    ImageReady,
    ModelRegistered,
    PredictionsSampled,
    RolloutProgressed,
    StageFailed,
    Undeployed,
)

DataT = TypeVar("DataT", bound=EventData)
SCHEME: Final = "ed25519"

MAY_EMIT: Final[Mapping[str, frozenset[str]]] = {
    "training": frozenset({ModelRegistered.EVENT_TYPE}),
    "cli": frozenset({ModelRegistered.EVENT_TYPE}),
    "bridge": frozenset({ModelRegistered.EVENT_TYPE}),  # from a model registry (MLflow)
    "packager": frozenset({BentoBuilt.EVENT_TYPE, StageFailed.EVENT_TYPE}),
    "builder": frozenset({ImageReady.EVENT_TYPE, StageFailed.EVENT_TYPE}),
    "deployer": frozenset(
        {
            Deployed.EVENT_TYPE,
            Undeployed.EVENT_TYPE,
            StageFailed.EVENT_TYPE,
            RolloutProgressed.EVENT_TYPE,
            HealthAlert.EVENT_TYPE,  # a rollout it aborted
        }
    ),
    "monitor": frozenset({HealthAlert.EVENT_TYPE, PredictionsSampled.EVENT_TYPE}),
}
"""Producer -> the event types it may emit. A ``StageFailed`` must also name its producer as
the failed stage."""

PRODUCERS: Final = tuple(MAY_EMIT)
_KEY_ID = re.compile(r"^(?P<producer>[a-z]+)-(?P<fingerprint>[0-9a-f]{16})$")


class SignatureError(ContractError):
    """The event is unsigned, wrongly signed, signed by a producer that may not emit it,
    expired, or from the future."""


def canonical(raw: bytes | str) -> bytes:
    """The bytes that are signed: the event without ``signature``, canonical JSON."""
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise SignatureError("an event is a JSON object")
    body.pop("signature", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(producer: str, public: Ed25519PublicKey) -> str:
    """``<producer>-<first 16 hex digits of the SHA-256 of the raw public key>``."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{producer}-{hashlib.sha256(raw).hexdigest()[:16]}"


def producer_of(kid: str) -> str:
    match = _KEY_ID.match(kid)
    if match is None or match["producer"] not in MAY_EMIT:
        raise SignatureError(f"malformed key id {kid!r}; expected '<producer>-<16 hex digits>'")
    return match["producer"]


@dataclass(frozen=True)
class Signer:
    """One producer's private key: signs every event it emits."""

    producer: str
    private: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if self.producer not in MAY_EMIT:
            raise SignatureError(f"unknown producer {self.producer!r}; one of {PRODUCERS}")

    @property
    def kid(self) -> str:
        return key_id(self.producer, self.private.public_key())

    def signature_of(self, raw: bytes | str) -> str:
        digest = self.private.sign(canonical(raw))
        return f"{SCHEME}:{self.kid}:{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"

    def sign(self, event: CloudEvent[DataT]) -> CloudEvent[DataT]:
        """A copy of ``event`` carrying this producer's signature."""
        event_type = type(event.data).EVENT_TYPE
        if event_type not in MAY_EMIT[self.producer]:
            raise SignatureError(f"the {self.producer} may not emit {event_type}")
        unsigned = event.model_copy(update={"signature": None})
        return event.model_copy(update={"signature": self.signature_of(encode(unsigned))})


@dataclass(frozen=True)
class Verifier:
    """The public keys a consumer trusts, and how old or early an event may be."""

    trusted: Mapping[str, Ed25519PublicKey]
    max_age: timedelta | None = timedelta(days=7)  # None: a reader of history (no expiry)
    max_skew: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def verify(self, raw: bytes | str) -> str:
        """Return the producer of ``raw``; raise :class:`SignatureError` naming what is wrong."""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureError("not JSON, cannot check its signature") from exc
        if not isinstance(body, dict):
            raise SignatureError("an event is a JSON object")
        kid, signature = _split(body.get("signature"))
        public = self.trusted.get(kid)
        if public is None:
            raise SignatureError(f"signed with key {kid!r}, which this service does not trust")
        try:
            public.verify(signature, canonical(raw))
        except InvalidSignature as exc:
            raise SignatureError(
                f"invalid signature for key {kid!r}: the event was altered"
            ) from exc
        producer = producer_of(kid)
        _check_emitter(producer, body)
        self._check_times(body)
        return producer

    def _check_times(self, body: dict[str, Any]) -> None:
        now = self.clock()
        for attribute in ("time", "chaintime"):
            value = body.get(attribute)
            if value is None and attribute == "chaintime":
                continue
            when = _instant(value, attribute)
            if when - now > self.max_skew:
                raise SignatureError(
                    f"'{attribute}' {value} is in the future (allowed clock skew "
                    f"{self.max_skew.total_seconds():.0f} s)"
                )
        if self.max_age is not None and now - _instant(body.get("time"), "time") > self.max_age:
            raise SignatureError(
                f"expired: produced {body.get('time')}, more than "
                f"{self.max_age.total_seconds() / 3600:.0f} h ago"
            )


def _split(value: Any) -> tuple[str, bytes]:
    if not value:
        raise SignatureError("unsigned event: every event must be signed by its producer")
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3 or parts[0] != SCHEME:
        raise SignatureError(f"unknown signature form; expected '{SCHEME}:<key id>:<base64url>'")
    try:
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError as exc:
        raise SignatureError("the signature is not base64url") from exc
    return parts[1], signature


def _check_emitter(producer: str, body: dict[str, Any]) -> None:
    event_type = body.get("type")
    if event_type not in MAY_EMIT[producer]:
        raise SignatureError(f"the {producer} may not emit {event_type}")
    if event_type == StageFailed.EVENT_TYPE:
        data = body.get("data")
        stage = data.get("stage") if isinstance(data, dict) else None
        if stage != producer:
            raise SignatureError(f"the {producer} may not report a failure of the {stage}")


def _instant(value: Any, attribute: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureError(f"'{attribute}' is not an RFC 3339 time: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
