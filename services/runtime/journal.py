"""The embedded broker's durable log: every record of the mesh topics and every consumer
group's committed offsets, kept in files under ``$BENTOMESH_HOME/journal``.

Tansu, the embedded broker, keeps topics in memory only, and no Kafka-compatible broker with
persistent storage installs from the registries these machines reach; this journal is what
lets a restarted local mesh begin where it stopped. The files are plain JSON lines, so a
person can read them, and the format knows nothing of Kafka clients (see ``journal_kafka``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# (topic, partition)
Partition = tuple[str, int]
# group -> partition -> next offset to read
GroupOffsets = dict[str, dict[Partition, int]]


@dataclass(frozen=True)
class Record:
    """One record as the broker held it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    def to_line(self) -> str:
        return json.dumps(
            {
                "t": self.topic,
                "p": self.partition,
                "o": self.offset,
                "k": _b64(self.key),
                "v": _b64(self.value),
                "h": [[name, _b64(value)] for name, value in self.headers],
                "ts": self.timestamp_ms,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_line(cls, line: str) -> Record:
        raw = json.loads(line)
        return cls(
            topic=raw["t"],
            partition=raw["p"],
            offset=raw["o"],
            key=_unb64(raw["k"]),
            value=_unb64(raw["v"]),
            headers=tuple((name, _unb64(value) or b"") for name, value in raw["h"]),
            timestamp_ms=raw["ts"],
        )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


class Journal:
    """``records.jsonl`` (append-only), ``offsets.json`` and ``topics.json`` in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records_path = folder / "records.jsonl"
        self.offsets_path = folder / "offsets.json"
        self.topics_path = folder / "topics.json"

    def exists(self) -> bool:
        return self.records_path.exists() or self.offsets_path.exists()

    def records(self) -> Iterator[Record]:
        """Every whole record, oldest first (a line cut short by a crash is left out)."""
        if not self.records_path.exists():
            return
        with self.records_path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.endswith("\n"):
                    yield Record.from_line(line)

    def append(self, records: Iterable[Record]) -> int:
        """Write ``records`` and flush them to disk; returns how many were written."""
        lines = [record.to_line() + "\n" for record in records]
        if not lines:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cut_torn_tail()
        with self.records_path.open("a", encoding="utf-8") as out:
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())
        return len(lines)

    def rewrite(self, records: Iterable[Record]) -> None:
        """Replace every record at once (a crash leaves the old file or the new one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.records_path, "".join(r.to_line() + "\n" for r in records))

    def _cut_torn_tail(self) -> None:
        """Drop a last line without its newline, left by a crash in the middle of a write."""
        if not self.records_path.exists():
            return
        with self.records_path.open("rb+") as data:
            size = data.seek(0, os.SEEK_END)
            if size == 0:
                return
            data.seek(size - 1)
            if data.read(1) == b"\n":
                return
            data.seek(0)
            whole = data.read()
            data.truncate(whole.rfind(b"\n") + 1)

    def save_offsets(self, groups: GroupOffsets) -> None:
        payload = {
            group: [[topic, partition, offset] for (topic, partition), offset in sorted(by.items())]
            for group, by in sorted(groups.items())
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.offsets_path, json.dumps(payload, indent=1))

    def offsets(self) -> GroupOffsets:
        if not self.offsets_path.exists():
            return {}
        raw = json.loads(self.offsets_path.read_text(encoding="utf-8"))
        return {group: {(t, p): o for t, p, o in rows} for group, rows in raw.items()}

    def save_topics(self, partitions: dict[str, int]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.topics_path, json.dumps(dict(sorted(partitions.items()))))

    def topics(self) -> dict[str, int]:
        if not self.topics_path.exists():
            return {}
        raw: dict[str, int] = json.loads(self.topics_path.read_text(encoding="utf-8"))
        return raw


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def translate(committed: int, old: list[int], new: list[int]) -> int:
    """Where a consumer that had committed ``committed`` resumes after a replay that gave the
    records at offsets ``old`` (ascending) the offsets ``new``: at the new offset of the first
    record it had not read, or at the new end when it had read them all."""
    from bisect import bisect_left

    index = bisect_left(old, committed)
    if index < len(new):
        return new[index]
    return new[-1] + 1 if new else 0
