"""Signing keys on disk, and the settings that say where they are.

Layout of a keys directory (default ``$BENTOMESH_HOME/keys``)::

    <producer>/signing.pem     the producer's Ed25519 private key (PKCS#8; file 0600, folder 0700)
    trusted/<key id>.pub       public keys every consumer trusts (PEM); several per producer
                               while a key rotates

A service that only verifies needs ``trusted/`` alone; each producer needs its own folder. In
docker-compose each folder is a volume of its own, so no service holds another's private key.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bentomesh_contracts.signing import PRODUCERS, SignatureError, Signer, Verifier, producer_of

logger = logging.getLogger("bentomesh.keys")

PRIVATE_NAME = "signing.pem"
TRUSTED = "trusted"


class SigningSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    home: Path = Field(default=Path.home() / ".bentomesh", description="BentoMesh's home.")
    keys_dir: Path | None = Field(
        default=None,
        description="Signing keys: '<producer>/signing.pem' and 'trusted/<key id>.pub' "
        "(default: $BENTOMESH_HOME/keys).",
    )
    insecure_unsigned: bool = Field(
        default=False,
        description="INSECURE: emit unsigned events and act on any event. For experiments only; "
        "every service logs a warning at start.",
    )
    event_max_age_s: float = Field(
        default=7 * 86400.0, gt=0, description="Older events are refused as expired."
    )
    clock_skew_s: float = Field(
        default=300.0, ge=0, description="How far in the future an event's time may be."
    )

    @property
    def keys(self) -> KeyStore:
        return KeyStore(self.keys_dir or self.home / "keys")


class KeyStore:
    """A keys directory: generate, rotate, load signers and verifiers."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def trusted_dir(self) -> Path:
        return self.root / TRUSTED

    def private_path(self, producer: str) -> Path:
        return self.root / producer / PRIVATE_NAME

    def generate(self, producer: str) -> str:
        """A new key for ``producer`` (replacing its private key; the old public key stays
        trusted until removed, so events in flight still verify). Returns the key id."""
        if producer not in PRODUCERS:
            raise SignatureError(f"unknown producer {producer!r}; one of {', '.join(PRODUCERS)}")
        private = Ed25519PrivateKey.generate()
        signer = Signer(producer, private)
        folder = self.private_path(producer).parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        _write_private(self.private_path(producer), pem)
        self.trust(signer.kid, private.public_key())
        return signer.kid

    def trust(self, kid: str, public: Ed25519PublicKey) -> Path:
        producer_of(kid)
        self.trusted_dir.mkdir(parents=True, exist_ok=True)
        path = self.trusted_dir / f"{kid}.pub"
        path.write_bytes(public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
        return path

    def ensure(self, producers: tuple[str, ...] = PRODUCERS) -> list[str]:
        """Generate the keys that are missing; returns the new key ids."""
        created = []
        for producer in producers:
            if not self.private_path(producer).exists():
                created.append(self.generate(producer))
        return created

    def signer(self, producer: str) -> Signer:
        path = self.private_path(producer)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise SignatureError(
                f"no signing key for the {producer} at {path}: run 'bentomesh keys init' "
                "(or set BENTOMESH_KEYS_DIR to where the keys are)"
            ) from None
        private = load_pem_private_key(pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SignatureError(f"{path} is not an Ed25519 private key")
        return Signer(producer, private)

    def trusted(self) -> dict[str, Ed25519PublicKey]:
        keys: dict[str, Ed25519PublicKey] = {}
        for path in sorted(self.trusted_dir.glob("*.pub")):
            public = load_pem_public_key(path.read_bytes())
            if isinstance(public, Ed25519PublicKey):
                keys[path.stem] = public
        return keys

    def verifier(self, settings: SigningSettings | None = None) -> Verifier:
        settings = settings or SigningSettings()
        trusted = self.trusted()
        if not trusted:
            raise SignatureError(
                f"no trusted public keys in {self.trusted_dir}: run 'bentomesh keys init' "
                "(or set BENTOMESH_KEYS_DIR to where the keys are)"
            )
        return Verifier(
            trusted,
            max_age=timedelta(seconds=settings.event_max_age_s),
            max_skew=timedelta(seconds=settings.clock_skew_s),
        )


def _write_private(path: Path, pem: bytes) -> None:
    """Written 0600 from the first byte (never world-readable, even briefly)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, path)


def warn_insecure(service: str) -> None:
    logger.warning(
        "INSECURE: %s runs with BENTOMESH_INSECURE_UNSIGNED=true: it emits unsigned events and "
        "acts on events from anyone who can write to the broker",
        service,
    )
