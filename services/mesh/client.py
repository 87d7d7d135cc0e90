"""A typed client of the mesh's HTTP API (the deployer's and the monitor's routes)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.errors import MeshApiError
from services.registry import DEFAULT_PORTS
from services.runtime.control import ControlSettings


class ClientSettings(BaseSettings):
    """Where the CLI finds a running mesh."""

    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    deployer_url: str = Field(
        default=f"http://127.0.0.1:{DEFAULT_PORTS['deployer']}",
        description="The deployer's HTTP API and gateway, for the CLI.",
    )
    monitor_url: str = Field(
        default=f"http://127.0.0.1:{DEFAULT_PORTS['monitor']}",
        description="The monitor's status API and page, for the CLI.",
    )


class DeploymentView(BaseModel):
    """One deployment as the deployer reports it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    model: str
    version: str
    runtime: str
    ref: str
    status: str
    endpoint: str | None
    handle: str | None
    chain_id: str
    updated_at: float


class MeshClient:
    """Calls raise ``httpx.HTTPError`` when nothing answers, :class:`MeshApiError` on refusal."""

    def __init__(self, settings: ClientSettings | None = None, *, timeout: float = 10.0) -> None:
        self.settings = settings or ClientSettings()
        self.deployer_url = self.settings.deployer_url.rstrip("/")
        self.monitor_url = self.settings.monitor_url.rstrip("/")
        self.timeout = timeout
        token = ControlSettings().token()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def deployer_running(self) -> bool:
        try:
            response = httpx.get(f"{self.deployer_url}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code < 300

    def deployments(self, model: str | None = None) -> list[DeploymentView]:
        params = {"model": model} if model else None
        response = httpx.get(
            f"{self.deployer_url}/deployments",
            params=params,
            headers=self.headers,
            timeout=self.timeout,
        )
        return [DeploymentView.model_validate(row) for row in _ok(response)]

    def active(self, model: str) -> DeploymentView | None:
        return next((d for d in self.deployments(model) if d.status == "active"), None)

    def rollback(self, model: str, to_version: str | None = None) -> DeploymentView:
        params = {"to_version": to_version} if to_version else None
        response = httpx.post(
            f"{self.deployer_url}/deployments/{model}/rollback",
            params=params,
            headers=self.headers,
            timeout=300,
        )
        return DeploymentView.model_validate(_ok(response))

    def undeploy(self, model: str) -> DeploymentView:
        response = httpx.delete(
            f"{self.deployer_url}/deployments/{model}", headers=self.headers, timeout=120
        )
        return DeploymentView.model_validate(_ok(response))

    def rollout(self, model: str, command: str | None = None) -> dict[str, Any]:
        """The model's rollout in progress; ``command`` 'promote' or 'abort' asks for a decision."""
        url = f"{self.deployer_url}/deployments/{model}/rollout"
        if command is None:
            response = httpx.get(url, headers=self.headers, timeout=self.timeout)
        else:
            response = httpx.post(f"{url}/{command}", headers=self.headers, timeout=self.timeout)
        body: dict[str, Any] = _ok(response)
        return body

    def status(self) -> dict[str, Any]:
        """The monitor's ``/api/status``: deployments, health, alerts and chains."""
        response = httpx.get(f"{self.monitor_url}/api/status", headers=self.headers, timeout=5)
        body: dict[str, Any] = _ok(response)
        return body

    def gateway(self, model: str) -> str:
        """The model's stable endpoint behind the deployer's gateway."""
        return f"{self.deployer_url}/models/{model}"


def _ok(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        message = body.get("error") if isinstance(body, dict) else None
        raise MeshApiError(message or response.text or response.reason_phrase, response.status_code)
    return body
