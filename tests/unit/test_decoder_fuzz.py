"""Hypothesis over the event decoders: whatever arrives, a decoder returns an event or raises
``EventDecodeError`` with a reason (which the runtime dead-letters); nothing else escapes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bentomesh_contracts import ModelRegistered, decode, decode_as, encode, new_chain
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.features import Feature
from bentomesh_contracts.signing import SignatureError, Signer, Verifier
from services.runtime.dead_letter import DeadLetter

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

VALID = json.loads(
    encode(
        new_chain(
            ModelRegistered(
                model_name="churn",
                model_version="1",
                task="classification",
                artifact_uri="/a/churn.joblib",
                artifact_sha256="a" * 64,
                features=[Feature(name="x")],
            ),
            source="fuzz",
        )
    )
)


def _paths(body: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(body, dict):
        for key, value in body.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            out += _paths(value, (*prefix, i))
    return out


PATHS = _paths(VALID)


def _mutated(path: tuple[Any, ...], value: Any, delete: bool) -> dict[str, Any]:
    body = json.loads(json.dumps(VALID))
    node = body
    for step in path[:-1]:
        node = node[step]
    if delete and isinstance(node, dict):
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return body


def _refusal(attempt: Any) -> EventDecodeError | None:
    try:
        attempt()
    except EventDecodeError as exc:
        return exc
    return None


def _decodes_or_refuses(raw: bytes) -> None:
    for attempt in (lambda: decode(raw), lambda: decode_as(raw, ModelRegistered)):
        refused = _refusal(attempt)  # any other exception fails the test
        if refused is not None:
            assert refused.reason  # a refusal always says why ...
            letter = DeadLetter(raw, None, refused.reason, "fuzz", "t", 0, 0, refused.field)
            assert letter.headers()["bentomesh-dlq-reason"]  # ... and can be dead-lettered


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@settings(max_examples=300)
@given(JSON)
def test_arbitrary_json(value: Any) -> None:
    _decodes_or_refuses(json.dumps(value).encode())


@settings(max_examples=500)
@given(st.sampled_from(PATHS), JSON, st.booleans())
def test_valid_event_with_one_field_changed_or_removed(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    _decodes_or_refuses(json.dumps(_mutated(path, value, delete)).encode())


@settings(max_examples=300)
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_signature_check_refuses_cleanly(raw: bytes) -> None:
    signer = Signer("training", Ed25519PrivateKey.generate())
    verifier = Verifier({signer.kid: signer.private.public_key()})
    with contextlib.suppress(SignatureError):  # any other exception fails the test
        verifier.verify(raw)
