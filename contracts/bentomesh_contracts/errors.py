"""Errors a user of the contracts can cause, each with a message that says what to do."""


class ContractError(Exception):
    """Base class of every error raised by :mod:`contracts`."""


class EventDecodeError(ContractError):
    """The bytes are not a valid BentoMesh CloudEvent of the expected type.

    ``field`` names the offending attribute (dotted path) when one can be named.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class ArtifactError(ContractError):
    """The model artifact given to the publish helper cannot be read."""
