"""Pushing a built image to the mesh's registry, and the digest that pins it.

The deployer pulls ``REGISTRY/<prefix>/<model>@sha256:...``: a digest names the content, so
what runs is what the builder pushed, whatever happens to tags in the registry.
"""

from __future__ import annotations

from typing import Any

from services.errors import ImagePushFailed


def auth_config(username: str | None, password: str | None) -> dict[str, str] | None:
    if not username:
        return None
    return {"username": username, "password": password or ""}


def push(client: Any, ref: str, auth: dict[str, str] | None) -> str:
    """Push ``repository:tag``; returns ``repository@sha256:...``."""
    repository, tag = ref.rsplit(":", 1)
    digest = None
    said: list[str] = []
    import docker.errors

    try:
        chunks = client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
        for chunk in chunks:
            if "error" in chunk:
                raise ImagePushFailed(
                    f"push of {ref} failed: {chunk['error'].strip()}",
                    details="\n".join(said[-20:]),
                )
            if "status" in chunk:
                said.append(str(chunk["status"]))
            digest = (chunk.get("aux") or {}).get("Digest") or digest
    except docker.errors.APIError as exc:
        raise ImagePushFailed(f"push of {ref} failed: {exc.explanation or exc}") from exc
    if not digest:
        raise ImagePushFailed(f"push of {ref} reported no digest", details="\n".join(said[-20:]))
    return f"{repository}@{digest}"
