"""``bentomesh doctor`` on real homes: a set-up one passes, exposed keys and two active rows of
one model are failures named in a sentence."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from bentomesh_contracts.keys import KeyStore
from services.cli.main import app
from services.deployer.state import DeploymentStore
from services.mesh.doctor import check_journal
from services.runtime.control import ControlSettings
from services.runtime.journal import Journal, Record


def _doctor(home: Path) -> tuple[int, list[dict[str, str]]]:
    env = {"BENTOMESH_HOME": str(home), "BENTOMESH_KEYS_DIR": str(home / "keys"),
           "BENTOMESH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # fmt: skip
    result = CliRunner().invoke(app, ["doctor", "-o", "json"], env=env)
    return result.exit_code, [json.loads(line) for line in result.output.splitlines() if line]


def test_a_set_up_home_passes_and_exposed_keys_fail(tmp_path: Path) -> None:
    KeyStore(tmp_path / "keys").ensure()
    ControlSettings(home=tmp_path).ensure_token()
    code, findings = _doctor(tmp_path)
    levels = {f["check"]: f["level"] for f in findings}
    assert code == 0, findings
    assert levels["keys"] == levels["token"] == "ok"
    assert levels["broker"] == "warn"
    (tmp_path / "keys" / "deployer" / "signing.pem").chmod(0o644)
    code, findings = _doctor(tmp_path)
    assert code == 1
    assert any("readable by others: deployer" in f["detail"] for f in findings)


def test_two_active_deployments_of_one_model_are_a_failure(tmp_path: Path) -> None:
    KeyStore(tmp_path / "keys").ensure()
    ControlSettings(home=tmp_path).ensure_token()
    DeploymentStore(tmp_path / "deployer.db")  # the schema, then a state no deployer writes
    with sqlite3.connect(tmp_path / "deployer.db") as db:
        db.execute("DROP INDEX one_active_per_model")
        for n in (1, 2):
            db.execute(
                "INSERT INTO deployments (id, model, version, runtime, ref, status, endpoint, "
                "chain_id, cause_id, cpus, memory_mb, created_at, updated_at) VALUES "
                "(?, 'churn', ?, 'process', 'churn:1', 'active', 'http://127.0.0.1:1', 'k', 'c', "
                "1, 1024, 0, 0)",
                (f"d{n}", str(n)),
            )
    code, findings = _doctor(tmp_path)
    assert code == 1
    assert any("churn has 2 active rows" in f["detail"] for f in findings)


def test_one_whole_mesh_per_home_even_while_it_starts(tmp_path: Path) -> None:
    import os

    import pytest

    from services.errors import MeshAlreadyRunning
    from services.mesh.local import hold_mesh_lock

    first = hold_mesh_lock(tmp_path)
    with pytest.raises(MeshAlreadyRunning, match=f"pid {os.getpid()}"):
        hold_mesh_lock(tmp_path)  # `bentomesh deploy` while `bentomesh up` starts
    first.close()  # the first mesh stopped (or its process died: the kernel drops the lock)
    hold_mesh_lock(tmp_path).close()


def test_the_journal_is_counted_and_a_damaged_one_fails(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    assert check_journal(journal.folder).level == "ok"
    journal.append([Record("t", 0, n, None, b"{}") for n in range(3)])
    journal.save_offsets({"bentomesh-packager": {("t", 0): 3}})
    found = check_journal(journal.folder)
    assert (found.level, found.detail.split(" (")[0]) == ("ok", "3 records")
    assert "offsets of 1 groups" in found.detail
    with journal.records_path.open("a") as out:
        out.write("not json\n")
    assert check_journal(journal.folder).level == "fail"
