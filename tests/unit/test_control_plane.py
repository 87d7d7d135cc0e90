"""The control plane's door (token, Host, Origin), the gateway's body limit and terminal-safe
output, on real ASGI apps driven in memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.deployer.gateway import Gateway
from services.deployer.state import DeploymentStore
from services.runtime.control import ControlSettings, guarded
from services.status.render import dead_letter_line, printable

TOKEN = "t0ken-for-tests"


def _api() -> Starlette:
    calls: list[str] = []

    async def rollback(request: Request) -> JSONResponse:
        calls.append(request.path_params["model"])
        return JSONResponse({"rolled": calls})

    async def listing(request: Request) -> JSONResponse:
        return JSONResponse([])

    return Starlette(
        routes=[
            Route("/deployments", listing),
            Route("/deployments/{model}/rollback", rollback, methods=["POST"]),
        ]
    )


def _client(client: tuple[str, int] = ("127.0.0.1", 5000)) -> httpx.AsyncClient:
    settings = ControlSettings(api_token=TOKEN, allowed_hosts="deployer")
    transport = httpx.ASGITransport(app=guarded(_api(), settings), client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8103")


async def test_mutations_need_the_token() -> None:
    async with _client() as client:
        assert (await client.post("/deployments/churn/rollback")).status_code == 401
        wrong = await client.post(
            "/deployments/churn/rollback", headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        ok = await client.post(
            "/deployments/churn/rollback", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert ok.json() == {"rolled": ["churn"]}


async def test_cross_site_and_rebound_hosts_are_refused_even_with_the_token() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with _client() as client:
        foreign = await client.post(
            "/deployments/churn/rollback", headers={**auth, "Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        rebound = await client.post(
            "/deployments/churn/rollback", headers={**auth, "Host": "evil.example"}
        )
        assert rebound.status_code == 403
        same_site = await client.post(
            "/deployments/churn/rollback", headers={**auth, "Origin": "http://127.0.0.1:8103"}
        )
        assert same_site.status_code == 200
        named = await client.post(
            "/deployments/churn/rollback", headers={**auth, "Host": "deployer:8103"}
        )
        assert named.status_code == 200


async def test_reads_need_the_token_beyond_loopback() -> None:
    async with _client() as local:
        assert (await local.get("/deployments")).status_code == 200
    async with _client(("172.18.0.1", 5000)) as remote:
        assert (await remote.get("/deployments")).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await remote.get("/deployments", headers=auth)).status_code == 200


def test_the_token_file_is_created_private_once(tmp_path: Path) -> None:
    settings = ControlSettings(home=tmp_path)
    token = settings.ensure_token()
    assert len(token) >= 40
    assert settings.ensure_token() == token
    assert stat.S_IMODE(os.stat(settings.token_path).st_mode) == 0o600


async def test_the_gateway_refuses_a_large_body_with_413(tmp_path: Path) -> None:
    gateway = Gateway(DeploymentStore(tmp_path / "state.db"), max_body_bytes=1024)
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post("/models/churn/predict", content=b"x" * 4096)
        missing = await client.post("/models/churn/predict", content=b"x" * 10)
    await gateway.aclose()
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["error"]
    assert missing.status_code == 404  # under the limit: on to routing


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("\x1b[2J\x1b]0;owned\x07", "\\x1b[2J\\x1b]0;owned\\x07"), ("a\r\nb", "a\\x0d\\x0ab")],
)
def test_terminal_output_escapes_control_characters(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    line = dead_letter_line("12:00", {"reason": raw, "service": "packager"}, 3)
    assert shown in line
    assert "\x1b" not in line
