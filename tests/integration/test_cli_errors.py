"""The CLI as a newcomer meets it: every foreseeable failure is one sentence and a documented
exit code (1 failed, 2 usage, 3 unreachable), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bentomesh_contracts.kafka import KafkaSettings
from services.runtime.ports import free_port

pytestmark = pytest.mark.integration


def bentomesh(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BENTOMESH_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, "COLUMNS": "200", **env},
    )


def one_sentence(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.joblib"
    path.write_bytes(b"x")
    return path


def register_args(path: Path, **overrides: str) -> list[str]:
    options = {"model": "churn", "version": "1", "task": "classification", "features": "a"}
    options.update(overrides)
    args = ["register", "--model-path", str(path)]
    for flag, value in options.items():
        args += [f"--{flag}", value]
    return args


def test_broker_down_is_exit_3_naming_the_address() -> None:
    down = f"127.0.0.1:{free_port()}"
    for command in (["events", "tail", "--no-follow"], ["dlq", "list"], ["dlq", "replay"]):
        one_sentence(bentomesh("--bootstrap-servers", down, *command), 3, down, "bentomesh up")


def test_register_with_the_broker_down_is_exit_3(model: Path) -> None:
    down = f"127.0.0.1:{free_port()}"
    home = os.environ["BENTOMESH_HOME"]  # the session's, with its signing keys
    result = bentomesh(
        *register_args(model), BENTOMESH_KAFKA_BOOTSTRAP_SERVERS=down, BENTOMESH_HOME=home
    )
    one_sentence(result, 3, "could not publish", down)


def test_register_without_a_signing_key_says_how_to_make_one(model: Path, tmp_path: Path) -> None:
    result = bentomesh(*register_args(model), BENTOMESH_HOME=str(tmp_path / "empty"))
    one_sentence(result, 1, "no signing key for the cli", "bentomesh keys init")


def test_a_bad_setting_names_the_variable() -> None:
    result = bentomesh("dlq", "list", BENTOMESH_KAFKA_SECURITY_PROTOCOL="bogus")
    one_sentence(result, 2, "BENTOMESH_KAFKA_SECURITY_PROTOCOL='bogus'", "SASL_SSL")


def test_a_bad_value_names_the_flag_and_is_printed_verbatim(model: Path) -> None:
    result = bentomesh(*register_args(model, version="v1.0-RC1"))
    one_sentence(result, 2, "--version 'v1.0-RC1' is not valid", "[a-z0-9._-]")


def test_choices_are_listed_and_a_wrong_one_is_a_usage_error(model: Path) -> None:
    result = bentomesh(*register_args(model, task="klass"))
    assert result.returncode == 2
    assert "classification" in result.stderr
    assert "regression" in result.stderr
    assert "classification" in bentomesh("register", "-h").stdout


def test_unreachable_deployer_is_exit_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    one_sentence(bentomesh("--deployer-url", url, "status"), 3, url)
    one_sentence(bentomesh("--deployer-url", url, "rollback", "--model", "churn"), 3, url)


def test_invalid_image_reference_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "compose.yaml"
    result = bentomesh("compose", "not an image!!", "--out", str(out))
    one_sentence(result, 2, "'not an image!!' is not an image reference")
    assert not out.exists()


def test_log_text_with_markup_is_printed_as_it_is(model: Path) -> None:
    result = bentomesh(*register_args(model, model="[/bold] x"))
    one_sentence(result, 2, "'[/bold] x'")


def test_version_help_and_short_topic_names(kafka: KafkaSettings) -> None:
    assert bentomesh("--version").stdout.startswith("bentomesh ")
    assert "Usage" in bentomesh("-h").stdout
    tail = bentomesh(
        "events", "tail", "--no-follow", "--topic", "health-alert",
        BENTOMESH_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
    )  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    one_sentence(bentomesh("events", "tail", "--topic", "nope"), 2, "health-alert")
