"""A TLS- and SASL-terminating gateway in front of the test broker.

Tansu 0.6 (the broker the tests run) speaks plaintext only: its ``--cert`` flag leaves the
listener in plaintext, and its SASL needs a storage engine that the packaged build lacks. So the
tests put this gateway in front of it, the way a Kafka proxy (Kroxylicious, Envoy's Kafka filter)
terminates TLS and authenticates clients before the broker: a real TLS handshake (the client
checks the certificate against the CA it is given), a real SASL exchange (PLAIN, or SCRAM with
``scramp`` checking the proof), then bytes piped both ways. The broker advertises the gateway's
address, so every connection a client opens goes through it.

It records who connected (client id, user, mechanism, TLS) so tests can check that every service
authenticated, and refuses anything but ``ApiVersions`` before authentication, as a broker
requiring authentication does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scramp
import trustme

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
NONE, UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 0, 33, 58


@dataclass(frozen=True)
class Session:
    client_id: str
    user: str | None
    mechanism: str | None
    tls: bool


@dataclass
class Gateway:
    """Listens on 127.0.0.1:``port``; forwards to the broker at ``upstream`` (host, port)."""

    upstream: tuple[str, int]
    port: int
    mechanism: str | None = None  # "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", or no SASL
    users: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    sessions: list[Session] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None

    def start(self) -> Gateway:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
            )
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"gateway-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        try:
            session = await self._admit(client_r, client_w, broker_r, broker_w)
            if session is None:
                return
            self.sessions.append(session)
            await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            for writer in (client_w, broker_w):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _admit(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        broker_r: asyncio.StreamReader,
        broker_w: asyncio.StreamWriter,
    ) -> Session | None:
        """Until the client is authenticated: relay ApiVersions, answer the SASL requests."""
        mechanism: str | None = None
        server: Any = None
        user = ""
        while True:
            frame = await _read_frame(client_r)
            api_key, version, correlation, client_id, body = _request(frame)
            if self.mechanism is None:  # TLS only: nothing to authenticate
                broker_w.write(_framed(frame))
                return Session(client_id, None, None, self.tls is not None)
            if api_key == API_VERSIONS:
                broker_w.write(_framed(frame))
                await broker_w.drain()
                client_w.write(_framed(await _read_frame(broker_r)))
            elif api_key == SASL_HANDSHAKE:
                mechanism = _string(body, 0)[0]
                error = NONE if mechanism == self.mechanism else UNSUPPORTED_SASL_MECHANISM
                mechanisms = _string_bytes(self.mechanism)
                client_w.write(_response(correlation, struct.pack(">hi", error, 1) + mechanisms))
                if error:
                    self.refused.append(f"{client_id}: mechanism {mechanism}")
                    return None
            elif api_key == SASL_AUTHENTICATE and mechanism is not None:
                (size,) = struct.unpack_from(">i", body, 0)
                token = body[4 : 4 + size]
                if mechanism == "PLAIN":
                    user, reply, error = self._plain(token)
                    done = True
                else:
                    if server is None:
                        server = scramp.ScramMechanism(mechanism).make_server(self._auth_info)
                    user, reply, error, done = self._scram(server, token, user)
                failure = error.encode() if error else None
                payload = struct.pack(">h", SASL_AUTHENTICATION_FAILED if error else NONE)
                payload += _nullable_string(failure) + struct.pack(">i", len(reply)) + reply
                if version >= 1:
                    payload += struct.pack(">q", 0)
                client_w.write(_response(correlation, payload))
                await client_w.drain()
                if error:
                    self.refused.append(f"{client_id}: {error}")
                    return None
                if done:
                    return Session(client_id, user, mechanism, self.tls is not None)
            else:
                self.refused.append(f"{client_id}: api {api_key} before authentication")
                return None
            await client_w.drain()

    def _plain(self, token: bytes) -> tuple[str, bytes, str | None]:
        parts = token.split(b"\0")
        if len(parts) != 3:
            return "", b"", "malformed PLAIN token"
        user, password = parts[1].decode(), parts[2].decode()
        if self.users.get(user) != password:
            return user, b"", f"authentication failed for user {user!r}"
        return user, b"", None

    def _auth_info(self, user: str) -> Any:
        if user not in self.users:
            raise scramp.ScramException(f"unknown user {user!r}")
        assert self.mechanism is not None
        return scramp.ScramMechanism(self.mechanism).make_auth_info(self.users[user])

    def _scram(self, server: Any, token: bytes, user: str) -> tuple[str, bytes, str | None, bool]:
        """One SCRAM step: client-first -> server-first, client-final -> server-final."""
        text = token.decode()
        try:
            if server.stage is None:
                bare = text.split(",", 2)[2]  # after the GS2 header "n,,"
                user = dict(p.split("=", 1) for p in bare.split(","))["n"]
                server.set_client_first(text)
                return user, server.get_server_first().encode(), None, False
            server.set_client_final(text)
            return user, server.get_server_final().encode(), None, True
        except scramp.ScramException as exc:
            return "", b"", f"authentication failed: {exc}", True


def tls_material(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 signed by a fresh CA, and that CA's file for clients."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "gateway-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _response(correlation: int, payload: bytes) -> bytes:
    return _framed(struct.pack(">i", correlation) + payload)


def _request(frame: bytes) -> tuple[int, int, int, str, bytes]:
    """Request header v1 (api key, version, correlation id, client id) and the body after it.
    The SASL requests clients send before authenticating (v0, v1) are not flexible versions."""
    api_key, version, correlation = struct.unpack_from(">hhi", frame, 0)
    client_id, offset = _string(frame, 8)
    return api_key, version, correlation, client_id, frame[offset:]


def _string(data: bytes, offset: int) -> tuple[str, int]:
    (size,) = struct.unpack_from(">h", data, offset)
    if size < 0:
        return "", offset + 2
    return data[offset + 2 : offset + 2 + size].decode(), offset + 2 + size


def _string_bytes(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _nullable_string(raw: bytes | None) -> bytes:
    return struct.pack(">h", -1) if raw is None else struct.pack(">h", len(raw)) + raw
