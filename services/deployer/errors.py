"""Why a deployment did not happen."""

from services.runtime.errors import StageError, TransientStageError


class DeployFailed(StageError):
    """The new version never became ready; the previous version keeps serving."""

    error_type = "DeployFailed"


class Superseded(StageError):
    """A newer registration of the model is already serving; an older one never replaces it."""

    error_type = "Superseded"


class RuntimeUnavailable(TransientStageError):
    """The runtime the image needs (e.g. the Docker engine) cannot be reached right now."""

    error_type = "RuntimeUnavailable"


class NothingToRollBack(StageError):
    error_type = "NothingToRollBack"
