"""Telling "the Docker engine is unreachable" (transient: retry) from a real build/run error."""

from __future__ import annotations


def engine_unreachable(exc: BaseException) -> bool:
    """True for a failure to talk to the engine at all (socket gone, engine restarting), looking
    through the exception's causes: the SDK wraps connection errors in its own types."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.ConnectionError | ConnectionError):
            return True
        if "error while fetching server api version" in str(seen).lower():
            return True  # docker.errors.DockerException raised when the client cannot connect
        seen = seen.__cause__ or seen.__context__
    return False
