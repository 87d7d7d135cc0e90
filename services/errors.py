"""Every error BentoMesh's services raise, in one hierarchy.

:class:`MeshError` is the root. A stage raises a :class:`StageError` for a failure it
understands; the stage runtime turns it into one ``StageFailed`` event whose ``error_type`` is
the class name (unless the class says otherwise), and moves on. Anything else is a bug or a
transient fault. Errors of the event contracts themselves are
:class:`bentomesh_contracts.errors.ContractError`: the contracts import nothing of ours.
"""

from __future__ import annotations

from typing import ClassVar


class MeshError(Exception):
    """Base class of every BentoMesh service error."""

    error_type: ClassVar[str] = "MeshError"
    """Machine-readable kind: the class name, unless a class sets it."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "error_type" not in cls.__dict__:
            cls.error_type = cls.__name__


# --- the local mesh, its broker, servers and clients ------------------------------------------


class BrokerUnavailableError(MeshError):
    """No Kafka broker could be started or reached."""


class NotReadyError(MeshError):
    """A model server did not answer ``/readyz`` in time, or exited."""


class BaseImageError(MeshError):
    """The base image could not be made; the message says which step failed."""


class MeshApiError(MeshError):
    """The mesh's HTTP API answered, and refused (``status`` is the HTTP status)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class MeshAlreadyRunning(MeshError):
    """Another process runs (or is starting) the whole mesh from this home."""


class DemoFailed(MeshError):
    """The demo could not complete; the message says which step and where the logs are."""


# --- stages: each becomes one StageFailed naming the cause ------------------------------------


class StageError(MeshError):
    """A stage cannot process an event."""

    retryable = False

    def __init__(self, reason: str, *, details: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class TransientStageError(StageError):
    """A failure that may go away by itself (engine restarting, disk full, network blip)."""

    error_type = "Transient"
    retryable = True


# packager


class Unauthorized(StageError):
    """An event its legitimate producer did not sign (unsigned, unknown key, altered, a producer
    that may not emit it), or expired, or from the future."""


class PathNotAllowed(StageError):
    """The artifact is outside the allowed roots, or its URI is not a local file."""


class ArtifactMissing(StageError):
    """No file at the artifact's location."""


class DigestMismatch(StageError):
    """The file's SHA-256 is not the one the registration states."""


class UnknownFramework(StageError):
    """The artifact is not a model of a supported library."""


class TaskMismatch(StageError):
    """The model cannot do the registered task (e.g. no ``predict_proba`` for classification)."""


class UnloadableArtifact(StageError):
    """The artifact could not be loaded."""


class FeatureCountMismatch(StageError):
    """The model takes a different number of features than the registration lists."""


class InvalidRegistration(StageError):
    """The event is well-formed but inconsistent (labels, calibration, causal spec)."""


class VersionConflict(StageError):
    """The same name:version was already packaged from a different artifact."""


class BuildFailed(StageError):
    """``bentoml build`` failed; ``details`` holds the tail of its output."""


# builder


class ImagePushFailed(TransientStageError):
    """The registry refused or did not take the image (down, full, wrong credentials)."""


class ImagePullFailed(TransientStageError):
    """The mesh's registry did not hand over an image (down, wrong credentials)."""


class ImageBuildFailed(StageError):
    """The image build failed; ``details`` holds the tail of the build log."""


class EngineUnavailable(TransientStageError):
    """The Docker engine cannot be reached right now."""


# deployer


class DeployFailed(StageError):
    """The new version never became ready; the previous version keeps serving."""


class RolloutAborted(StageError):
    """A canary or shadow candidate failed its analysis (or an operator aborted it): traffic is
    back on the serving version and the candidate is stopped; the reason holds the figures."""


class NotBuiltHere(StageError):
    """What an event asks to run or package is not in the mesh's own store: a bento tag that
    the packager did not build here, or an image the builder did not build (or not pinned)."""


class Superseded(StageError):
    """A newer registration of the model is already serving; an older one never replaces it."""


class RuntimeUnavailable(TransientStageError):
    """The runtime the image needs (e.g. the Docker engine) cannot be reached right now."""


class UnsupportedPreference(StageError):
    """A deployment preference this runtime cannot honour; refused rather than ignored."""


class NotDeployed(StageError):
    """The model has no active deployment to act on."""


class RolloutInProgress(StageError):
    """A canary or shadow rollout of the model is going on: decide it first."""


class NothingToRollBack(StageError):
    """The model has no earlier version to serve again."""
