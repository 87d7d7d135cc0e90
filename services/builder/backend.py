"""Which runtime serves a model: a Docker container or a local ``bentoml serve`` process."""

from __future__ import annotations

from typing import Literal

from bentomesh_contracts.events import Runtime

Backend = Literal["docker", "process", "swarm"]


def docker_available(base_url: str | None = None) -> bool:
    """Whether a Docker engine answers (``DOCKER_HOST`` or the default socket)."""
    try:
        from docker.client import DockerClient

        client = DockerClient(base_url=base_url) if base_url else DockerClient.from_env()
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def choose_backend(requested: Runtime, default: Runtime, engine_available: bool) -> Backend:
    """The event's preference wins over the mesh default; 'auto' means Docker when reachable."""
    choice = requested if requested != "auto" else default
    if choice == "auto":
        return "docker" if engine_available else "process"
    return choice
