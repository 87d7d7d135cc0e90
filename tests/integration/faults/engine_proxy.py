"""A unix-socket proxy in front of the Docker engine that a test can cut and restore."""

from __future__ import annotations

from pathlib import Path

from tests.socket_proxy import SocketProxy


class EngineProxy(SocketProxy):
    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock") -> None:
        super().__init__(path, upstream)

    @property
    def url(self) -> str:
        return self.address
