"""Monitor settings (``BENTOMESH_MONITOR_*`` and a YAML rules file)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.monitor.rules import DEFAULT_RULES, Rule


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_MONITOR_", extra="ignore")

    interval_s: float = Field(default=10.0, gt=0, description="Seconds between checks.")
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="Relative interval jitter.")
    concurrency: int = Field(default=100, ge=1, description="Checks in flight at once.")
    timeout_s: float = Field(default=3.0, gt=0, description="Timeout of one HTTP request.")
    rules_file: Path | None = Field(default=None, description="YAML list of rules.")
    p99_ms: float | None = Field(default=None, description="Override the p99 latency threshold.")
    error_rate: float | None = Field(default=None, description="Override the 5xx-rate threshold.")
    down_after: int | None = Field(default=None, description="Failed checks before 'down'.")
    targets_file: Path | None = Field(
        default=None, description="Prometheus file_sd JSON of watched deployments, kept current."
    )
    sync_s: float = Field(
        default=15.0,
        ge=0,
        description="Seconds between asking the deployer what serves (0: never; then only "
        "Deployed events say what to watch).",
    )
    deployer_url: str = Field(
        default="http://127.0.0.1:8103",
        validation_alias=AliasChoices("BENTOMESH_DEPLOYER_URL", "BENTOMESH_MONITOR_DEPLOYER_URL"),
        description="The deployer's API, the authority on what serves (BENTOMESH_DEPLOYER_URL).",
    )
    drift_min_rows: int = Field(
        default=300,
        ge=50,
        description="Rows a drift window needs before it is judged against the reference "
        "(fewer: it keeps filling; no judgement).",
    )
    webhook_url: str | None = Field(default=None, description="POST alerts here.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key.")

    def rules(self) -> tuple[Rule, ...]:
        """Rules from the YAML file (a list of Rule fields), else the defaults."""
        rules = DEFAULT_RULES
        if self.rules_file is not None:
            items = yaml.safe_load(self.rules_file.read_text()) or []
            rules = tuple(Rule(**item) for item in items)
        overrides = {"p99_latency": self.p99_ms, "error_rate_5xx": self.error_rate}
        out = []
        for rule in rules:
            if overrides.get(rule.name) is not None:
                rule = replace(rule, threshold=float(overrides[rule.name]))  # type: ignore[arg-type]
            if rule.name == "endpoint_down" and self.down_after is not None:
                rule = replace(rule, fire_after=self.down_after)
            out.append(rule)
        return tuple(out)
