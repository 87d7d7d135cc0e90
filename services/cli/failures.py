"""Foreseeable failures as one sentence and an exit code, never a traceback.

Commands call :func:`~services.cli.console.fail` for what they understand; whatever escapes
them reaches :func:`explain` in the entry point.
"""

from __future__ import annotations

import logging
import os

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from services.cli.console import ExitCode


class _LastError(logging.Handler):
    """Keeps the last error aiokafka logged (a TLS or SASL failure is only in its log)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


_KAFKA_LOG = _LastError()


def quiet_kafka_log() -> None:
    """aiokafka logs every failed connection attempt; keep only the last error, for the one
    sentence the CLI prints."""
    logger = logging.getLogger("aiokafka")
    logger.addHandler(_KAFKA_LOG)
    logger.propagate = False


def kafka_cause() -> str:
    """`` (what aiokafka last reported)``, or nothing."""
    return f" ({_KAFKA_LOG.last})" if _KAFKA_LOG.last else ""


def _settings_classes(base: type[BaseSettings] = BaseSettings) -> dict[str, type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {}
    for cls in base.__subclasses__():
        found[cls.__name__] = cls
        found.update(_settings_classes(cls))
    return found


def _setting_error(exc: ValidationError) -> str | None:
    """``BENTOMESH_KAFKA_SECURITY_PROTOCOL='x' is not valid: ...`` for a settings class."""
    cls = _settings_classes().get(exc.title)
    if cls is None:
        return None
    prefix = str(cls.model_config.get("env_prefix", ""))
    first = exc.errors()[0]
    variable = prefix + str(first["loc"][0]).upper() if first["loc"] else prefix.rstrip("_")
    value = os.environ.get(variable, first.get("input"))
    return f"{variable}={value!r} is not valid: {first['msg']}"


def explain(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and sentence for a failure a user can cause or fix; None for a bug."""
    import httpx
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from bentomesh_contracts.errors import ContractError
    from services.errors import MeshError

    if isinstance(exc, ContractError | MeshError):
        return ExitCode.FAILED, str(exc)  # said in a sentence already (keys, tokens, events)
    if isinstance(exc, ValidationError):
        message = _setting_error(exc)
        return (ExitCode.USAGE, message) if message else None
    if isinstance(exc, KafkaConnectionError):
        from bentomesh_contracts.kafka import KafkaSettings

        servers = os.environ.get(
            "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS",
            KafkaSettings.model_fields["bootstrap_servers"].default,
        )
        return (
            ExitCode.UNREACHABLE,
            f"no Kafka broker answers at {servers}{kafka_cause()}; start the mesh with "
            "`bentomesh up`, or point --bootstrap-servers (BENTOMESH_KAFKA_BOOTSTRAP_SERVERS) at "
            "yours",
        )
    if isinstance(exc, KafkaError):
        return ExitCode.UNREACHABLE, f"Kafka refused the request: {exc}"
    if isinstance(exc, httpx.TransportError):
        where = exc.request.url if exc.request else "the mesh"
        return ExitCode.UNREACHABLE, f"nothing answers at {where}: {exc}"
    if type(exc).__module__.startswith("docker."):
        return ExitCode.UNREACHABLE, f"the Docker engine is unreachable: {exc}"
    return None
