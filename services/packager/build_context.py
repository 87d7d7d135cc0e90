"""A bento's build context: the templates package, its ``service.json``, the bentofile.

The templates are real modules (``services/packager/templates/``); a build copies them as they
are under :data:`~services.packager.tasks.TEMPLATES_PACKAGE` and writes beside them the few
settings that vary per bento. Names and descriptions are data in JSON, never code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from services.packager.tasks import TEMPLATES_PACKAGE

TEMPLATES_DIR = Path(__file__).with_name("templates")
SERVICE_FILE = "service.json"  # read by templates/helpers.py:service_settings


def service_settings(
    *,
    model_tag: str,
    service_name: str,
    description: str = "",
    workers: int = 1,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a template reads at import time besides the model's own stored config."""
    return {
        "model_tag": model_tag,
        "service_name": service_name,
        "description": description or f"BentoMesh service for {model_tag}",
        "workers": int(workers),
        "options": dict(options or {}),
    }


def bento_includes() -> tuple[str, ...]:
    """The bentofile ``include`` patterns of a build context."""
    return (f"{TEMPLATES_PACKAGE}/*.py", f"{TEMPLATES_PACKAGE}/{SERVICE_FILE}")


def write_build_context(directory: Path, settings: dict[str, Any], bentofile_yaml: str) -> Path:
    """Lay out ``directory`` for ``bentoml build``: the templates package and the bentofile."""
    directory.mkdir(parents=True, exist_ok=True)
    package = directory / TEMPLATES_PACKAGE
    package.mkdir(exist_ok=True)
    for module in TEMPLATES_DIR.glob("*.py"):
        shutil.copyfile(module, package / module.name)
    (package / SERVICE_FILE).write_text(json.dumps(settings, indent=2))
    (directory / "bentofile.yaml").write_text(bentofile_yaml)
    return directory
