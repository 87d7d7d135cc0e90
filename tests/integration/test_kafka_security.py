"""TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) settings are honoured by every service and
the CLI: the whole mesh runs a registration to a served model through a gateway that accepts
nothing but the configured protocol (see ``tests/kafka_gateway.py`` for why a gateway), and wrong
credentials or an unknown CA fail with a clear error.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pytest
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression

from bentomesh_contracts import Deployed
from bentomesh_contracts.kafka import KafkaSettings
from services.mesh.local import LocalMesh
from services.runtime.embedded_broker import EmbeddedBroker
from services.runtime.ports import free_port
from services.runtime.settings import RuntimeSettings
from tests.kafka_gateway import Gateway, tls_material
from tests.kafka_helpers import Collector, wait_deployed

pytestmark = pytest.mark.integration

USER, PASSWORD = "mesh", "s3cret-mesh-password"
SERVICES = ("packager", "builder", "deployer", "monitor")
# mode: (security protocol, SASL mechanism, TLS)
MODES = {
    "sasl-plain": ("SASL_PLAINTEXT", "PLAIN", False),
    "sasl-scram-256": ("SASL_PLAINTEXT", "SCRAM-SHA-256", False),
    "tls": ("SSL", None, True),
    "tls-scram-512": ("SASL_SSL", "SCRAM-SHA-512", True),
}


@dataclass
class Secured:
    kafka: KafkaSettings
    gateway: Gateway


@contextmanager
def secured_broker(mode: str, directory: Path) -> Iterator[Secured]:
    protocol, mechanism, tls = MODES[mode]
    port = free_port()
    broker = EmbeddedBroker(log_path=directory / "broker.log", advertised=f"127.0.0.1:{port}")
    broker.start()
    context, ca_file = tls_material(directory) if tls else (None, None)
    gateway = Gateway((broker.host, broker.port), port, mechanism, {USER: PASSWORD}, context)
    gateway.start()
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol=protocol,
        sasl_mechanism=mechanism or "PLAIN",
        sasl_username=USER if mechanism else None,
        sasl_password=SecretStr(PASSWORD) if mechanism else None,
        ssl_cafile=ca_file,
    )
    try:
        yield Secured(kafka, gateway)
    finally:
        gateway.stop()
        broker.stop()


def cli(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **kafka.as_env()}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def artifact(artifact_root: Path) -> Path:
    x = np.random.default_rng(11).normal(size=(100, 2))
    path = artifact_root / "secured.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
    return path


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", list(MODES))
def test_every_service_and_the_cli_work_through_tls_and_sasl(
    mode: str, artifact: Path, tmp_path: Path
) -> None:
    _, mechanism, tls = MODES[mode]
    with secured_broker(mode, tmp_path) as secured:
        mesh = LocalMesh(
            secured.kafka,
            RuntimeSettings(home=tmp_path / "mesh"),
            free_ports=True,
            extra_env={"BENTOMESH_RUNTIME": "process", "BENTOMESH_MONITOR_INTERVAL_S": "1"},
        )
        mesh.start(timeout=180)  # every service healthy: its broker connection is up
        try:
            registered = cli(
                secured.kafka,
                "register",
                "--model-path", str(artifact),
                "--name", f"secured-{mode}",
                "--version", "1",
                "--task", "classification",
                "--features", "a,b",
                "--runtime", "process",
                "--no-wait",
            )  # fmt: skip
            assert registered.returncode == 0, registered.stdout + registered.stderr
            chain = registered.stdout.split("chain=")[1].split()[0]

            async def deployed() -> None:
                async with Collector(secured.kafka) as collector:
                    await wait_deployed(collector, chain, timeout=300)

            asyncio.run(deployed())
            tail = cli(secured.kafka, "events", "tail", "--no-follow", "--json", "--chain", chain)
            assert tail.returncode == 0, tail.stderr
            assert Deployed.EVENT_TYPE in tail.stdout
        finally:
            mesh.stop()

    sessions = secured.gateway.sessions
    connected = {s.client_id for s in sessions}
    for service in SERVICES:
        assert f"bentomesh-{service}" in connected, connected
    assert secured.gateway.refused == []
    assert all(s.tls == tls for s in sessions)
    if mechanism:
        assert {(s.user, s.mechanism) for s in sessions} == {(USER, mechanism)}


def test_wrong_password_and_unknown_ca_fail_with_a_clear_error(
    artifact: Path, tmp_path: Path
) -> None:
    with secured_broker("tls-scram-512", tmp_path) as secured:
        register = (
            "register",
            "--model-path", str(artifact),
            "--name", "refused",
            "--version", "1",
            "--task", "classification",
            "--features", "a,b",
        )  # fmt: skip
        wrong = secured.kafka.model_copy(update={"sasl_password": SecretStr("not-it")})
        refused = cli(wrong, *register)
        assert refused.returncode != 0
        assert "could not publish" in refused.stderr + refused.stdout
        assert any("authentication failed" in r for r in secured.gateway.refused)
        assert "not-it" not in refused.stderr + refused.stdout  # the secret is not echoed

        other_ca = tmp_path / "other"
        other_ca.mkdir()
        _, unknown = tls_material(other_ca)
        untrusted = cli(secured.kafka.model_copy(update={"ssl_cafile": unknown}), *register)
        assert untrusted.returncode != 0
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr + untrusted.stdout
        assert secured.gateway.sessions == []  # nothing got through
