"""``python -m services.packager.worker``: the process that unpickles and packages models.

Artifacts are code. They are loaded here, in a process started with none of the packager's
secrets in its environment (no signing-key location, no token, no Kafka credentials) and none in
its memory, rather than in the packager, which holds its signing key. One job per line on stdin
(a registration and its chain id); progress and the result as JSON lines on the protocol stream,
the original stdout; whatever a library prints goes to stderr (the packager's log).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from bentomesh_contracts.events import ModelRegistered


def _protocol_stream() -> TextIO:
    """The original stdout for the protocol; fd 1 itself now points at stderr."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def run(jobs: TextIO, out: TextIO) -> None:
    from services.errors import StageError
    from services.packager.pipeline import package
    from services.packager.settings import PackagerSettings

    settings = PackagerSettings()

    def emit(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    for line in jobs:
        job = json.loads(line)
        registration = ModelRegistered.model_validate(job["registration"])
        try:
            result = package(
                registration,
                chain_id=job["chain_id"],
                settings=settings,
                progress=lambda text: emit({"progress": text}),
            )
        except StageError as exc:
            emit({"error": {"class": type(exc).__name__, "reason": exc.reason,
                            "details": exc.details}})  # fmt: skip
            continue
        except Exception as exc:
            emit({"error": {"class": type(exc).__name__, "reason": str(exc), "details": None}})
            continue
        emit({"built": result.built.model_dump(mode="json"), "reused": result.reused})


def main() -> None:
    out = _protocol_stream()
    run(sys.stdin, out)


if __name__ == "__main__":
    main()
