"""Monitor settings (``BENTOMESH_MONITOR_*`` and a YAML rules file)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.monitor.rules import DEFAULT_RULES, Rule


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_MONITOR_", extra="ignore")

    interval_s: float = Field(default=10.0, gt=0, description="Seconds between checks.")
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="Relative interval jitter.")
    concurrency: int = Field(default=100, ge=1, description="Checks in flight at once.")
    timeout_s: float = Field(default=3.0, gt=0, description="Timeout of one HTTP request.")
    rules_file: Path | None = Field(default=None, description="YAML list of rules.")
    webhook_url: str | None = Field(default=None, description="POST alerts here.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key.")

    def rules(self) -> tuple[Rule, ...]:
        """Rules from the YAML file (a list of Rule fields), else the defaults."""
        if self.rules_file is None:
            return DEFAULT_RULES
        items = yaml.safe_load(self.rules_file.read_text()) or []
        return tuple(Rule(**item) for item in items)
