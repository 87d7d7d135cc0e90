"""Signed ModelRegistered: HMAC-SHA256 over the canonical event, checked from the raw bytes."""

from __future__ import annotations

import json

import pytest

from bentomesh_contracts import ModelRegistered, encode, new_chain
from bentomesh_contracts.features import Feature
from bentomesh_contracts.signing import SignatureError, canonical, sign, verify

KEY = "k3y-for-tests"


def _event():  # type: ignore[no-untyped-def]
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


def test_signed_event_verifies() -> None:
    verify(encode(sign(_event(), KEY)), KEY)


def test_refuses_unsigned_event() -> None:
    with pytest.raises(SignatureError, match="unsigned"):
        verify(encode(_event()), KEY)


def test_refuses_signature_made_with_another_key() -> None:
    with pytest.raises(SignatureError, match="invalid signature"):
        verify(encode(sign(_event(), "another key")), KEY)


def test_refuses_event_altered_after_signing() -> None:
    body = json.loads(encode(sign(_event(), KEY)))
    body["data"]["artifact_uri"] = "/a/evil.joblib"
    with pytest.raises(SignatureError, match="invalid signature"):
        verify(json.dumps(body).encode(), KEY)


def test_refuses_unknown_scheme() -> None:
    body = json.loads(encode(_event()))
    body["signature"] = "md5=abc"
    with pytest.raises(SignatureError, match="scheme"):
        verify(json.dumps(body).encode(), KEY)


def test_a_foreign_producer_signs_what_it_sends_whatever_its_key_order() -> None:
    body = json.loads(encode(_event()))
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    import hashlib
    import hmac

    signature = hmac.new(KEY.encode(), canonical(reordered), hashlib.sha256).hexdigest()
    signed = json.loads(reordered)
    signed["signature"] = f"hmac-sha256={signature}"
    verify(json.dumps(signed, indent=4).encode(), KEY)


def test_signature_survives_the_wire_format() -> None:
    from bentomesh_contracts import decode

    event = sign(_event(), KEY)
    assert decode(encode(event)).signature == event.signature
