"""Why the packager refuses a registration; each becomes one ``StageFailed`` naming the cause."""

from services.runtime.errors import StageError


class PathNotAllowed(StageError):
    error_type = "PathNotAllowed"


class ArtifactMissing(StageError):
    error_type = "ArtifactMissing"


class DigestMismatch(StageError):
    error_type = "DigestMismatch"


class UnknownFramework(StageError):
    error_type = "UnknownFramework"


class TaskMismatch(StageError):
    error_type = "TaskMismatch"


class UnloadableArtifact(StageError):
    error_type = "UnloadableArtifact"


class FeatureCountMismatch(StageError):
    error_type = "FeatureCountMismatch"


class InvalidRegistration(StageError):
    """The event is well-formed but inconsistent (labels, calibration, causal spec)."""

    error_type = "InvalidRegistration"


class VersionConflict(StageError):
    """The same name:version was already packaged from a different artifact."""

    error_type = "VersionConflict"


class BuildFailed(StageError):
    error_type = "BuildFailed"
