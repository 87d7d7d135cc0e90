"""Errors of the mesh runtime and the stages.

A stage raises :class:`StageError` (or a subclass) for a failure it understands; the runtime
turns it into one ``StageFailed`` event and moves on. Anything else is a bug or a transient fault.
"""


class MeshError(Exception):
    """Base class of BentoMesh runtime errors."""


class BrokerUnavailableError(MeshError):
    """No Kafka broker could be started or reached."""


class StageError(MeshError):
    """A stage cannot process an event. ``error_type`` is the machine-readable kind."""

    error_type = "StageError"
    retryable = False

    def __init__(self, reason: str, *, details: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class TransientStageError(StageError):
    """A failure that may go away by itself (engine restarting, disk full, network blip)."""

    error_type = "Transient"
    retryable = True
