"""The packager's settings, from ``BENTOMESH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.packager import intake
from services.runtime.settings import build_concurrency_field


class PackagerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    home: Path = Field(default=Path.home() / ".bentomesh")
    artifact_roots: str = Field(
        default="",
        description="':'-separated directories artifacts may be read from; "
        "default: $BENTOMESH_HOME/artifacts.",
    )
    build_timeout_s: float = Field(default=900, description="Limit for one bento build.")
    build_concurrency: int = build_concurrency_field()
    base_image: str | None = Field(
        default=None,
        description="Base image written into each bento's Dockerfile (bentoml containerize); "
        "unset: BentoML's own (python:3.11-slim). The builder uses its own base image.",
    )

    def roots(self) -> tuple[Path, ...]:
        return intake.parse_roots(self.artifact_roots or str(self.home / "artifacts"))
