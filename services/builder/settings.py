"""Builder settings (``BENTOMESH_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bentomesh_contracts.events import Runtime
from services.runtime.settings import build_concurrency_field


class BuilderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    runtime: Runtime = Field(
        default="auto", description="Default runtime when an event asks for 'auto'."
    )
    image_prefix: str = Field(default="bentomesh", description="Images are <prefix>/<model>:<v>.")
    base_image: str = Field(
        default="bentomesh/python:3.11", description="Base image of model images."
    )
    registry: str | None = Field(
        default=None,
        description="Push every image here (host:port) and pin it by digest in ImageReady; "
        "deployers pull it from there.",
    )
    registry_username: str | None = Field(default=None, description="Registry user, if any.")
    registry_password: SecretStr | None = Field(default=None, description="Its password.")
    docker_host: str | None = Field(default=None, description="Docker engine URL.")
    build_timeout_s: float = Field(default=1800, description="Limit for one image build.")
    build_concurrency: int = build_concurrency_field()
