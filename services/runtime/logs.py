"""Log files that do not grow without end: rotated when a process (re)starts on one.

A service or model process writes its stdout and stderr to a file it holds open for its whole
life, so the file is rotated when the process starts: past ``max_bytes`` it becomes ``.1``
(``.1`` becomes ``.2`` ...), and ``keep`` old files stay.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_BYTES = int(os.environ.get("BENTOMESH_LOG_MAX_BYTES") or 20 << 20)
KEEP = 3


def rotated(path: Path, *, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> Path:
    """``path``, rotated first if it is over ``max_bytes``; ready to open for appending."""
    try:
        if path.stat().st_size <= max_bytes:
            return path
    except FileNotFoundError:
        return path
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))
    return path
