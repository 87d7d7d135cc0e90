"""The control plane's door: a bearer token for every mutating call, and Host/Origin checks.

- Mutating requests (POST, PUT, PATCH, DELETE) need ``Authorization: Bearer <token>``: 401
  without it. A browser page on another site cannot send it, and a cross-site ``Origin`` is
  refused outright (403), so a web page an operator opens cannot roll anything back.
- ``Host`` must be one this service answers to (loopback names, and ``BENTOMESH_ALLOWED_HOSTS``):
  a DNS-rebinding page that resolves its own name to 127.0.0.1 gets 403.
- Reads need the token too when the caller is not on loopback (``BENTOMESH_API_TOKEN`` for the
  CLI; the status page takes it from its URL fragment, ``/ui#token=...``).

The token is ``BENTOMESH_API_TOKEN``, else the file ``$BENTOMESH_HOME/api-token`` (0600), which
``bentomesh up`` creates on first start.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.errors import MeshError

ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret


class ControlSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    home: Path = Field(default=Path.home() / ".bentomesh", description="BentoMesh's home.")
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the control plane (rollback, undeploy; reads from beyond "
        "loopback). Default: the file $BENTOMESH_HOME/api-token, created by 'bentomesh up'.",
    )
    api_token_file: Path | None = Field(
        default=None, description="Where the token is kept (default: $BENTOMESH_HOME/api-token)."
    )
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names the deployer and monitor answer to, besides "
        "loopback (e.g. 'deployer,monitor' in docker-compose).",
    )

    @property
    def token_path(self) -> Path:
        return self.api_token_file or self.home / TOKEN_FILE

    def token(self) -> str | None:
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        try:
            return self.token_path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def ensure_token(self) -> str:
        """The token, created (0600) when there is none yet."""
        existing = self.token()
        if existing:
            return existing
        self.token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        token = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        return token

    def required_token(self) -> str:
        token = self.token()
        if not token:
            raise MeshError(
                f"no control-plane token: set BENTOMESH_API_TOKEN or create {self.token_path} "
                "('bentomesh up' makes one)"
            )
        return token


def _host_name(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


def _loopback(client: Any) -> bool:
    try:
        return ipaddress.ip_address(client[0]).is_loopback if client else False
    except ValueError:
        return False


def guarded(app: ASGI, settings: ControlSettings | None = None) -> ASGI:
    """``app`` behind the token and the Host/Origin checks."""
    settings = settings or ControlSettings()
    token = settings.required_token().encode()
    hosts = LOOPBACK_NAMES | {h.strip().lower() for h in settings.allowed_hosts.split(",") if h}

    async def guard(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if _host_name(host) not in {_host_name(h) for h in hosts}:
            await _refuse(send, 403, f"host {host!r} is not one this service answers to")
            return
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            await _refuse(send, 403, f"cross-site request from {origin} refused")
            return
        needs_token = scope["method"] in MUTATING or not _loopback(scope.get("client"))
        given = headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
        if needs_token and not hmac.compare_digest(given, token):
            await _refuse(
                send, 401, "a control-plane token is required: Authorization: Bearer <token>"
            )
            return
        await app(scope, receive, send)

    return guard


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": body})
