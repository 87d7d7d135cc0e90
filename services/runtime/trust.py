"""One service's part in the mesh's trust: the key it signs with and the keys it verifies with.

Loaded once per service at start. Without keys the service refuses to start (secure by default);
``BENTOMESH_INSECURE_UNSIGNED=true`` is the explicit, loudly logged opt-out. A key id it does not
know makes it read the trusted keys again when the folder changed since it last did, so a rotated
key is taken up without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from bentomesh_contracts.envelope import CloudEvent
from bentomesh_contracts.events import EventData
from bentomesh_contracts.keys import KeyStore, SigningSettings, warn_insecure
from bentomesh_contracts.signing import SignatureError, Signer, Verifier
from services.errors import Unauthorized

DataT = TypeVar("DataT", bound=EventData)


@dataclass
class Trust:
    producer: str
    signer: Signer | None
    verifier: Verifier | None
    keys: KeyStore | None = None
    _seen: int = field(default=-1)  # mtime (ns) of the trusted folder when last read

    @classmethod
    def load(cls, producer: str, settings: SigningSettings | None = None) -> Trust:
        """``producer``'s signer and the mesh's verifier from the keys directory."""
        settings = settings or SigningSettings()
        if settings.insecure_unsigned:
            warn_insecure(producer)
            return cls(producer, None, None)
        keys = settings.keys
        return cls(producer, keys.signer(producer), keys.verifier(settings), keys)

    @classmethod
    def insecure(cls, producer: str) -> Trust:
        """Neither signs nor verifies: for documentation and unit tests of other concerns."""
        return cls(producer, None, None)

    def history_reader(self) -> Trust:
        """The same keys without expiry: for rebuilding state from a topic's whole history,
        where old events are expected (replays are handled by what the reader does)."""
        if self.verifier is None:
            return self
        return replace(self, verifier=replace(self.verifier, max_age=None))

    def sign(self, event: CloudEvent[DataT]) -> CloudEvent[DataT]:
        return self.signer.sign(event) if self.signer is not None else event

    def check(self, raw: bytes) -> None:
        """Raise :class:`Unauthorized` unless ``raw`` is an event its legitimate producer signed,
        neither expired nor from the future."""
        if self.verifier is None:
            return
        try:
            self.verifier.verify(raw)
        except SignatureError as exc:
            if "does not trust" in str(exc) and self._reload():
                self.check(raw)
                return
            raise Unauthorized(f"refused: {exc}") from None

    def _reload(self) -> bool:
        """Read the trusted keys again if their folder changed; False when nothing is new."""
        if self.keys is None or self.verifier is None:
            return False
        try:
            changed = self.keys.trusted_dir.stat().st_mtime_ns
        except OSError:
            return False
        if changed == self._seen:
            return False
        self._seen = changed
        trusted = self.keys.trusted()
        if trusted.keys() == self.verifier.trusted.keys():
            return False
        self.verifier = replace(self.verifier, trusted=trusted)
        return True

    def accepts(self, raw: bytes) -> bool:
        try:
            self.check(raw)
        except Unauthorized:
            return False
        return True


def verified(trust: Trust, raw: Any) -> bool:
    """``trust.accepts`` for a record value that may be missing."""
    return isinstance(raw, bytes | bytearray) and trust.accepts(bytes(raw))
