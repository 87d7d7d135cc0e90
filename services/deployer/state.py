"""The deployer's record of deployments, durable across restarts (SQLite).

One row per deployment attempt. At most one ``active`` row per model: the one its stable endpoint
routes to. Status moves ``starting`` -> ``active`` -> ``replaced`` (or ``failed`` / ``stopped``);
a canary or shadow rollout passes through ``candidate`` (at most one per model), which receives
``share`` of the traffic (canary) or a copy of it (shadow) beside the active one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

Status = Literal["starting", "candidate", "active", "replaced", "failed", "stopped"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    runtime TEXT NOT NULL,
    ref TEXT NOT NULL,
    status TEXT NOT NULL,
    endpoint TEXT,
    handle TEXT,
    chain_id TEXT NOT NULL,
    cause_id TEXT NOT NULL,
    replaced_id TEXT,
    detail TEXT,
    cpus REAL NOT NULL,
    memory_mb INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    registered_at REAL
);
CREATE INDEX IF NOT EXISTS deployments_model ON deployments (model, created_at);
CREATE INDEX IF NOT EXISTS deployments_cause ON deployments (cause_id);
-- whatever a bug or a second writer does, a model never has two active deployments
CREATE UNIQUE INDEX IF NOT EXISTS one_active_per_model ON deployments (model)
    WHERE status = 'active';
"""

# added after the first release: created by _migrate on older stores too
_LATER = """
CREATE UNIQUE INDEX IF NOT EXISTS one_candidate_per_model ON deployments (model)
    WHERE status = 'candidate';
"""
_LATER_COLUMNS = {
    "registered_at": "REAL",
    "strategy": "TEXT",  # 'canary' or 'shadow' while a candidate; else NULL
    "share": "REAL NOT NULL DEFAULT 0",  # of the traffic (canary) or copied (shadow)
    "command": "TEXT",  # 'promote' or 'abort', asked by an operator, read by the rollout
    "replicas": "INTEGER NOT NULL DEFAULT 1",  # asked for (the swarm runtime runs more than 1)
    "endpoints": "TEXT",  # every replica's URL, space-separated, where a runtime spreads them
}


@dataclass(frozen=True)
class Deployment:
    id: str
    model: str
    version: str
    runtime: str
    ref: str  # bento tag (process) or image id, sha256:... (docker)
    status: Status
    endpoint: str | None
    handle: str | None  # pid or container id
    chain_id: str
    cause_id: str  # id of the ImageReady that asked for it
    replaced_id: str | None
    detail: str | None
    cpus: float
    memory_mb: int
    created_at: float
    updated_at: float
    registered_at: float | None = None  # when its ModelRegistered was produced (chain time)
    strategy: str | None = None
    share: float = 0.0
    command: str | None = None
    replicas: int = 1
    endpoints: str | None = None

    @cached_property
    def targets(self) -> list[str]:
        """Every URL that serves this deployment (its replicas), else its one endpoint. Cached:
        the gateway reads it per request, from rows it keeps until the store changes."""
        if self.endpoints:
            return self.endpoints.split()
        return [self.endpoint] if self.endpoint else []

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeploymentStore:
    """Thread-safe: the stage handler runs blocking work in threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self._writes = 0

    def _migrate(self) -> None:
        """Add columns that stores written by earlier versions lack."""
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(deployments)")}
        for name, kind in _LATER_COLUMNS.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE deployments ADD COLUMN {name} {kind}")
        self._db.executescript(_LATER)

    def _rows(self, sql: str, *args: Any) -> list[Deployment]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Deployment(**dict(r)) for r in rows]

    def get(self, deployment_id: str) -> Deployment | None:
        found = self._rows("SELECT * FROM deployments WHERE id = ?", deployment_id)
        return found[0] if found else None

    def by_cause(self, cause_id: str) -> list[Deployment]:
        return self._rows(
            "SELECT * FROM deployments WHERE cause_id = ? ORDER BY created_at", cause_id
        )

    def active(self, model: str) -> Deployment | None:
        found = self._rows("SELECT * FROM deployments WHERE model = ? AND status = 'active'", model)
        return found[0] if found else None

    def candidate(self, model: str) -> Deployment | None:
        found = self._rows(
            "SELECT * FROM deployments WHERE model = ? AND status = 'candidate'", model
        )
        return found[0] if found else None

    def routes(self) -> list[Deployment]:
        """What the gateway routes to: every active and candidate deployment."""
        return self._rows(
            "SELECT * FROM deployments WHERE status IN ('active', 'candidate') ORDER BY model"
        )

    def generation(self) -> tuple[int, int]:
        """Changes when anything was written, by this store or another connection to its file."""
        with self._lock:
            outside = self._db.execute("PRAGMA data_version").fetchone()[0]
        return self._writes, int(outside)

    def all_active(self) -> list[Deployment]:
        return self._rows("SELECT * FROM deployments WHERE status = 'active' ORDER BY model")

    def in_status(self, status: Status) -> list[Deployment]:
        return self._rows("SELECT * FROM deployments WHERE status = ?", status)

    def history(self, model: str | None = None) -> list[Deployment]:
        if model is None:
            return self._rows("SELECT * FROM deployments ORDER BY created_at")
        return self._rows("SELECT * FROM deployments WHERE model = ? ORDER BY created_at", model)

    def insert(self, deployment: Deployment) -> None:
        data = deployment.to_dict()
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self._lock:
            self._db.execute(
                f"INSERT INTO deployments ({columns}) VALUES ({marks})",  # noqa: S608 - fixed names
                tuple(data.values()),
            )
            self._writes += 1

    def update(self, deployment_id: str, **fields: Any) -> Deployment:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE deployments SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
                (*fields.values(), deployment_id),
            )
            self._writes += 1
        updated = self.get(deployment_id)
        assert updated is not None
        return updated

    def activate(self, new_id: str, old_id: str | None) -> None:
        """Make ``new_id`` the model's active deployment and ``old_id`` replaced, atomically."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if old_id is not None:
                    self._db.execute(
                        "UPDATE deployments SET status = 'replaced', updated_at = ? WHERE id = ?",
                        (now, old_id),
                    )
                self._db.execute(
                    "UPDATE deployments SET status = 'active', replaced_id = ?, updated_at = ?, "
                    "strategy = NULL, share = 0, command = NULL WHERE id = ?",
                    (old_id, now, new_id),
                )
                self._db.execute("COMMIT")
                self._writes += 1
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
