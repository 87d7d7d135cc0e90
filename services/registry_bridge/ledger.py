"""What the bridge published, in SQLite: nothing twice across restarts, webhooks and polls.

A row is claimed (with the signed event it will send) before the event is published and marked
sent after; a bridge that dies between the two sends the same event (same id) again at its
next start, which the mesh's stages take as the redelivery it is.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS published (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,          -- the MLflow registered model
    version TEXT NOT NULL,        -- its registry version
    trigger TEXT NOT NULL,        -- 'version' or 'alias:<name>'
    chain_id TEXT UNIQUE,         -- NULL when refused
    event TEXT,                   -- the signed CloudEvent, as sent
    sent INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,         -- registered | refused | deployed | failed
    detail TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS published_model ON published (model, trigger, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    model: str
    version: str
    trigger: str
    chain_id: str | None
    status: str


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('since', ?)", (repr(time.time()),))

    @property
    def since(self) -> float:
        """When the bridge first started on this home: versions created before are history."""
        (value,) = self._db.execute("SELECT value FROM meta WHERE key = 'since'").fetchone()
        return float(value)

    def due(self, model: str, version: str, trigger: str) -> bool:
        """Whether ``version`` of ``model`` still has to be published for ``trigger``: a new
        version once; an alias whenever it moved to another version than it last deployed."""
        with self._lock:
            return self._due(model, version, trigger)

    def _due(self, model: str, version: str, trigger: str) -> bool:
        if trigger == "version":
            found = self._db.execute(
                "SELECT 1 FROM published WHERE model = ? AND version = ? AND trigger = ?",
                (model, version, trigger),
            ).fetchone()
            return found is None
        last = self._db.execute(
            "SELECT version FROM published WHERE model = ? AND trigger = ? ORDER BY seq DESC "
            "LIMIT 1",
            (model, trigger),
        ).fetchone()
        return last is None or last[0] != version

    def claim(
        self,
        model: str,
        version: str,
        trigger: str,
        *,
        chain_id: str | None,
        event: str | None,
        status: str = "registered",
        detail: str | None = None,
    ) -> bool:
        """Record what will be published; False when it was already due no more (another
        delivery or replica got there first)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._due(model, version, trigger):
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute(
                    "INSERT INTO published (model, version, trigger, chain_id, event, sent, "
                    "status, detail, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        model,
                        version,
                        trigger,
                        chain_id,
                        event,
                        int(event is None),
                        status,
                        detail,
                        time.time(),
                    ),
                )
                self._db.execute("COMMIT")
                return True
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_sent(self, chain_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE published SET sent = 1 WHERE chain_id = ?", (chain_id,))

    def unsent(self) -> list[tuple[str, str]]:
        """(chain id, event) of every claimed event not known to be published."""
        with self._lock:
            rows = self._db.execute(
                "SELECT chain_id, event FROM published WHERE sent = 0 ORDER BY seq"
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def by_chain(self, chain_id: str) -> Row | None:
        with self._lock:
            found = self._db.execute(
                "SELECT model, version, trigger, chain_id, status FROM published "
                "WHERE chain_id = ?",
                (chain_id,),
            ).fetchone()
        return Row(*found) if found else None

    def set_status(self, chain_id: str, status: str, detail: str | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE published SET status = ?, detail = ? WHERE chain_id = ?",
                (status, detail, chain_id),
            )

    def rows(self) -> list[Row]:
        with self._lock:
            found = self._db.execute(
                "SELECT model, version, trigger, chain_id, status FROM published ORDER BY seq"
            ).fetchall()
        return [Row(*r) for r in found]

    def close(self) -> None:
        self._db.close()
