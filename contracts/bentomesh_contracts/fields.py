"""Constrained strings the events share: model names and versions, digests, package pins."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$"
VERSION_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"

ModelName = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        description="Model slug: lowercase letters, digits, '-' and '_', at most 63 characters.",
        examples=["churn-classifier"],
    ),
]
ModelVersion = Annotated[
    str,
    Field(
        pattern=VERSION_PATTERN,
        description="Model version: lowercase letters, digits, '.', '-' and '_'.",
        examples=["3", "2026.11.27"],
    ),
]
PackageName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$",
        description="A package's distribution name (PEP 508).",
    ),
]
PackageVersion = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}$",
        description="A version in PEP 440's characters: never whitespace, a URL or a marker, "
        "since it is pinned into the bento's requirements.",
    ),
]
Sha256 = Annotated[
    str,
    Field(pattern=SHA256_PATTERN, description="Lowercase hex SHA-256 digest of the file's bytes."),
]
