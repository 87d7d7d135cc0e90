"""How to reach Kafka: settings from ``BENTOMESH_KAFKA_*`` environment variables.

Shared by the publish helper, the CLI and every service, so TLS and SASL work the same everywhere.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Connection to a Kafka-protocol broker."""

    model_config = SettingsConfigDict(env_prefix="BENTOMESH_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    sasl_username: str | None = Field(default=None, description="SASL user.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_cafile: Path | None = Field(default=None, description="CA bundle for TLS.")

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        return ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)

    def as_env(self) -> dict[str, str]:
        """These settings as ``BENTOMESH_KAFKA_*`` variables, for a child process."""
        env = {
            "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "BENTOMESH_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "BENTOMESH_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
        }
        if self.sasl_username is not None:
            env["BENTOMESH_KAFKA_SASL_USERNAME"] = self.sasl_username
        if self.sasl_password is not None:
            env["BENTOMESH_KAFKA_SASL_PASSWORD"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile is not None:
            env["BENTOMESH_KAFKA_SSL_CAFILE"] = str(self.ssl_cafile)
        return env

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if context := self.ssl_context():
            kwargs["ssl_context"] = context
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return kwargs
