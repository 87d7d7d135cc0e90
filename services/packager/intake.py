"""Where an artifact may come from, and proof that it is the one the event names.

Pickles are code: nothing is deserialized before its path is inside an allowed root (after
resolving ``..`` and symlinks) and its SHA-256 equals the digest in the event.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from services.errors import ArtifactMissing, DigestMismatch, PathNotAllowed


def parse_roots(value: str) -> tuple[Path, ...]:
    """``BENTOMESH_ARTIFACT_ROOTS``: a ``:``-separated list of directories."""
    return tuple(Path(p).resolve() for p in value.split(":") if p.strip())


def resolve_artifact(uri: str, roots: tuple[Path, ...]) -> Path:
    """The real path of a local path or ``file://`` URI, refused unless under an allowed root."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise PathNotAllowed(f"{uri}: file URIs must name a local path (no host)")
        raw = unquote(parsed.path)
    elif parsed.scheme == "":
        raw = uri
    else:
        raise PathNotAllowed(
            f"{uri}: scheme {parsed.scheme!r} is not supported; use a local path or file:// URI"
        )
    if not raw.startswith("/"):
        raise PathNotAllowed(f"{uri}: the path must be absolute")
    if not roots:
        raise PathNotAllowed(
            f"{uri}: no artifact roots are allowed; set BENTOMESH_ARTIFACT_ROOTS to a "
            "':'-separated list of directories"
        )
    path = Path(raw).resolve()  # follows symlinks and '..'
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise PathNotAllowed(
            f"{uri} resolves to {path}, outside the allowed artifact roots ({allowed}); "
            "start the packager (bentomesh up) with BENTOMESH_ARTIFACT_ROOTS including its "
            "directory, or put the artifact under one of them"
        )
    if not path.is_file():
        raise ArtifactMissing(f"{uri}: no such file ({path})")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_digest(path: Path, expected: str, *, what: str = "artifact") -> None:
    _check(path, sha256_of(path), expected, what)


def _check(path: Path, actual: str, expected: str, what: str) -> None:
    if actual != expected:
        raise DigestMismatch(
            f"{what} {path} has SHA-256 {actual}, but the event says {expected}; refusing to "
            "load it (re-register with the digest of the file you mean to deploy)"
        )


@contextmanager
def private_copy(path: Path, expected: str, *, what: str = "artifact") -> Iterator[Path]:
    """``path`` opened once (a symlink in its place is refused), copied into a private
    directory while hashed; the copy, under the same name, once its digest is the expected one.
    The directory goes when the block ends."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ArtifactMissing(f"{what} {path} cannot be opened: {exc.strerror}") from None
    with tempfile.TemporaryDirectory(prefix="bentomesh-artifact-") as private:  # mode 0700
        copy = Path(private) / path.name
        digest = hashlib.sha256()
        with os.fdopen(fd, "rb") as source, copy.open("wb") as target:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
        _check(path, digest.hexdigest(), expected, what)
        yield copy
