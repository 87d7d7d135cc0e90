"""Runtime settings shared by every service, read once from ``BENTOMESH_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def build_concurrency_field() -> Any:
    """``BENTOMESH_BUILD_CONCURRENCY``, read by both build stages (packager and builder)."""
    return Field(
        default=1,
        ge=1,
        le=32,
        description="Events this service builds at once: one consumer each, up to the topic's "
        "partition count. Events of one model share a partition and stay in order.",
    )


class RuntimeSettings(BaseSettings):
    """Consumer tuning and the HTTP side (metrics, health) of a service."""

    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".bentomesh",
        description="Where the mesh keeps its state, logs and generated files.",
    )
    http_host: str = Field(default="127.0.0.1", description="Bind address of /metrics, /healthz.")
    partitions: int = Field(default=3, ge=1, description="Partitions of each mesh topic.")
    journal: bool = Field(
        default=True,
        description="Keep the embedded broker's topics and consumer offsets across restarts, "
        "in HOME/journal (a real Kafka keeps its own).",
    )
    journal_retention_h: float = Field(
        default=168.0,
        gt=0,
        description="Records older than this are dropped from the journal at start, as Kafka's "
        "default retention (7 days) would drop them.",
    )
    session_timeout_ms: int = Field(
        default=6000, ge=1000, description="Consumer session timeout; groups form in about half."
    )
    heartbeat_interval_ms: int = Field(
        default=1000, ge=100, description="Consumer heartbeat interval."
    )
    fetch_max_wait_ms: int = Field(
        default=20, ge=0, description="Low values cut per-hop latency on the embedded broker."
    )
    max_poll_interval_ms: int = Field(
        default=900_000, description="Long: a stage may build for minutes before committing."
    )
    retry_attempts: int = Field(
        default=5, ge=1, description="Attempts at an event whose stage fails transiently."
    )
    retry_base_s: float = Field(default=1.0, gt=0, description="First retry's backoff ceiling.")
    retry_cap_s: float = Field(default=30.0, gt=0, description="Longest backoff between retries.")
