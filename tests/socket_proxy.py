"""A proxy a test can cut and restore: the real upstream (the Docker engine's unix socket, a
broker's TCP port), made unreachable on demand without touching what other tests use."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Self


class SocketProxy:
    """Listens on ``listen`` (a unix-socket path, or a TCP port on 127.0.0.1) and pipes each
    connection to ``upstream`` (a path, or ``(host, port)``)."""

    def __init__(self, listen: Path | int, upstream: str | tuple[str, int]) -> None:
        self.listen = listen
        self.upstream = upstream
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        if isinstance(self.listen, Path):
            return f"unix://{self.listen}"
        return f"127.0.0.1:{self.listen}"

    def start(self) -> Self:
        if isinstance(self.listen, Path):
            self.listen.unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.listen))
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.listen))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """The upstream goes away: new connections are refused, open ones dropped."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        for sock in [listener, *sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        if isinstance(self.listen, Path):
            self.listen.unlink(missing_ok=True)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if isinstance(self.upstream, str):
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            else:
                upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
