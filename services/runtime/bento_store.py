"""The local BentoML store, read without importing BentoML: where a bento tag lives on disk.

The deployer and builder act only on bentos of this store, named by tag; never on a path or an
import string from an event (``bentoml serve`` would take either, and run what it names).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from services.errors import NotBuiltHere

# BentoML's tag grammar: a lowercase name, a version; no path separators, no "latest".
BENTO_TAG = re.compile(r"^(?P<name>[a-z0-9]([a-z0-9._-]*[a-z0-9])?):(?P<version>[A-Za-z0-9_.-]+)$")


def bentoml_home() -> Path:
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")


def stored_bento(tag: str) -> Path:
    """The directory of bento ``tag`` in this machine's store, or :class:`NotBuiltHere`."""
    match = BENTO_TAG.match(tag)
    if match is None or match["version"] in ("latest", ".", ".."):
        raise NotBuiltHere(f"{tag!r} is not a bento tag ('<name>:<version>'); nothing is run")
    path = bentoml_home() / "bentos" / match["name"] / match["version"]
    if not (path / "bento.yaml").is_file():
        raise NotBuiltHere(f"bento {tag} is not in this machine's store ({path.parent})")
    return path


def own_bento(model_name: str, model_version: str, tag: str) -> None:
    """The packager builds ``<model>:<version>``: an event naming another bento for a model
    (another model's, another version's) is refused."""
    if tag != f"{model_name}:{model_version}":
        raise NotBuiltHere(
            f"{model_name}:{model_version} names bento {tag!r}, not its own; nothing is run"
        )
