"""Signed events: Ed25519 over the canonical event, checked from the raw bytes; key ids name the
producer, which may emit only its own event types; expiry and clock skew are bounded."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bentomesh_contracts import ModelRegistered, decode, encode, new_chain
from bentomesh_contracts.envelope import follow_up
from bentomesh_contracts.events import Deployed, StageFailed
from bentomesh_contracts.features import Feature
from bentomesh_contracts.keys import KeyStore
from bentomesh_contracts.signing import PRODUCERS, SignatureError, Signer, Verifier, canonical


def _registration() -> Any:
    return new_chain(
        ModelRegistered(
            model_name="churn",
            model_version="1",
            task="classification",
            artifact_uri="/a/churn.joblib",
            artifact_sha256="a" * 64,
            features=[Feature(name="x")],
        ),
        source="test",
    )


def _deployed(cause: Any) -> Any:
    return follow_up(
        cause,
        Deployed(
            model_name="churn",
            model_version="1",
            deployment_id="d1",
            endpoint_url="http://127.0.0.1:1",
            runtime="process",
        ),
        source="bentomesh/deployer",
    )


def _signer(producer: str) -> Signer:
    return Signer(producer, Ed25519PrivateKey.generate())


def _verifier(*signers: Signer, **limits: Any) -> Verifier:
    return Verifier({s.kid: s.private.public_key() for s in signers}, **limits)


TRAINING, DEPLOYER, PACKAGER = _signer("training"), _signer("deployer"), _signer("packager")
MESH = _verifier(TRAINING, DEPLOYER, PACKAGER)


def test_signed_event_verifies_and_names_its_producer() -> None:
    assert MESH.verify(encode(TRAINING.sign(_registration()))) == "training"


def test_refuses_unsigned_event() -> None:
    with pytest.raises(SignatureError, match="unsigned"):
        MESH.verify(encode(_registration()))


def test_refuses_a_key_it_does_not_trust() -> None:
    stranger = _signer("training")
    with pytest.raises(SignatureError, match="does not trust"):
        MESH.verify(encode(stranger.sign(_registration())))


def test_refuses_a_signature_moved_to_another_trusted_key_id() -> None:
    body = json.loads(encode(TRAINING.sign(_registration())))
    _, _, sig = body["signature"].split(":")
    other = _signer("training")
    body["signature"] = f"ed25519:{other.kid}:{sig}"
    with pytest.raises(SignatureError, match="altered"):
        _verifier(TRAINING, other).verify(json.dumps(body).encode())


def test_refuses_event_altered_after_signing() -> None:
    body = json.loads(encode(TRAINING.sign(_registration())))
    body["data"]["artifact_uri"] = "/a/evil.joblib"
    with pytest.raises(SignatureError, match="altered"):
        MESH.verify(json.dumps(body).encode())


def test_refuses_unknown_scheme() -> None:
    body = json.loads(encode(_registration()))
    body["signature"] = "hmac-sha256=abc"
    with pytest.raises(SignatureError, match="form"):
        MESH.verify(json.dumps(body).encode())


def test_a_producer_emits_only_its_own_event_types() -> None:
    registration = TRAINING.sign(_registration())
    with pytest.raises(SignatureError, match="packager may not emit"):
        PACKAGER.sign(_deployed(registration))
    # a packager signing by hand what it may not emit is refused by every verifier
    forged = _deployed(registration)
    forged_raw = encode(
        forged.model_copy(update={"signature": PACKAGER.signature_of(encode(forged))})
    )
    with pytest.raises(SignatureError, match="packager may not emit"):
        MESH.verify(forged_raw)
    assert MESH.verify(encode(DEPLOYER.sign(_deployed(registration)))) == "deployer"


def test_a_stage_reports_only_its_own_failures() -> None:
    failure = StageFailed(
        stage="deployer",
        reason="r",
        error_type="E",
        failed_event_id="x",
        failed_event_type="t",
        retryable=False,
    )
    event = follow_up(_registration(), failure, source="bentomesh/packager")
    raw = encode(event.model_copy(update={"signature": PACKAGER.signature_of(encode(event))}))
    with pytest.raises(SignatureError, match="failure of the deployer"):
        MESH.verify(raw)


def test_refuses_expired_and_future_events() -> None:
    event = TRAINING.sign(_registration())
    later = _verifier(TRAINING, clock=lambda: datetime.now(UTC) + timedelta(days=8))
    with pytest.raises(SignatureError, match="expired"):
        later.verify(encode(event))
    earlier = _verifier(TRAINING, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(SignatureError, match="future"):
        earlier.verify(encode(event))
    history = _verifier(TRAINING, max_age=None, clock=later.clock)
    assert history.verify(encode(event)) == "training"


def test_refuses_a_far_future_chaintime() -> None:
    cause = _registration().model_copy(update={"time": datetime.now(UTC) + timedelta(days=365)})
    event = DEPLOYER.sign(_deployed(cause))
    with pytest.raises(SignatureError, match=r"'chaintime'.*future"):
        MESH.verify(encode(event))


def test_a_foreign_producer_signs_what_it_sends_whatever_its_key_order() -> None:
    body = json.loads(encode(_registration()))
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    digest = TRAINING.private.sign(canonical(reordered))
    signed = json.loads(reordered)
    signed["signature"] = f"ed25519:{TRAINING.kid}:{base64.urlsafe_b64encode(digest).decode()}"
    assert MESH.verify(json.dumps(signed, indent=4).encode()) == "training"


def test_signature_survives_the_wire_format() -> None:
    event = TRAINING.sign(_registration())
    assert decode(encode(event)).signature == event.signature


def test_keys_on_disk_are_private_and_rotate(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    first = keys.ensure()
    assert len(first) == len(PRODUCERS)
    assert keys.ensure() == []
    path = keys.private_path("packager")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    old = keys.signer("training").sign(_registration())
    rotated = keys.generate("training")
    new = keys.signer("training").sign(_registration())
    verifier = keys.verifier()
    assert rotated in verifier.trusted
    assert len(verifier.trusted) == len(PRODUCERS) + 1  # every producer, and the rotated-out key
    assert verifier.verify(encode(old)) == verifier.verify(encode(new)) == "training"
    (keys.trusted_dir / f"{old.signature.split(':')[1]}.pub").unlink()  # type: ignore[union-attr]
    with pytest.raises(SignatureError, match="does not trust"):
        keys.verifier().verify(encode(old))


def test_missing_keys_say_what_to_run(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    with pytest.raises(SignatureError, match="bentomesh keys init"):
        keys.signer("packager")
    with pytest.raises(SignatureError, match="bentomesh keys init"):
        keys.verifier()
