"""``bentomesh doctor``: what a mesh's home, keys, broker, engine and state look like, checked
for consistency, each finding a sentence with what to do."""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from bentomesh_contracts.kafka import KafkaSettings
from bentomesh_contracts.keys import SigningSettings
from bentomesh_contracts.signing import PRODUCERS
from services.runtime.control import ControlSettings
from services.runtime.ports import port_open

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    detail: str


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def check_home(home: Path) -> Finding:
    if not home.exists():
        return Finding("home", "warn", f"{home} does not exist yet ('bentomesh up' makes it)")
    if not os.access(home, os.W_OK):
        return Finding("home", "fail", f"{home} is not writable by this user")
    return Finding("home", "ok", str(home))


def check_keys(settings: SigningSettings) -> list[Finding]:
    if settings.insecure_unsigned:
        return [Finding("keys", "warn", "BENTOMESH_INSECURE_UNSIGNED=true: events are unsigned")]
    keys = settings.keys
    findings = []
    missing = [p for p in PRODUCERS if not keys.private_path(p).exists()]
    exposed = [p for p in PRODUCERS if p not in missing and not _private(keys.private_path(p))]
    trusted = keys.trusted() if keys.trusted_dir.exists() else {}
    if missing:
        findings.append(
            Finding("keys", "warn", f"no key for {', '.join(missing)} in {keys.root} "
                    "(fine where that producer does not run; 'bentomesh keys init' makes them)")
        )  # fmt: skip
    if exposed:
        findings.append(
            Finding("keys", "fail", f"private keys readable by others: {', '.join(exposed)} "
                    "(chmod 600)")
        )  # fmt: skip
    unknown = {p for p in PRODUCERS if p not in missing} - {k.rsplit("-", 1)[0] for k in trusted}
    if not trusted:  # a failure once any key exists; before that, nothing is set up yet
        level: Level = "warn" if len(missing) == len(PRODUCERS) else "fail"
        findings.append(Finding("keys", level, f"no trusted public keys in {keys.trusted_dir}"))
    elif unknown:
        findings.append(
            Finding("keys", "fail", f"keys of {', '.join(sorted(unknown))} are not trusted")
        )
    if not findings:
        findings.append(Finding("keys", "ok", f"{len(trusted)} trusted keys in {keys.root}"))
    return findings


def check_token(settings: ControlSettings) -> Finding:
    if settings.api_token is not None:
        return Finding("token", "ok", "BENTOMESH_API_TOKEN is set")
    path = settings.token_path
    if not path.exists():
        return Finding("token", "warn", f"no control-plane token at {path} ('bentomesh up')")
    if not _private(path):
        return Finding("token", "fail", f"{path} is readable by others (chmod 600)")
    return Finding("token", "ok", str(path))


def check_broker(kafka: KafkaSettings) -> Finding:
    host, _, port = kafka.bootstrap_servers.split(",")[0].rpartition(":")
    if port_open(host or "127.0.0.1", int(port), timeout=1.0):
        return Finding("broker", "ok", f"answers at {kafka.bootstrap_servers}")
    return Finding("broker", "warn", f"nothing answers at {kafka.bootstrap_servers}")


def check_engine() -> Finding:
    from services.builder.backend import docker_available

    if docker_available():
        return Finding("engine", "ok", "a Docker engine answers")
    return Finding("engine", "warn", "no Docker engine: models run as local processes")


def check_state(db: Path) -> list[Finding]:
    """The deployer's database: one active deployment per model, each answering /readyz."""
    if not db.exists():
        return [Finding("deployments", "ok", f"no deployer state at {db} yet")]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT id, model, endpoint, status FROM deployments "
            "WHERE status IN ('active', 'starting')"
        ).fetchall()
    findings = []
    active: dict[str, list[str]] = {}
    for deployment_id, model, endpoint, status in rows:
        if status == "starting":
            findings.append(Finding("deployments", "warn", f"{deployment_id} was left starting "
                                    "(the deployer cleans it up when it starts)"))  # fmt: skip
            continue
        active.setdefault(model, []).append(deployment_id)
        try:
            ready = httpx.get(f"{endpoint}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if not ready:
            detail = f"{model} ({deployment_id}) does not answer at {endpoint}"
            findings.append(Finding("deployments", "warn", f"{detail} (the deployer restarts it)"))
    for model, ids in active.items():
        if len(ids) > 1:
            findings.append(Finding("deployments", "fail", f"{model} has {len(ids)} active rows"))
    if not findings:
        findings.append(Finding("deployments", "ok", f"{len(active)} models serving"))
    return findings


def check_journal(folder: Path) -> Finding:
    """The embedded broker's journal: readable to its end, and with offsets saved."""
    from services.runtime.journal import Journal

    journal = Journal(folder)
    if not journal.exists():
        return Finding("journal", "ok", f"no journal at {folder} yet (the embedded broker's)")
    try:
        count = sum(1 for _ in journal.records())
        groups = len(journal.offsets())
    except (ValueError, KeyError) as exc:
        return Finding("journal", "fail", f"{journal.records_path} is damaged ({exc}); move it "
                       "aside to start the embedded broker empty")  # fmt: skip
    size = journal.records_path.stat().st_size if journal.records_path.exists() else 0
    return Finding(
        "journal", "ok", f"{count} records ({size / 2**20:.1f} MiB), offsets of {groups} groups"
    )


def diagnose(home: Path, db: Path) -> list[Finding]:
    return [
        check_home(home),
        *check_keys(SigningSettings()),
        check_token(ControlSettings()),
        check_broker(KafkaSettings()),
        check_engine(),
        check_journal(home / "journal"),
        *check_state(db),
    ]
