"""Secrets (SASL password, webhook secret, API token) never show in --help, reprs or logs."""

from __future__ import annotations

import logging

import pytest

from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.keys import SigningSettings
from services.monitor.settings import MonitorSettings
from services.runtime.control import ControlSettings

MARKERS = {
    "BENTOMESH_KAFKA_SASL_PASSWORD": "sasl-Pa55-marker",
    "BENTOMESH_MONITOR_WEBHOOK_SECRET": "webhook-secret-marker",
    "BENTOMESH_API_TOKEN": "api-token-marker",
}


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from services.cli.main import app

    root = get_command(app)
    out = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        out.append([name])
        for sub in getattr(command, "commands", {}):
            out.append([name, sub])
    return out


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "bentomesh")
def test_help_never_shows_a_secret(command: list[str]) -> None:
    from typer.testing import CliRunner

    from services.cli.main import app

    result = CliRunner().invoke(app, [*command, "--help"], env={**MARKERS, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    for marker in MARKERS.values():
        assert marker not in result.output


def test_settings_reprs_and_logs_hide_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)
    everything = [KafkaSettings(), SigningSettings(), MonitorSettings(), ControlSettings()]
    logging.getLogger("test").warning("settings: %s %r", everything, everything)
    text = caplog.text + repr(everything) + str(everything)
    assert "**********" in text
    for marker in MARKERS.values():
        assert marker not in text
    kwargs = KafkaSettings(security_protocol="SASL_PLAINTEXT").aiokafka_kwargs()
    assert kwargs["sasl_plain_password"] == MARKERS["BENTOMESH_KAFKA_SASL_PASSWORD"]  # used...
    assert MARKERS["BENTOMESH_KAFKA_SASL_PASSWORD"] not in repr(KafkaSettings())  # ...not shown


def test_model_processes_get_no_secret_of_the_mesh(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.runtime.bento_server import model_environment

    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BENTOMESH_KEYS_DIR", "/keys")
    monkeypatch.setenv("BENTOMESH_MAX_BODY_BYTES", "2048")
    environment = model_environment()
    assert not set(environment) & {*MARKERS, "BENTOMESH_KEYS_DIR"}
    assert environment["BENTOMESH_MAX_BODY_BYTES"] == "2048"
