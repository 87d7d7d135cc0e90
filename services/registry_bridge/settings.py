"""Registry bridge settings (``BENTOMESH_MLFLOW_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _unset_if_empty(value: object) -> object:
    """Compose passes an unset variable as '': that means not configured, never 'empty'."""
    return None if value == "" else value


Optional = Annotated[str | None, BeforeValidator(_unset_if_empty)]


def _names(value: object) -> object:
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    return value


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_MLFLOW_", extra="ignore")

    tracking_uri: Optional = Field(
        default=None,
        description="The MLflow tracking server (http://host:5000); set, 'bentomesh up' starts "
        "the bridge.",
    )
    alias: Optional = Field(
        default=None,
        description="Deploy the version that holds this alias (e.g. 'champion'); unset: deploy "
        "each new version.",
    )
    models: Annotated[list[str], NoDecode, BeforeValidator(_names)] = Field(
        default_factory=list,
        description="Registered models to follow (comma-separated); all when empty.",
    )
    webhook_secret: Annotated[SecretStr | None, BeforeValidator(_unset_if_empty)] = Field(
        default=None,
        description="The secret of the MLflow webhook; without it the webhook endpoint refuses "
        "every delivery.",
    )
    poll_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds between polls of the registry; unset: 60 with a webhook secret "
        "(a safety net for deliveries missed while the bridge was down), 10 without (MLflow "
        "servers without webhooks: file backend, managed services); 0: never.",
    )
    max_skew_s: float = Field(
        default=300.0, gt=0, description="Oldest webhook timestamp accepted (replay guard)."
    )
    ledger_path: Path | None = Field(
        default=None,
        description="Where the bridge records what it published (SQLite); default "
        "$BENTOMESH_HOME/registry-bridge.db.",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Tries of a tag write back to MLflow before giving up."
    )

    @property
    def poll_interval_s(self) -> float:
        if self.poll_s is not None:
            return self.poll_s
        return 10.0 if self.webhook_secret is None else 60.0

    @property
    def trigger(self) -> str:
        """``version``, or ``alias:<name>``: what makes a model version deploy."""
        return f"alias:{self.alias}" if self.alias else "version"

    def follows(self, model: str) -> bool:
        return not self.models or model in self.models
